{
  "targets": [
    {
      "target_name": "advclip_native",
      "sources": ["src/advclip_native.cc", "src/gemm.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fopenmp"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
