#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "sgemm.h"

namespace advclip {
namespace {

/** One sgemm of the batch, restricted to rows [r0, r1) and columns [c0, c1) of C. */
struct Tile {
  std::int64_t batch, r0, r1, c0, c1;
};

std::vector<std::int64_t> batchOffsets(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides) {
  std::int64_t count = 1;
  for (auto d : shape) count *= d;
  std::vector<std::int64_t> out(static_cast<std::size_t>(count), 0);
  std::vector<std::int64_t> index(shape.size(), 0);
  for (std::int64_t i = 0; i < count; i++) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < shape.size(); d++) off += index[d] * strides[d];
    out[static_cast<std::size_t>(i)] = off;
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// Below this many multiply-adds (~30 µs of one core) a product runs on the
// calling thread: waking a worker costs more than it saves.
constexpr std::int64_t kParallelWork = std::int64_t{1} << 22;
// Tiles a large call is cut into, whatever the thread count. The library rounds
// a slab of a product differently from the whole, so tiles that depend on the
// shapes alone are what makes every process (any ADVCLIP_NATIVE_THREADS)
// compute the same bits — the cluster's exact mode relies on it. 8 tiles give
// 2 per thread on 4 cores (a thread that starts late leaves its share to the
// others); each slab re-packs the other operand, so slabs stay ≥ kMinSlab.
constexpr std::int64_t kTiles = 8;
constexpr std::int64_t kMinSlab = 128;

}  // namespace

std::uint64_t gemmExtent(const GemmSpec& spec) {
  std::int64_t aLast = 0, bLast = 0, count = 1;
  for (std::size_t d = 0; d < spec.batchShape.size(); d++) {
    aLast += (spec.batchShape[d] - 1) * spec.aStrides[d];
    bLast += (spec.batchShape[d] - 1) * spec.bStrides[d];
    count *= spec.batchShape[d];
  }
  if (count == 0 || spec.m == 0 || spec.n == 0) return 0;
  const std::uint64_t aEnd = spec.aOffset + 4 * static_cast<std::uint64_t>(aLast + spec.m * spec.k);
  const std::uint64_t bEnd = spec.bOffset + 4 * static_cast<std::uint64_t>(bLast + spec.k * spec.n);
  const std::uint64_t cEnd = spec.cOffset + 4 * static_cast<std::uint64_t>(count * spec.m * spec.n);
  return std::max({aEnd, bEnd, cEnd});
}

void gemmBatched(float* base, const GemmSpec& spec, Pool& pool) {
  const std::int64_t m = spec.m, n = spec.n, k = spec.k;
  std::int64_t count = 1;
  for (auto d : spec.batchShape) count *= d;
  if (count == 0 || m == 0 || n == 0) return;
  float* c = reinterpret_cast<float*>(reinterpret_cast<char*>(base) + spec.cOffset);
  if (k == 0) {
    std::memset(c, 0, static_cast<std::size_t>(count * m * n) * sizeof(float));
    return;
  }
  const float* a = reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + spec.aOffset);
  const float* b = reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + spec.bOffset);
  const auto aOff = batchOffsets(spec.batchShape, spec.aStrides);
  const auto bOff = batchOffsets(spec.batchShape, spec.bStrides);
  const int lda = static_cast<int>(spec.transA ? m : k);
  const int ldb = static_cast<int>(spec.transB ? k : n);
  const int ldc = static_cast<int>(n);

  // Tiles: whole products when the batch has enough of them, else each
  // product cut along its longer output side into slabs.
  const bool parallel = count * m * n * k >= kParallelWork;
  const bool cutRows = m >= n;
  const std::int64_t side = cutRows ? m : n;
  const std::int64_t wanted = !parallel || count >= kTiles ? 1 : (kTiles + count - 1) / count;
  const std::int64_t cuts = std::max<std::int64_t>(1, std::min(wanted, side / kMinSlab));
  const std::int64_t slab = ((side + cuts - 1) / cuts + 7) / 8 * 8;
  std::vector<Tile> tiles;
  tiles.reserve(static_cast<std::size_t>(count * cuts));
  for (std::int64_t i = 0; i < count; i++) {
    for (std::int64_t s = 0; s < side; s += slab) {
      const std::int64_t e = std::min(side, s + slab);
      tiles.push_back(cutRows ? Tile{i, s, e, 0, n} : Tile{i, 0, m, s, e});
    }
  }
  auto run = [&](std::int64_t index) {
    const Tile& t = tiles[static_cast<std::size_t>(index)];
    const float* ai = a + aOff[static_cast<std::size_t>(t.batch)] + (spec.transA ? t.r0 : t.r0 * k);
    const float* bi = b + bOff[static_cast<std::size_t>(t.batch)] + (spec.transB ? t.c0 * k : t.c0);
    float* ci = c + t.batch * m * n + t.r0 * n + t.c0;
    sgemm(spec.transA, spec.transB, static_cast<int>(t.r1 - t.r0), static_cast<int>(t.c1 - t.c0), static_cast<int>(k), ai, lda, bi,
          ldb, ci, ldc);
  };
  const std::int64_t tileCount = static_cast<std::int64_t>(tiles.size());
  if (parallel) {
    pool.run(tileCount, run);
  } else {
    for (std::int64_t i = 0; i < tileCount; i++) run(i);
  }
}

}  // namespace advclip
