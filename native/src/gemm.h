// Batched row-major sgemm over tensors that live in one byte buffer (the wasm
// heap), with tfjs' batch broadcasting given as per-dimension element strides.
#pragma once
#include <cstdint>
#include <vector>

#include "pool.h"

namespace advclip {

struct GemmSpec {
  std::uint64_t aOffset = 0, bOffset = 0, cOffset = 0;  // bytes into the buffer
  std::int64_t m = 0, n = 0, k = 0;                      // C[m,n] = op(A)[m,k] · op(B)[k,n]
  bool transA = false, transB = false;
  std::vector<std::int64_t> batchShape;                  // output batch dims
  std::vector<std::int64_t> aStrides, bStrides;          // elements per step of each batch dim (0 = broadcast)
};

/** Bytes of the buffer the spec reaches (so the caller can bounds-check). */
std::uint64_t gemmExtent(const GemmSpec& spec);

/** Runs every product of the batch on the pool's threads (sgemm.h: each product single-threaded). */
void gemmBatched(float* base, const GemmSpec& spec, Pool& pool);

}  // namespace advclip
