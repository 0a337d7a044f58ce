// softmax and log_softmax over the last dim at the models' attention shapes, forward and
// backward. The peer is the raw oneDNN softmax_v2 primitive on the same buffers, created once in
// setup: forward, the JIT kernel libtse's f32 softmax forward runs on (log_softmax runs on
// libtse's own loops); backward, oneDNN's kernel for the same problem, which in 2.6 on AVX2 is
// its reference implementation (libtse's backward is its own loops).
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <utility>

#include "bench.hpp"
#include "tse/ops/softmax.hpp"

namespace {

using namespace tse;
using bench::Bench;
using dnnl::memory;

// The peer's engine, stream and primitives with their bound arguments. oneDNN sizes a primitive
// for the OpenMP team present at creation, so setup creates them under libtse's thread count.
struct Peer {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> steps;

  void run(int nt) {
    omp_set_num_threads(nt);
    for (const auto& [prim, args] : steps) prim.execute(stream, args);
    stream.wait();
  }
};

struct Problem {
  const char* model;
  int64_t batch, rows, cols;  // softmax over cols
  int64_t numel() const { return batch * rows * cols; }
};

// Swin window attention (64 windows x 4 heads, 64 tokens) and MaskNet (8 heads, 1001 frames).
constexpr Problem kSwin{"sw", 256, 64, 64}, kMaskNet{"mn", 8, 1001, 1001};

Tensor run_ours(bool log, const Tensor& x) { return log ? ops::log_softmax(x, -1) : ops::softmax(x, -1); }

dnnl::algorithm algorithm_of(bool log) {
  return log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
}

memory::desc rows_md(const Problem& p) {
  return {{p.batch * p.rows, p.cols}, memory::data_type::f32, memory::dims{p.cols, 1}};
}

dnnl::softmax_v2_forward::primitive_desc forward_pd(const Peer& peer, const Problem& p, bool log) {
  omp_set_num_threads(get_num_threads());
  const memory::desc md = rows_md(p);
  return {{dnnl::prop_kind::forward_training, algorithm_of(log), md, md, 1}, peer.engine};
}

// Attention-score-like inputs: spread over [-8, 8), so the exponentials span ~7 decades.
Tensor scores(const Problem& p, uint64_t seed) { return bench::uniform({p.batch, p.rows, p.cols}, -8.f, 8.f, seed); }

Bench forward(const Problem& p, bool log) {
  Tensor x = scores(p, 61);
  auto out = bench::buffer(p.numel());
  auto peer = std::make_shared<Peer>();
  const auto pd = forward_pd(*peer, p, log);
  peer->steps.emplace_back(
      dnnl::softmax_v2_forward(pd),
      std::unordered_map<int, memory>{{DNNL_ARG_SRC, memory(pd.src_desc(), peer->engine, x.data_ptr())},
                                      {DNNL_ARG_DST, memory(pd.dst_desc(), peer->engine, out->data())}});
  return {[=] { return run_ours(log, x); }, [=](int nt) { peer->run(nt); }, out};
}

// The backward for a fixed upstream gradient g on a graph built once and retained, so only the
// backward is timed; the peer reads the same forward output y.
Bench backward(const Problem& p, bool log) {
  Tensor x = scores(p, 62).requires_grad_();
  Tensor y = run_ours(log, x);
  Tensor g = bench::uniform({p.batch, p.rows, p.cols}, -1.f, 1.f, 63);
  auto out = bench::buffer(p.numel());
  auto peer = std::make_shared<Peer>();
  const auto fwd = forward_pd(*peer, p, log);
  const memory::desc md = rows_md(p);
  const dnnl::softmax_v2_backward::primitive_desc pd({algorithm_of(log), md, md, md, 1}, peer->engine, fwd);
  peer->steps.emplace_back(dnnl::softmax_v2_backward(pd),
                           std::unordered_map<int, memory>{{DNNL_ARG_DST, memory(md, peer->engine, y.data_ptr())},
                                                           {DNNL_ARG_DIFF_DST, memory(md, peer->engine, g.data_ptr())},
                                                           {DNNL_ARG_DIFF_SRC, memory(md, peer->engine, out->data())}});
  return {[=] { return autograd::grad({y}, {x}, {g}, /*retain_graph=*/true)[0]; }, [=](int nt) { peer->run(nt); }, out};
}

std::string shape_of(const Problem& p) {
  return "[" + std::to_string(p.batch) + "," + std::to_string(p.rows) + "," + std::to_string(p.cols) + "] dim -1";
}

void add_cases(const char* op, bool log, const Problem& p, std::vector<std::string> tags) {
  const std::string base = std::string(op) + "." + p.model;
  // forward: read x, write y; backward: read y and g, write dx
  bench::add({.name = base + "_fwd",
              .shape = shape_of(p),
              .tags = tags,
              .bytes = 8.0 * static_cast<double>(p.numel()),
              .rtol = 1e-4,
              .atol = 1e-6,
              .setup = [p, log] { return forward(p, log); }});
  bench::add({.name = base + "_bwd",
              .shape = "bwd " + shape_of(p),
              .tags = tags,
              .bytes = 12.0 * static_cast<double>(p.numel()),
              .rtol = 1e-4,
              .atol = 1e-2,  // dx cancels to ~0 in places: compare there at ~1% of the operands' scale
              .setup = [p, log] { return backward(p, log); }});
}

const bool registered = [] {
  add_cases("softmax", false, kSwin, {"short"});
  add_cases("softmax", false, kMaskNet, {"long"});
  add_cases("log_softmax", true, kSwin, {"short"});
  return true;
}();

}  // namespace
