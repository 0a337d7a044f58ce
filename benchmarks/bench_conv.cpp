// Convolutions at the shapes of the models, forward and backward: the Conformer's conv module
// (depthwise conv1d, 33 taps over 256 channels x 626 frames, and the pointwise 256 -> 512 conv1d),
// HTSAT's patch embedding (conv2d 4x4 stride 4, 1 -> 128 channels on 256x256) and its inverse
// (conv_transpose2d 128 -> 1 on 64x64).
//
// The peer is the raw oneDNN primitive for the same problem, created once in setup, in the
// layouts oneDNN picks for it when asked with format_tag::any (blocked layouts for its JIT
// kernels, plain ones for its GEMM-based kernel). Its inputs are reordered into those layouts
// once in setup, as in a network that keeps oneDNN's layouts between layers, so the forward
// ratio is what libtse's plain NCHW API costs (reorders, output allocation, cache lookup, tape).
// Its result reaches *expect through a reorder to the plain layout: once, for the gate, in the
// forward rows; on every call in the backward rows, where ours pays the same bytes for the
// concatenation of the gradients the gate needs.
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <tse/ops/conv.hpp>
#include <unordered_map>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;
using dnnl::memory;
using tag = memory::format_tag;

// Positive operands keep every output a sum of positive terms (see bench_matmul.cpp).
constexpr double kRtol = 1e-4;

memory::desc any_md(const memory::dims& d) { return {d, memory::data_type::f32, tag::any}; }
memory::desc plain_md(const memory::dims& d, tag t) { return {d, memory::data_type::f32, t}; }

// The primitives of one side of a case, bound to buffers in oneDNN's chosen layouts.
struct Peer {
  struct Step {
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
  };
  struct Result {
    memory produced;     // in the primitive's layout
    memory::desc plain;  // the user's layout
    size_t offset;       // in *expect, in floats
  };
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<Step> steps;
  std::vector<Result> results;
  std::shared_ptr<std::vector<float>> expect;
  bool copy_every_run = false;
  bool copied = false;

  Peer() { omp_set_num_threads(get_num_threads()); }  // primitives are sized for this team

  // A buffer in layout `want` holding t's values (t in the plain layout `plain`).
  memory input(const memory::desc& want, const memory::desc& plain, const Tensor& t) {
    memory user(plain, engine, const_cast<float*>(bench::cptr(t)));
    memory m(want, engine);
    dnnl::reorder(user, m).execute(stream, user, m);
    stream.wait();
    return m;
  }

  // A buffer in layout `want` whose values become expect[offset, offset + n).
  memory output(const memory::desc& want, const memory::desc& plain, size_t offset) {
    memory m(want, engine);
    results.push_back({m, plain, offset});
    return m;
  }

  void run(int nt) {
    omp_set_num_threads(nt);
    for (const Step& s : steps) s.prim.execute(stream, s.args);
    if (copy_every_run || !copied) {
      for (const Result& r : results) {
        memory src = r.produced, dst(r.plain, engine, expect->data() + r.offset);
        dnnl::reorder(src, dst).execute(stream, src, dst);
      }
      copied = true;
    }
    stream.wait();
  }
};

// One convolution problem in oneDNN's terms (for a transposed conv: the deconvolution's).
struct Problem {
  memory::dims src, weights, dst, bias;
  tag act, wei;  // the user's plain layouts (weights: as the torch tensor is stored)
  memory::dims strides, dilates, pad_l, pad_r;
  int64_t flops;  // of the forward
};

int64_t numel(const memory::dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

Shape shape(const memory::dims& d) { return Shape(d.begin(), d.end()); }

// The user tensors of a case: its x, weight (torch layout), bias, and an upstream gradient.
struct Operands {
  Tensor x, w, b, g;
};

Operands operands(const Problem& p, bool transposed) {
  // torch's weight: (O, I / groups, k...) for a conv, (I, O / groups, k...) for a transposed conv,
  // each the dims oneDNN names (O, I / groups, k...) in the user layout p.wei.
  Shape ws = shape(p.weights);
  if (ws.size() == p.src.size() + 1) {  // grouped: fold the groups dim into the leading one
    ws[1] *= ws[0];
    ws.erase(ws.begin());
  }
  if (transposed) std::swap(ws[0], ws[1]);
  return {bench::uniform(shape(p.src), 0.f, 1.f, 61), bench::uniform(ws, 0.f, 1.f, 62),
          bench::uniform(shape(p.bias), 0.f, 1.f, 63), bench::uniform(shape(p.dst), 0.f, 1.f, 64)};
}

template <typename FwdDesc, typename FwdPd>
FwdPd forward_pd(const Problem& p, dnnl::algorithm algo, const dnnl::engine& e) {
  const FwdDesc d(dnnl::prop_kind::forward_training, algo, any_md(p.src), any_md(p.weights), any_md(p.bias),
                  any_md(p.dst), p.strides, p.dilates, p.pad_l, p.pad_r);
  return FwdPd(d, e);
}

// The forward peer: y = op(x, w) + b.
template <typename Fwd>
void add_forward(Peer& peer, const Problem& p, const Operands& in, dnnl::algorithm algo) {
  const auto pd = forward_pd<typename Fwd::desc, typename Fwd::primitive_desc>(p, algo, peer.engine);
  peer.steps.push_back({Fwd(pd),
                        {{DNNL_ARG_SRC, peer.input(pd.src_desc(), plain_md(p.src, p.act), in.x)},
                         {DNNL_ARG_WEIGHTS, peer.input(pd.weights_desc(), plain_md(p.weights, p.wei), in.w)},
                         {DNNL_ARG_BIAS, peer.input(pd.bias_desc(), plain_md(p.bias, tag::x), in.b)},
                         {DNNL_ARG_DST, peer.output(pd.dst_desc(), plain_md(p.dst, p.act), 0)}}});
}

// The backward peer: dx from backward-data, dw and db from backward-weights, written to expect
// as [dx, dw, db] like ours.
template <typename Fwd, typename BwdData, typename BwdWeights>
void add_backward(Peer& peer, const Problem& p, const Operands& in, dnnl::algorithm algo) {
  const auto hint = forward_pd<typename Fwd::desc, typename Fwd::primitive_desc>(p, algo, peer.engine);
  const typename BwdData::desc dd(algo, any_md(p.src), any_md(p.weights), any_md(p.dst), p.strides, p.dilates, p.pad_l,
                                  p.pad_r);
  const typename BwdData::primitive_desc dpd(dd, peer.engine, hint);
  const typename BwdWeights::desc wd(algo, any_md(p.src), any_md(p.weights), any_md(p.bias), any_md(p.dst), p.strides,
                                     p.dilates, p.pad_l, p.pad_r);
  const typename BwdWeights::primitive_desc wpd(wd, peer.engine, hint);
  const size_t nx = static_cast<size_t>(numel(p.src)), nw = static_cast<size_t>(numel(p.weights));
  peer.steps.push_back({BwdData(dpd),
                        {{DNNL_ARG_DIFF_DST, peer.input(dpd.diff_dst_desc(), plain_md(p.dst, p.act), in.g)},
                         {DNNL_ARG_WEIGHTS, peer.input(dpd.weights_desc(), plain_md(p.weights, p.wei), in.w)},
                         {DNNL_ARG_DIFF_SRC, peer.output(dpd.diff_src_desc(), plain_md(p.src, p.act), 0)}}});
  peer.steps.push_back({BwdWeights(wpd),
                        {{DNNL_ARG_SRC, peer.input(wpd.src_desc(), plain_md(p.src, p.act), in.x)},
                         {DNNL_ARG_DIFF_DST, peer.input(wpd.diff_dst_desc(), plain_md(p.dst, p.act), in.g)},
                         {DNNL_ARG_DIFF_WEIGHTS, peer.output(wpd.diff_weights_desc(), plain_md(p.weights, p.wei), nx)},
                         {DNNL_ARG_DIFF_BIAS, peer.output(wpd.diff_bias_desc(), plain_md(p.bias, tag::x), nx + nw)}}});
}

using ConvOp = std::function<Tensor(const Tensor& x, const Tensor& w, const Tensor& b)>;

Bench forward_case(const Problem& p, bool transposed, const ConvOp& op) {
  const Operands in = operands(p, transposed);
  auto peer = std::make_shared<Peer>();
  peer->expect = bench::buffer(numel(p.dst));
  if (transposed) {
    add_forward<dnnl::deconvolution_forward>(*peer, p, in, dnnl::algorithm::deconvolution_direct);
  } else {
    add_forward<dnnl::convolution_forward>(*peer, p, in, dnnl::algorithm::convolution_direct);
  }
  return {[=] { return op(in.x, in.w, in.b); }, [=](int nt) { peer->run(nt); }, peer->expect};
}

// The backward of y = op(x, w, b) for a fixed upstream gradient, on a graph built once and retained.
Bench backward_case(const Problem& p, bool transposed, const ConvOp& op) {
  const Operands in = operands(p, transposed);
  Tensor x = in.x, w = in.w, b = in.b;
  x.requires_grad_();
  w.requires_grad_();
  b.requires_grad_();
  const Tensor y = op(x, w, b);
  auto peer = std::make_shared<Peer>();
  peer->expect = bench::buffer(numel(p.src) + numel(p.weights) + numel(p.bias));
  peer->copy_every_run = true;
  if (transposed) {
    add_backward<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data, dnnl::deconvolution_backward_weights>(
        *peer, p, in, dnnl::algorithm::deconvolution_direct);
  } else {
    add_backward<dnnl::convolution_forward, dnnl::convolution_backward_data, dnnl::convolution_backward_weights>(
        *peer, p, in, dnnl::algorithm::convolution_direct);
  }
  const Tensor g = in.g;
  return {[=] {
            const std::vector<Tensor> d = autograd::grad({y}, {x, w, b}, {g}, /*retain_graph=*/true);
            return ops::cat({d[0].flatten(), d[1].flatten(), d[2].flatten()});
          },
          [=](int nt) { peer->run(nt); }, peer->expect};
}

struct Family {
  const char* name;
  const char* shape;
  Problem problem;
  bool transposed;
  ConvOp op;
};

const bool registered = [] {
  constexpr int64_t C = 256, T = 626;
  const Family families[] = {
      {"cf_dw33",
       "[1,256,626] * [256,1,33] g256 p16",
       {{1, C, T}, {C, 1, 1, 33}, {1, C, T}, {C}, tag::ncw, tag::goiw, {1}, {0}, {16}, {16}, 2 * C * T * 33},
       false,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::conv1d(x, w, b, 1, 16, 1, C); }},
      {"cf_pw256x512",
       "[1,256,626] * [512,256,1]",
       {{1, C, T}, {512, C, 1}, {1, 512, T}, {512}, tag::ncw, tag::oiw, {1}, {0}, {0}, {0}, 2 * 512 * C * T},
       false,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::conv1d(x, w, b); }},
      {"htsat_patch4",
       "[1,1,256,256] * [128,1,4,4] s4",
       {{1, 1, 256, 256},
        {128, 1, 4, 4},
        {1, 128, 64, 64},
        {128},
        tag::nchw,
        tag::oihw,
        {4, 4},
        {0, 0},
        {0, 0},
        {0, 0},
        2 * 128 * 64 * 64 * 16},
       false,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::conv2d(x, w, b, 4); }},
      // oneDNN's deconvolution weights are (O, I, kh, kw); torch's (I, O, kh, kw) storage is iohw.
      {"htsat_unpatch4",
       "[1,128,64,64] *T [128,1,4,4] s4",
       {{1, 128, 64, 64},
        {1, 128, 4, 4},
        {1, 1, 256, 256},
        {1},
        tag::nchw,
        tag::iohw,
        {4, 4},
        {0, 0},
        {0, 0},
        {0, 0},
        2 * 128 * 64 * 64 * 16},
       true,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::conv_transpose2d(x, w, b, 4); }},
  };
  for (const Family& f : families) {
    const std::string prefix = f.transposed ? "conv_transpose" : "conv";
    bench::add({.name = prefix + "." + f.name,
                .shape = f.shape,
                .flops = static_cast<double>(f.problem.flops),
                .rtol = kRtol,
                .setup = [f] { return forward_case(f.problem, f.transposed, f.op); }});
    bench::add({.name = prefix + "_bwd." + f.name,
                .shape = std::string("bwd ") + f.shape,
                .flops = 2.0 * static_cast<double>(f.problem.flops),
                .rtol = kRtol,
                .setup = [f] { return backward_case(f.problem, f.transposed, f.op); }});
  }
  return true;
}();

}  // namespace
