// N-API surface of the native kernels: products over the wasm heap's bytes.
//
//   gemm(heap: ArrayBuffer, spec: Float64Array)
//     spec = [aOffset, bOffset, cOffset, m, n, k, transA, transB, rank,
//             batchShape[rank], aStrides[rank], bStrides[rank]]   (offsets in bytes, strides in elements)
//   quickGelu(heap, [x, y, n]), quickGeluGrad(heap, [x, dy, dx, n])
//   layerNorm(heap, [x, gamma, beta, y, rows, width, eps])
//   layerNormGrad(heap, [x, gamma, dy, dx, rows, width, eps])
//   layerNormGammaGrad(heap, [x, dy, dgamma, rows, width, eps])
//     (offsets in bytes; fused.h says what each computes)
//   setThreads(n: number), threads(): number
//   info(): { blas: string, core: string, threads: number }
#include <node_api.h>
#include <sched.h>

#include <memory>
#include <string>

#include "fused.h"
#include "gemm.h"
#include "sgemm.h"

namespace {

std::unique_ptr<advclip::Pool> gPool;

/** CPUs this process may run on (a container's limit, not the host's count). */
int availableCpus() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

napi_value fail(napi_env env, const std::string& message) {
  napi_throw_error(env, "ADVCLIP_NATIVE", message.c_str());
  return nullptr;
}

bool readArgs(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  return argc == want;
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!readArgs(env, info, 2, argv)) return fail(env, "gemm(heap, spec): two arguments expected");
  void* heap = nullptr;
  size_t heapBytes = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &heap, &heapBytes) != napi_ok) return fail(env, "gemm: heap must be an ArrayBuffer");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array)
    return fail(env, "gemm: spec must be a Float64Array");
  const double* s = static_cast<const double*>(data);
  if (length < 9) return fail(env, "gemm: spec too short");
  const auto rank = static_cast<std::size_t>(s[8]);
  if (length != 9 + 3 * rank) return fail(env, "gemm: spec length does not match its rank");
  advclip::GemmSpec spec;
  spec.aOffset = static_cast<std::uint64_t>(s[0]);
  spec.bOffset = static_cast<std::uint64_t>(s[1]);
  spec.cOffset = static_cast<std::uint64_t>(s[2]);
  spec.m = static_cast<std::int64_t>(s[3]);
  spec.n = static_cast<std::int64_t>(s[4]);
  spec.k = static_cast<std::int64_t>(s[5]);
  spec.transA = s[6] != 0;
  spec.transB = s[7] != 0;
  for (std::size_t d = 0; d < rank; d++) {
    spec.batchShape.push_back(static_cast<std::int64_t>(s[9 + d]));
    spec.aStrides.push_back(static_cast<std::int64_t>(s[9 + rank + d]));
    spec.bStrides.push_back(static_cast<std::int64_t>(s[9 + 2 * rank + d]));
  }
  if (spec.m < 0 || spec.n < 0 || spec.k < 0 || spec.m > INT32_MAX || spec.n > INT32_MAX || spec.k > INT32_MAX)
    return fail(env, "gemm: dimensions out of range");
  if ((spec.aOffset | spec.bOffset | spec.cOffset) % 4 != 0) return fail(env, "gemm: offsets must be float-aligned");
  if (advclip::gemmExtent(spec) > heapBytes) return fail(env, "gemm: operands reach past the end of the heap");
  advclip::gemmBatched(static_cast<float*>(heap), spec, *gPool);
  return nullptr;
}

/** A fused kernel's arguments: the heap, and a spec of `want` numbers. */
struct FusedArgs {
  char* heap = nullptr;
  std::size_t heapBytes = 0;
  const double* spec = nullptr;
};

bool readFused(napi_env env, napi_callback_info info, const char* name, std::size_t want, FusedArgs& out) {
  napi_value argv[2];
  if (!readArgs(env, info, 2, argv)) return fail(env, std::string(name) + "(heap, spec): two arguments expected"), false;
  void* heap = nullptr;
  if (napi_get_arraybuffer_info(env, argv[0], &heap, &out.heapBytes) != napi_ok) return fail(env, std::string(name) + ": heap must be an ArrayBuffer"), false;
  napi_typedarray_type type;
  std::size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array || length != want)
    return fail(env, std::string(name) + ": spec must be a Float64Array of " + std::to_string(want)), false;
  out.heap = static_cast<char*>(heap);
  out.spec = static_cast<const double*>(data);
  return true;
}

/** The float array at spec[i] (a byte offset) of `count` floats, or null when it is misaligned or reaches past the heap. */
float* floatsAt(const FusedArgs& a, std::size_t i, std::int64_t count) {
  const double offset = a.spec[i];
  if (offset < 0 || count < 0 || static_cast<std::uint64_t>(offset) % 4 != 0) return nullptr;
  if (static_cast<std::uint64_t>(offset) + 4 * static_cast<std::uint64_t>(count) > a.heapBytes) return nullptr;
  return reinterpret_cast<float*>(a.heap + static_cast<std::uint64_t>(offset));
}

napi_value QuickGelu(napi_env env, napi_callback_info info) {
  FusedArgs a;
  if (!readFused(env, info, "quickGelu", 3, a)) return nullptr;
  const auto n = static_cast<std::int64_t>(a.spec[2]);
  float *x = floatsAt(a, 0, n), *y = floatsAt(a, 1, n);
  if (!x || !y) return fail(env, "quickGelu: operands misaligned or past the end of the heap");
  advclip::quickGelu(x, y, n, *gPool);
  return nullptr;
}

napi_value QuickGeluGrad(napi_env env, napi_callback_info info) {
  FusedArgs a;
  if (!readFused(env, info, "quickGeluGrad", 4, a)) return nullptr;
  const auto n = static_cast<std::int64_t>(a.spec[3]);
  float *x = floatsAt(a, 0, n), *dy = floatsAt(a, 1, n), *dx = floatsAt(a, 2, n);
  if (!x || !dy || !dx) return fail(env, "quickGeluGrad: operands misaligned or past the end of the heap");
  advclip::quickGeluGrad(x, dy, dx, n, *gPool);
  return nullptr;
}

/** rows, width, eps from spec[at..at+2] (every LayerNorm kernel's tail) */
advclip::LayerNormShape layerNormShape(const FusedArgs& a, std::size_t at) {
  return {static_cast<std::int64_t>(a.spec[at]), static_cast<std::int64_t>(a.spec[at + 1]), static_cast<float>(a.spec[at + 2])};
}

using RowKernel = void (*)(const float*, const float*, const float*, float*, const advclip::LayerNormShape&, advclip::Pool&);

/** layerNorm and layerNormGrad: [x, gamma, third, out, rows, width, eps], `third` being β [width] or dy [rows, width]. */
napi_value callRowKernel(napi_env env, napi_callback_info info, const char* name, bool thirdPerRow, RowKernel kernel) {
  FusedArgs a;
  if (!readFused(env, info, name, 7, a)) return nullptr;
  const auto s = layerNormShape(a, 4);
  const std::int64_t all = s.rows * s.width;
  float *x = floatsAt(a, 0, all), *gamma = floatsAt(a, 1, s.width), *third = floatsAt(a, 2, thirdPerRow ? all : s.width), *out = floatsAt(a, 3, all);
  if (!x || !gamma || !third || !out || s.width < 1) return fail(env, std::string(name) + ": bad shape, or operands misaligned or past the end of the heap");
  kernel(x, gamma, third, out, s, *gPool);
  return nullptr;
}

napi_value LayerNorm(napi_env env, napi_callback_info info) { return callRowKernel(env, info, "layerNorm", false, advclip::layerNorm); }

napi_value LayerNormGrad(napi_env env, napi_callback_info info) { return callRowKernel(env, info, "layerNormGrad", true, advclip::layerNormGrad); }

napi_value LayerNormGammaGrad(napi_env env, napi_callback_info info) {
  FusedArgs a;
  if (!readFused(env, info, "layerNormGammaGrad", 6, a)) return nullptr;
  const auto s = layerNormShape(a, 3);
  float *x = floatsAt(a, 0, s.rows * s.width), *dy = floatsAt(a, 1, s.rows * s.width), *dgamma = floatsAt(a, 2, s.width);
  if (!x || !dy || !dgamma || s.width < 1) return fail(env, "layerNormGammaGrad: bad shape, or operands misaligned or past the end of the heap");
  advclip::layerNormGammaGrad(x, dy, dgamma, s);
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!readArgs(env, info, 1, argv)) return fail(env, "setThreads(n): one argument expected");
  int32_t n = 0;
  if (napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1 || n > 1024) return fail(env, "setThreads: n must be an integer in 1..1024");
  if (n != gPool->threads()) gPool = std::make_unique<advclip::Pool>(n);
  return nullptr;
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_int32(env, gPool->threads(), &out);
  return out;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value out, blas, core, threads;
  napi_create_object(env, &out);
  const std::string library = advclip::sgemmLibrary(), kernel = advclip::sgemmKernel();
  napi_create_string_utf8(env, library.c_str(), library.size(), &blas);
  napi_create_string_utf8(env, kernel.c_str(), kernel.size(), &core);
  napi_create_int32(env, gPool->threads(), &threads);
  napi_set_named_property(env, out, "blas", blas);
  napi_set_named_property(env, out, "core", core);
  napi_set_named_property(env, out, "threads", threads);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  // Parallelism is ours (pool.h: tiles over batch entries or slabs); the
  // library's own threads would oversubscribe the cores under it.
  advclip::sgemmSetup();
  if (!gPool) gPool = std::make_unique<advclip::Pool>(availableCpus());
  const napi_property_descriptor props[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"quickGelu", nullptr, QuickGelu, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"quickGeluGrad", nullptr, QuickGeluGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, LayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, LayerNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGammaGrad", nullptr, LayerNormGammaGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"threads", nullptr, Threads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
