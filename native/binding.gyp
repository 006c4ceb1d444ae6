{
  "targets": [
    {
      "target_name": "advclip_native",
      "sources": ["src/advclip_native.cc", "src/gemm.cc", "src/pool.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-pthread"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
