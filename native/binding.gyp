{
  "variables": {
    # oneDNN's sgemm where its headers are installed (Debian: libdnnl-dev), else OpenBLAS'
    "with_dnnl%": "<!(node -p \"require('fs').existsSync('/usr/include/oneapi/dnnl/dnnl.h') ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "advclip_native",
      "sources": ["src/advclip_native.cc", "src/fused.cc", "src/gemm.cc", "src/pool.cc", "src/sgemm.cc"],
      # -ffast-math lets expf vectorise (glibc libmvec); fused.cc is the only source that computes itself (products are the library's)
      "cflags_cc": ["-O3", "-std=c++17", "-pthread", "-ffast-math"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["with_dnnl==1", {
          "defines": ["ADVCLIP_DNNL"],
          "libraries": ["-ldnnl", "-lgomp"]
        }, {
          "libraries": ["-lopenblas"]
        }]
      ]
    }
  ]
}
