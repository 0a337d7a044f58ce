#pragma once
// The raw oneDNN matmul peer shared by the GEMM and model benchmarks: primitives created once in
// setup over fixed buffers and layouts, executed back to back, so a ratio against it is what
// libtse costs on top of the GEMMs it runs on.
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include <tse/tse.hpp>

namespace tse::bench {

inline dnnl::memory::desc f32_md(const dnnl::memory::dims& sizes, const dnnl::memory::dims& strides) {
  return {sizes, dnnl::memory::data_type::f32, strides};
}
inline dnnl::memory::desc bf16_md(const dnnl::memory::dims& sizes, const dnnl::memory::dims& strides) {
  return {sizes, dnnl::memory::data_type::bf16, strides};
}

// The peer's engine, stream and primitives. oneDNN sizes a primitive for the OpenMP team present
// when it is created, so setup creates them under the thread count the runner set for libtse.
struct OneDnnPeer {
  struct RawMatmul {
    dnnl::matmul prim;
    std::unordered_map<int, dnnl::memory> args;
  };
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<RawMatmul> gemms;
  double flops = 0;  // 2 M N K summed over the GEMMs added

  // c = a @ b; each operand is a desc over the given pointer.
  void add(const dnnl::memory::desc& a, const void* pa, const dnnl::memory::desc& b, const void* pb,
           const dnnl::memory::desc& c, float* pc) {
    omp_set_num_threads(get_num_threads());
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), engine);
    gemms.push_back({dnnl::matmul(pd),
                     {{DNNL_ARG_SRC, dnnl::memory(a, engine, const_cast<void*>(pa))},
                      {DNNL_ARG_WEIGHTS, dnnl::memory(b, engine, const_cast<void*>(pb))},
                      {DNNL_ARG_DST, dnnl::memory(c, engine, pc)}}});
    const auto& ad = a.dims();
    const auto& bd = b.dims();
    double batch = 1;
    for (size_t i = 0; i + 2 < ad.size(); ++i) batch *= static_cast<double>(ad[i]);
    flops += 2.0 * batch * static_cast<double>(ad[ad.size() - 2]) * static_cast<double>(ad.back()) *
             static_cast<double>(bd.back());
  }

  void run(int nt) {
    omp_set_num_threads(nt);
    for (const RawMatmul& g : gemms) g.prim.execute(stream, g.args);
    stream.wait();
  }
};

}  // namespace tse::bench
