// CPU kernels of the optimiser updates (AdamW, SGD) and of gradient clipping. One fused pass per
// tensor, split over the thread pool by element range; nothing is allocated per step.
//
// The formulas follow PyTorch's single-tensor (for-loop) implementations operation by operation,
// in the parameter's dtype with the step's scalars computed in double and then rounded to it, as
// PyTorch's Python scalars are. This file is compiled with -ffp-contract=off (src/CMakeLists.txt):
// a contracted multiply-add in the vector body but not in the scalar tail would make an element's
// bits depend on where a thread's chunk ends.
#include "src/cpu/optim.hpp"

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
T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void adamw(const AdamWStep& s, const Tensor& p, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
           const Tensor& max_exp_avg_sq) {
  dispatch_floating(p.dtype(), "adamw", [&]<typename T>() {
    const double bc1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
    const double bc2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
    const T decay = static_cast<T>(1.0 - s.lr * s.weight_decay);  // p.mul_(1 - lr * wd)
    const T w = static_cast<T>(1.0 - s.beta1);                     // exp_avg.lerp_(g, 1 - beta1)
    const T one_minus_w = T(1) - w;
    const bool lerp_low = std::abs(w) < T(0.5);
    const T b2 = static_cast<T>(s.beta2);
    const T one_minus_b2 = static_cast<T>(1.0 - s.beta2);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
    const T eps = static_cast<T>(s.eps);
    const T neg_step = static_cast<T>(-(s.lr / bc1));
    T* P = p.data<T>();
    const T* G = grad.data<T>();
    T* M = exp_avg.data<T>();
    T* V = exp_avg_sq.data<T>();
    T* VM = s.amsgrad ? max_exp_avg_sq.data<T>() : nullptr;
    detail::parallel_for(0, p.numel(), kUpdateGrain, [&](int64_t b, int64_t e) {
      // Two loops instead of a branch per element keep both vectorised.
      if (VM) {
        for (int64_t i = b; i < e; ++i) {
          const T g = G[i];
          const T m = lerp_low ? M[i] + w * (g - M[i]) : g - (g - M[i]) * one_minus_w;
          const T v = V[i] * b2 + one_minus_b2 * g * g;
          const T vmax = !(v <= VM[i]) ? v : VM[i];  // torch.maximum: a NaN v propagates
          M[i] = m;
          V[i] = v;
          VM[i] = vmax;
          const T denom = std::sqrt(vmax) / bc2_sqrt + eps;
          P[i] = P[i] * decay + neg_step * m / denom;
        }
      } else {
        for (int64_t i = b; i < e; ++i) {
          const T g = G[i];
          const T m = lerp_low ? M[i] + w * (g - M[i]) : g - (g - M[i]) * one_minus_w;
          const T v = V[i] * b2 + one_minus_b2 * g * g;
          M[i] = m;
          V[i] = v;
          const T denom = std::sqrt(v) / bc2_sqrt + eps;
          P[i] = P[i] * decay + neg_step * m / denom;
        }
      }
    });
  });
}

void sgd(const SGDStep& s, const Tensor& p, const Tensor& grad, const Tensor& buf) {
  dispatch_floating(p.dtype(), "sgd", [&]<typename T>() {
    const T wd = static_cast<T>(s.weight_decay);
    const T mom = static_cast<T>(s.momentum);
    const T one_minus_damp = static_cast<T>(1.0 - s.dampening);
    const T neg_lr = static_cast<T>(-s.lr);
    const bool use_wd = s.weight_decay != 0.0;
    T* P = p.data<T>();
    const T* G = grad.data<T>();
    T* B = ptr<T>(buf);
    const bool first = s.first, nesterov = s.nesterov;
    detail::parallel_for(0, p.numel(), kUpdateGrain, [&](int64_t b, int64_t e) {
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
