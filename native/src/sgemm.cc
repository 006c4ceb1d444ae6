#include "sgemm.h"

#ifdef ADVCLIP_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#else
#include <cblas.h>
#endif

namespace advclip {

#ifdef ADVCLIP_DNNL

namespace {
// oneDNN (Debian's build) parallelises with OpenMP, and a thread OpenMP has
// not seen starts with a team as wide as the machine: on a pool thread that
// would put cores × threads on the cores. One OpenMP thread per calling thread.
void singleThreadedHere() {
  thread_local bool set = (omp_set_num_threads(1), true);
  (void)set;
}
}  // namespace

void sgemmSetup() { singleThreadedHere(); }

void sgemm(bool transA, bool transB, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
  singleThreadedHere();
  // dnnl_sgemm is row-major, as cblas with CblasRowMajor
  dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

std::string sgemmLibrary() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string sgemmKernel() { return dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()); }

#else

void sgemmSetup() { openblas_set_num_threads(1); }

void sgemm(bool transA, bool transB, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
              0.0f, c, ldc);
}

std::string sgemmLibrary() { return openblas_get_config(); }

std::string sgemmKernel() { return openblas_get_corename(); }

#endif

}  // namespace advclip
