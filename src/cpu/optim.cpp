// CPU kernels of the optimiser updates (AdamW, SGD) and of gradient clipping. One fused pass over
// every tensor of a step, split over the thread pool by element range of their concatenation (one
// parallel region per step); nothing is allocated per step.
//
// The formulas follow PyTorch's single-tensor (for-loop) implementations operation by operation,
// in the parameter's dtype with the step's scalars computed in double and then rounded to it, as
// PyTorch's Python scalars are. This file is compiled with -ffp-contract=off (src/CMakeLists.txt):
// a contracted multiply-add in the vector body but not in the scalar tail would make an element's
// bits depend on where a thread's chunk ends.
#include "src/cpu/optim.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"

namespace tse::cpu {

namespace {

// The optimiser loops stream 4-6 arrays: split only well above an OpenMP region's cost.
constexpr int64_t kUpdateGrain = 32768;
// Norm partial sums are taken over fixed blocks and added in block order (thread-count free).
constexpr int64_t kNormBlock = 16384;

template <typename T>
struct AdamWScalars {
  T decay, w, one_minus_w, b2, one_minus_b2, bc2_sqrt, eps, neg_step;
};

template <typename T, bool kAmsgrad, bool kLerpLow>
void adamw_loop(const AdamWScalars<T> c, T* __restrict P, const T* __restrict G, T* __restrict M, T* __restrict V,
                T* __restrict VM, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    const T g = G[i], m0 = M[i];
    // exp_avg.lerp_(g, w): PyTorch's two forms, by |w| < 0.5
    const T m = kLerpLow ? m0 + c.w * (g - m0) : g - (g - m0) * c.one_minus_w;
    const T v = V[i] * c.b2 + c.one_minus_b2 * g * g;  // exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
    M[i] = m;
    V[i] = v;
    T vh = v;
    if constexpr (kAmsgrad) {
      vh = !(v <= VM[i]) ? v : VM[i];  // torch.maximum: a NaN v propagates
      VM[i] = vh;
    }
    const T denom = std::sqrt(vh) / c.bc2_sqrt + c.eps;
    P[i] = P[i] * c.decay + c.neg_step * m / denom;  // p.mul_(decay); p.addcdiv_(m, denom, -step_size)
  }
}

}  // namespace

namespace {

// Calls f(item, lo, hi) for the part [lo, hi) of each item that falls in the flat range [b, e).
template <typename Item, typename F>
void for_each_part(const Item* items, size_t count, int64_t b, int64_t e, const F& f) {
  size_t k = static_cast<size_t>(
      std::upper_bound(items, items + count, b, [](int64_t x, const Item& it) { return x < it.begin; }) - items);
  k = k == 0 ? 0 : k - 1;
  for (; k < count && items[k].begin < e; ++k) {
    const Item& it = items[k];
    const int64_t lo = std::max(b, it.begin) - it.begin, hi = std::min(e, it.begin + it.numel) - it.begin;
    if (lo < hi) f(it, lo, hi);
  }
}

int64_t total_numel(const auto* items, size_t count) {
  return count == 0 ? 0 : items[count - 1].begin + items[count - 1].numel;
}

template <typename T>
void adamw_part(const AdamWItem& it, int64_t b, int64_t e) {
  const AdamWStep& s = it.s;
  const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  AdamWScalars<T> c;
  c.decay = static_cast<T>(1.0 - s.lr * s.weight_decay);  // p.mul_(1 - lr * wd)
  c.w = static_cast<T>(1.0 - s.beta1);                     // exp_avg.lerp_(g, 1 - beta1)
  c.one_minus_w = T(1) - c.w;
  c.b2 = static_cast<T>(s.beta2);
  c.one_minus_b2 = static_cast<T>(1.0 - s.beta2);
  c.bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  c.eps = static_cast<T>(s.eps);
  c.neg_step = static_cast<T>(-(s.lr / bc1));
  const bool lerp_low = std::abs(c.w) < T(0.5);
  T* P = static_cast<T*>(it.p);
  const T* G = static_cast<const T*>(it.grad);
  T* M = static_cast<T*>(it.exp_avg);
  T* V = static_cast<T*>(it.exp_avg_sq);
  T* VM = static_cast<T*>(it.max_exp_avg_sq);
  // One loop per (amsgrad, lerp branch): a per-element select keeps GCC from vectorising.
  if (s.amsgrad) {
    lerp_low ? adamw_loop<T, true, true>(c, P, G, M, V, VM, b, e) : adamw_loop<T, true, false>(c, P, G, M, V, VM, b, e);
  } else {
    lerp_low ? adamw_loop<T, false, true>(c, P, G, M, V, VM, b, e)
             : adamw_loop<T, false, false>(c, P, G, M, V, VM, b, e);
  }
}

template <typename T>
void sgd_part(const SGDItem& it, int64_t b, int64_t e) {
  const SGDStep& s = it.s;
  const T wd = static_cast<T>(s.weight_decay);
  const T mom = static_cast<T>(s.momentum);
  const T one_minus_damp = static_cast<T>(1.0 - s.dampening);
  const T neg_lr = static_cast<T>(-s.lr);
  const bool use_wd = s.weight_decay != 0.0;
  T* __restrict P = static_cast<T*>(it.p);
  const T* __restrict G = static_cast<const T*>(it.grad);
  T* __restrict B = static_cast<T*>(it.buf);
  const bool first = s.first, nesterov = s.nesterov;
  if (!B) {
    for (int64_t i = b; i < e; ++i) {
      const T g = use_wd ? G[i] + wd * P[i] : G[i];  // grad.add(p, alpha=wd)
      P[i] = P[i] + neg_lr * g;                      // p.add_(g, alpha=-lr)
    }
    return;
  }
  for (int64_t i = b; i < e; ++i) {
    const T g = use_wd ? G[i] + wd * P[i] : G[i];
    const T bi = first ? g : B[i] * mom + one_minus_damp * g;  // clone(g) / buf.mul_(m).add_(g, 1-d)
    B[i] = bi;
    const T d = nesterov ? g + mom * bi : bi;
    P[i] = P[i] + neg_lr * d;
  }
}

}  // namespace

void adamw(const AdamWItem* items, size_t count) {
  detail::parallel_for(0, total_numel(items, count), kUpdateGrain, [&](int64_t b, int64_t e) {
    for_each_part(items, count, b, e, [](const AdamWItem& it, int64_t lo, int64_t hi) {
      dispatch_floating(it.dtype, "adamw", [&]<typename T>() { adamw_part<T>(it, lo, hi); });
    });
  });
}

void sgd(const SGDItem* items, size_t count) {
  detail::parallel_for(0, total_numel(items, count), kUpdateGrain, [&](int64_t b, int64_t e) {
    for_each_part(items, count, b, e, [](const SGDItem& it, int64_t lo, int64_t hi) {
      dispatch_floating(it.dtype, "sgd", [&]<typename T>() { sgd_part<T>(it, lo, hi); });
    });
  });
}

double grad_norm_pow(const Tensor& grad, double p) {
  double total = 0.0;
  dispatch_floating(grad.dtype(), "clip_grad_norm_", [&]<typename T>() {
    const T* G = grad.data<T>();
    const int64_t n = grad.numel();
    const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
    std::vector<double> part(static_cast<size_t>(blocks), 0.0);
    const bool inf = std::isinf(p);
    detail::parallel_for(0, blocks, 4, [&](int64_t bb, int64_t be) {
      for (int64_t blk = bb; blk < be; ++blk) {
        const int64_t b = blk * kNormBlock, e = std::min(n, b + kNormBlock);
        double acc = 0.0;
        if (inf) {
          for (int64_t i = b; i < e; ++i) {
            const double a = std::abs(static_cast<double>(G[i]));
            if (!(a <= acc)) acc = a;  // NaN wins
          }
        } else if (p == 2.0) {
#pragma omp simd reduction(+ : acc)
          for (int64_t i = b; i < e; ++i) acc += static_cast<double>(G[i]) * static_cast<double>(G[i]);
        } else if (p == 1.0) {
#pragma omp simd reduction(+ : acc)
          for (int64_t i = b; i < e; ++i) acc += std::abs(static_cast<double>(G[i]));
        } else {
          for (int64_t i = b; i < e; ++i) acc += std::pow(std::abs(static_cast<double>(G[i])), p);
        }
        part[static_cast<size_t>(blk)] = acc;
      }
    });
    for (double v : part) {
      if (inf) {
        if (!(v <= total)) total = v;
      } else {
        total += v;
      }
    }
  });
  return total;
}

void clip_value(const Tensor& grad, double clip) {
  dispatch_floating(grad.dtype(), "clip_grad_value_", [&]<typename T>() {
    T* G = grad.data<T>();
    const T hi = static_cast<T>(clip), lo = -hi;
    detail::parallel_for(0, grad.numel(), kUpdateGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T g = G[i];
        G[i] = g < lo ? lo : (g > hi ? hi : g);
      }
    });
  });
}

}  // namespace tse::cpu
