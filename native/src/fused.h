// Fused element-wise and row kernels of the CLIP block, over float tensors in
// one byte buffer (the wasm heap): quick_gelu and LayerNorm, each with its
// backward. On wasm they are 3–9 single-threaded kernels apiece, each a pass
// over memory; here each is one pass, cut into tiles that depend on the shape
// alone (so the bits do not depend on the thread count) and run on the pool.
#pragma once
#include <cstdint>

#include "pool.h"

namespace advclip {

/** y = x·σ(1.702x) */
void quickGelu(const float* x, float* y, std::int64_t n, Pool& pool);
/** dx = dy·(s + 1.702·x·s·(1 − s)), s = σ(1.702x) */
void quickGeluGrad(const float* x, const float* dy, float* dx, std::int64_t n, Pool& pool);

struct LayerNormShape {
  std::int64_t rows = 0, width = 0;
  float eps = 0;
};
/** y = (x − μ)/√(σ² + eps)·γ + β over each row of width `width` (biased variance, as torch). */
void layerNorm(const float* x, const float* gamma, const float* beta, float* y, const LayerNormShape& s, Pool& pool);
/** dx of layerNorm given dy (μ and σ recomputed from x). */
void layerNormGrad(const float* x, const float* gamma, const float* dy, float* dx, const LayerNormShape& s, Pool& pool);
/** dγ = Σ_rows dy·x̂, rows summed in order (dβ = Σ_rows dy needs no kernel of its own). */
void layerNormGammaGrad(const float* x, const float* dy, float* dgamma, const LayerNormShape& s);

}  // namespace advclip
