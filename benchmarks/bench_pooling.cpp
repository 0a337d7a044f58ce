// Average pooling at the models' shapes, forward and backward: avg_pool2d 2x2 stride 2 on a
// (1, 64, 256, 64) feature map and avg_pool1d kernel 4 on (1, 256, 1024). libtse pools with its
// own loops (src/cpu/pooling.cpp); each problem has two raw oneDNN peers on the same buffers,
// created once in setup:
//   *_fwd / *_bwd:         the pooling primitive on the plain ncw / nchw layout of our tensors
//                          (oneDNN 2.6 picks its simple_nchw reference kernel there);
//   *_fwd_blk / *_bwd_blk: oneDNN's fastest route for a plain tensor: reorder to the blocked
//                          nCw8c / nChw8c layout, the JIT pooling kernel, reorder back.
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <utility>

#include "bench.hpp"
#include "tse/ops/pooling.hpp"

namespace {

using namespace tse;
using bench::Bench;
using dnnl::memory;
using Tag = memory::format_tag;

// The peer's engine, stream and primitives with their bound arguments. oneDNN sizes a primitive
// for the OpenMP team present at creation, so setup creates them under libtse's thread count.
struct Peer {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> steps;

  void reorder(const memory& from, const memory& to) {
    steps.emplace_back(dnnl::reorder(from, to),
                       std::unordered_map<int, memory>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
  }
  void run(int nt) {
    omp_set_num_threads(nt);
    for (const auto& [prim, args] : steps) prim.execute(stream, args);
    stream.wait();
  }
};

struct Problem {
  const char* op;
  Shape src, dst;
  memory::dims kernel;
  Tag plain, blocked;
};

const Problem kPool2d{"avg_pool2d", {1, 64, 256, 64}, {1, 64, 128, 32}, {2, 2}, Tag::nchw, Tag::nChw8c};
const Problem kPool1d{"avg_pool1d", {1, 256, 1024}, {1, 256, 256}, {4}, Tag::ncw, Tag::nCw8c};

Tensor run_ours(const Problem& p, const Tensor& x) {
  return p.kernel.size() == 2 ? ops::avg_pool2d(x, {p.kernel[0], p.kernel[1]}) : ops::avg_pool1d(x, p.kernel[0]);
}

memory::dims dims_of(const Shape& s) { return memory::dims(s.begin(), s.end()); }

// The oneDNN pooling (include-padding average, stride = kernel, no padding) in the given layout.
dnnl::pooling_forward::desc forward_desc(const Problem& p, Tag layout) {
  const memory::dims zeros(p.kernel.size(), 0);
  return {dnnl::prop_kind::forward_training,
          dnnl::algorithm::pooling_avg_include_padding,
          memory::desc(dims_of(p.src), memory::data_type::f32, layout),
          memory::desc(dims_of(p.dst), memory::data_type::f32, layout),
          p.kernel,
          p.kernel,
          zeros,
          zeros};
}

Bench forward(const Problem& p, bool blocked) {
  Tensor x = bench::uniform(p.src, -1.f, 1.f, 71);
  auto out = bench::buffer(shape_numel(p.dst));
  auto peer = std::make_shared<Peer>();
  omp_set_num_threads(get_num_threads());
  const dnnl::pooling_forward::primitive_desc pd(forward_desc(p, blocked ? p.blocked : p.plain), peer->engine);
  memory src(memory::desc(dims_of(p.src), memory::data_type::f32, p.plain), peer->engine, x.data_ptr());
  memory dst(memory::desc(dims_of(p.dst), memory::data_type::f32, p.plain), peer->engine, out->data());
  memory pool_src = blocked ? memory(pd.src_desc(), peer->engine) : src;
  memory pool_dst = blocked ? memory(pd.dst_desc(), peer->engine) : dst;
  if (blocked) peer->reorder(src, pool_src);
  peer->steps.emplace_back(dnnl::pooling_forward(pd),
                           std::unordered_map<int, memory>{{DNNL_ARG_SRC, pool_src}, {DNNL_ARG_DST, pool_dst}});
  if (blocked) peer->reorder(pool_dst, dst);
  return {[=] { return run_ours(p, x); }, [=](int nt) { peer->run(nt); }, out};
}

// The backward for a fixed upstream gradient on a graph built once and retained.
Bench backward(const Problem& p, bool blocked) {
  Tensor x = bench::uniform(p.src, -1.f, 1.f, 72).requires_grad_();
  Tensor y = run_ours(p, x);
  Tensor g = bench::uniform(p.dst, -1.f, 1.f, 73);
  auto out = bench::buffer(shape_numel(p.src));
  auto peer = std::make_shared<Peer>();
  omp_set_num_threads(get_num_threads());
  const Tag layout = blocked ? p.blocked : p.plain;
  const dnnl::pooling_forward::primitive_desc fwd(forward_desc(p, layout), peer->engine);
  const memory::dims zeros(p.kernel.size(), 0);
  const dnnl::pooling_backward::primitive_desc pd(
      {dnnl::algorithm::pooling_avg_include_padding, fwd.src_desc(), fwd.dst_desc(), p.kernel, p.kernel, zeros, zeros},
      peer->engine, fwd);
  memory diff_dst(memory::desc(dims_of(p.dst), memory::data_type::f32, p.plain), peer->engine, g.data_ptr());
  memory diff_src(memory::desc(dims_of(p.src), memory::data_type::f32, p.plain), peer->engine, out->data());
  memory pool_diff_dst = blocked ? memory(pd.diff_dst_desc(), peer->engine) : diff_dst;
  memory pool_diff_src = blocked ? memory(pd.diff_src_desc(), peer->engine) : diff_src;
  if (blocked) peer->reorder(diff_dst, pool_diff_dst);
  peer->steps.emplace_back(
      dnnl::pooling_backward(pd),
      std::unordered_map<int, memory>{{DNNL_ARG_DIFF_DST, pool_diff_dst}, {DNNL_ARG_DIFF_SRC, pool_diff_src}});
  if (blocked) peer->reorder(pool_diff_src, diff_src);
  return {[=] { return autograd::grad({y}, {x}, {g}, /*retain_graph=*/true)[0]; }, [=](int nt) { peer->run(nt); }, out};
}

void add_cases(const Problem& p, const std::string& shape) {
  // both directions read the larger side once and write the smaller (or the reverse)
  const double bytes = 4.0 * static_cast<double>(shape_numel(p.src) + shape_numel(p.dst));
  for (bool blocked : {false, true}) {
    const std::string suffix = blocked ? "_blk" : "";
    bench::add({.name = std::string(p.op) + ".fwd" + suffix, .shape = shape, .bytes = bytes, .setup = [p, blocked] {
                  return forward(p, blocked);
                }});
    bench::add(
        {.name = std::string(p.op) + ".bwd" + suffix, .shape = "bwd " + shape, .bytes = bytes, .setup = [p, blocked] {
           return backward(p, blocked);
         }});
  }
}

const bool registered = [] {
  add_cases(kPool2d, "[1,64,256,64] k2 s2");
  add_cases(kPool1d, "[1,256,1024] k4 s4");
  return true;
}();

}  // namespace
