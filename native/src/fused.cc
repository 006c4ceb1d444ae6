// Built with -ffast-math (binding.gyp) so expf vectorises through glibc's
// libmvec; target_clones picks the AVX-512, AVX2 or baseline body at load.
#include "fused.h"

#include <algorithm>
#include <cmath>

namespace advclip {
namespace {

#define ADVCLIP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

constexpr float kGeluScale = 1.702f;
// element-wise work below this runs on the calling thread
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;
constexpr std::int64_t kElementTile = std::int64_t{1} << 14;
constexpr std::int64_t kRowTile = 16;

/** fn(begin, end) over [0, n) in tiles of `tile`, on the pool when n is large. */
template <typename Fn>
void tiled(std::int64_t n, std::int64_t tile, std::int64_t workPerItem, Pool& pool, Fn fn) {
  const std::int64_t tiles = (n + tile - 1) / tile;
  auto one = [&](std::int64_t t) { fn(t * tile, std::min(n, (t + 1) * tile)); };
  if (n * workPerItem < kParallelElements || tiles < 2) {
    for (std::int64_t t = 0; t < tiles; t++) one(t);
  } else {
    pool.run(tiles, one);
  }
}

ADVCLIP_CLONES void geluSpan(const float* x, float* y, std::int64_t begin, std::int64_t end) {
  for (std::int64_t i = begin; i < end; i++) y[i] = x[i] / (1.0f + std::exp(-kGeluScale * x[i]));
}

ADVCLIP_CLONES void geluGradSpan(const float* x, const float* dy, float* dx, std::int64_t begin, std::int64_t end) {
  for (std::int64_t i = begin; i < end; i++) {
    const float s = 1.0f / (1.0f + std::exp(-kGeluScale * x[i]));
    dx[i] = dy[i] * (s + kGeluScale * x[i] * s * (1.0f - s));
  }
}

/** μ and 1/√(σ² + eps) of one row, two passes (as torch: no E[x²] − μ² cancellation); inlined into each clone. */
inline void rowMoments(const float* x, std::int64_t width, float eps, float& mean, float& rstd) {
  float sum = 0;
  for (std::int64_t j = 0; j < width; j++) sum += x[j];
  mean = sum / static_cast<float>(width);
  float squares = 0;
  for (std::int64_t j = 0; j < width; j++) {
    const float d = x[j] - mean;
    squares += d * d;
  }
  rstd = 1.0f / std::sqrt(squares / static_cast<float>(width) + eps);
}

ADVCLIP_CLONES void layerNormRows(const float* x, const float* gamma, const float* beta, float* y, std::int64_t begin, std::int64_t end,
                                  std::int64_t width, float eps) {
  for (std::int64_t r = begin; r < end; r++) {
    const float* xr = x + r * width;
    float* yr = y + r * width;
    float mean, rstd;
    rowMoments(xr, width, eps, mean, rstd);
    for (std::int64_t j = 0; j < width; j++) yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ
ADVCLIP_CLONES void layerNormGradRows(const float* x, const float* gamma, const float* dy, float* dx, std::int64_t begin, std::int64_t end,
                                      std::int64_t width, float eps) {
  const float inv = 1.0f / static_cast<float>(width);
  for (std::int64_t r = begin; r < end; r++) {
    const float* xr = x + r * width;
    const float* dyr = dy + r * width;
    float* dxr = dx + r * width;
    float mean, rstd;
    rowMoments(xr, width, eps, mean, rstd);
    float sumG = 0, sumGX = 0;
    for (std::int64_t j = 0; j < width; j++) {
      const float g = dyr[j] * gamma[j];
      sumG += g;
      sumGX += g * (xr[j] - mean) * rstd;
    }
    const float meanG = sumG * inv, meanGX = sumGX * inv;
    for (std::int64_t j = 0; j < width; j++) dxr[j] = rstd * (dyr[j] * gamma[j] - meanG - (xr[j] - mean) * rstd * meanGX);
  }
}

}  // namespace

void quickGelu(const float* x, float* y, std::int64_t n, Pool& pool) {
  tiled(n, kElementTile, 1, pool, [&](std::int64_t b, std::int64_t e) { geluSpan(x, y, b, e); });
}

void quickGeluGrad(const float* x, const float* dy, float* dx, std::int64_t n, Pool& pool) {
  tiled(n, kElementTile, 1, pool, [&](std::int64_t b, std::int64_t e) { geluGradSpan(x, dy, dx, b, e); });
}

void layerNorm(const float* x, const float* gamma, const float* beta, float* y, const LayerNormShape& s, Pool& pool) {
  tiled(s.rows, kRowTile, s.width, pool, [&](std::int64_t b, std::int64_t e) { layerNormRows(x, gamma, beta, y, b, e, s.width, s.eps); });
}

void layerNormGrad(const float* x, const float* gamma, const float* dy, float* dx, const LayerNormShape& s, Pool& pool) {
  tiled(s.rows, kRowTile, s.width, pool, [&](std::int64_t b, std::int64_t e) { layerNormGradRows(x, gamma, dy, dx, b, e, s.width, s.eps); });
}

void layerNormGammaGrad(const float* x, const float* dy, float* dgamma, const LayerNormShape& s) {
  std::fill(dgamma, dgamma + s.width, 0.0f);
  for (std::int64_t r = 0; r < s.rows; r++) {
    const float* xr = x + r * s.width;
    const float* dyr = dy + r * s.width;
    float mean, rstd;
    rowMoments(xr, s.width, s.eps, mean, rstd);
    for (std::int64_t j = 0; j < s.width; j++) dgamma[j] += dyr[j] * (xr[j] - mean) * rstd;
  }
}

}  // namespace advclip
