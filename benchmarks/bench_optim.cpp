// Optimiser steps over the paper-size ConformerTSE's parameters (32,004,353 f32 values, in the
// model's own tensor shapes): AdamW and SGD with momentum, through tse::optim (one fused kernel per
// tensor), against a plain OpenMP loop over the same values laid out flat (the "raw loops" peer; at
// one thread, the naive single-threaded loop). The parameters are views into one flat buffer so
// the gate can compare all of them; the optimiser still sees one tensor per model parameter.
// bytes = the minimum traffic: AdamW reads p, g, m, v and writes p, m, v (7 x 4 B per value), SGD
// with momentum reads p, g, buf and writes p, buf (5 x 4 B).
#include <cmath>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;

struct Params {
  Tensor flat, flat_grad;
  std::vector<Tensor> params;
};

std::vector<Shape> model_shapes() {
  static const std::vector<Shape> shapes = [] {
    manual_seed(0);
    auto model = std::make_shared<models::ConformerTSE>();
    std::vector<Shape> out;
    for (const Tensor& p : model->parameters()) out.push_back(p.sizes());
    return out;
  }();
  return shapes;
}

int64_t model_numel() {
  int64_t n = 0;
  for (const Shape& s : model_shapes()) n += shape_numel(s);
  return n;
}

// Leaves over one flat buffer (and their gradients over another), in the model's shapes.
Params model_params() {
  Params r;
  const int64_t n = model_numel();
  r.flat = bench::uniform({n}, -0.1f, 0.1f, 11);
  r.flat_grad = bench::uniform({n}, -1.f, 1.f, 12);
  int64_t off = 0;
  for (const Shape& s : model_shapes()) {
    Tensor p = Tensor::from_storage(r.flat.storage(), s, contiguous_strides(s), off, DType::f32);
    p.requires_grad_();
    p.set_grad(Tensor::from_storage(r.flat_grad.storage(), s, contiguous_strides(s), off, DType::f32));
    r.params.push_back(p);
    off += shape_numel(s);
  }
  return r;
}

Bench adamw_bench() {
  Params ps = model_params();
  const int64_t n = ps.flat.numel();
  auto opt = std::make_shared<optim::AdamW>(ps.params, optim::AdamWOptions{.lr = 1e-3, .weight_decay = 1e-2});
  // The peer's own copies of p, m, v, starting where ours start.
  auto p = std::make_shared<std::vector<float>>(bench::cptr(ps.flat), bench::cptr(ps.flat) + n);
  auto m = bench::buffer(n), v = bench::buffer(n);
  auto t = std::make_shared<int64_t>(0);
  const Tensor grad = ps.flat_grad;
  return {[=] {
            opt->step();
            return ps.flat;
          },
          [=](int nt) {
            const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 1e-2;
            ++*t;
            const float decay = static_cast<float>(1 - lr * wd), w = static_cast<float>(1 - b1);
            const float fb2 = static_cast<float>(b2), omb2 = static_cast<float>(1 - b2);
            const float bc2s = static_cast<float>(std::sqrt(1 - std::pow(b2, double(*t))));
            const float step = static_cast<float>(lr / (1 - std::pow(b1, double(*t))));
            const float feps = static_cast<float>(eps);
            float *P = p->data(), *M = m->data(), *V = v->data();
            const float* G = bench::cptr(grad);
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; ++i) {
              M[i] += w * (G[i] - M[i]);
              V[i] = V[i] * fb2 + omb2 * G[i] * G[i];
              P[i] = P[i] * decay - step * M[i] / (std::sqrt(V[i]) / bc2s + feps);
            }
          },
          p};
}

Bench sgd_bench() {
  Params ps = model_params();
  const int64_t n = ps.flat.numel();
  auto opt = std::make_shared<optim::SGD>(ps.params, optim::SGDOptions{.lr = 1e-2, .momentum = 0.9});
  auto p = std::make_shared<std::vector<float>>(bench::cptr(ps.flat), bench::cptr(ps.flat) + n);
  auto buf = bench::buffer(n);
  auto first = std::make_shared<bool>(true);
  const Tensor grad = ps.flat_grad;
  return {[=] {
            opt->step();
            return ps.flat;
          },
          [=](int nt) {
            const float mom = 0.9f, lr = 1e-2f;
            const bool f = *first;
            *first = false;
            float *P = p->data(), *B = buf->data();
            const float* G = bench::cptr(grad);
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; ++i) {
              B[i] = f ? G[i] : B[i] * mom + G[i];
              P[i] -= lr * B[i];
            }
          },
          p};
}

// The paper-size model's parameter count (conformer_tse.hpp); setup checks it against the model.
constexpr int64_t kModelParams = 32004353;

Bench checked(Bench (*make)()) {
  TSE_CHECK(model_numel() == kModelParams, "bench_optim: the model has ", model_numel(), " parameters, expected ",
            kModelParams);
  return make();
}

const bool registered = [] {
  constexpr double f = sizeof(float);
  const std::string shape = std::to_string(kModelParams) + " f32, model shapes";
  bench::add({.name = "optim.adamw",
              .shape = shape,
              .tags = {"optim", "long"},
              .bytes = 7 * f * kModelParams,
              .rtol = 1e-5,
              .atol = 1e-3,  // values are ~0.1: an update that lands near 0 loses its relative digits
              .setup = [] { return checked(adamw_bench); }});
  bench::add({.name = "optim.sgd_momentum",
              .shape = shape,
              .tags = {"optim", "long"},
              .bytes = 5 * f * kModelParams,
              .rtol = 1e-5,
              .atol = 1e-3,  // values are ~0.1: an update that lands near 0 loses its relative digits
              .setup = [] { return checked(sgd_bench); }});
  return true;
}();

}  // namespace
