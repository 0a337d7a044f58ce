// The matmul family on CUDA (src/cpu/matmul.hpp's contract): one cuBLAS GEMM, or one strided-
// batched GEMM, per call.
//
// cuBLAS is column-major; our matrices are row-major, so C = A B is computed as C^T = B^T A^T:
// a row-major operand is its own transpose read column-major (op N), a column-major one (a plain
// transpose view) is read with op T; out is contiguous, so ldc = N.
//
// Types: f32 (CUBLAS_COMPUTE_32F; TF32 only when set_cuda_allow_tf32(true)), f64, and autocast's
// bf16 operands with an f32 out (f32 accumulation). A bias is written into C first and the GEMM
// adds to it (beta = 1).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "src/cpu/matmul.hpp"
#include "src/cuda/cuda_check.hpp"
#include "tse/core/device.hpp"

namespace tse::cuda {
namespace {

/// cuBLAS, loaded on the first CUDA GEMM: linking it would map libcublas and libcublasLt (about
/// 200 MB of resident memory, +40% import time) into every process that loads libtse, GPU or not.
struct Cublas {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  // The C entry points (the header adds C++ overloads taking a cudaDataType compute type).
  cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, const void*,
                         cudaDataType, int, const void*, cudaDataType, int, const void*, void*, cudaDataType, int,
                         cublasComputeType_t, cublasGemmAlgo_t);
  cublasStatus_t (*gemm_strided_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                         const void*, const void*, cudaDataType, int, long long, const void*,
                                         cudaDataType, int, long long, const void*, void*, cudaDataType, int, long long,
                                         int, cublasComputeType_t, cublasGemmAlgo_t);
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};

const Cublas& cublas() {
  static const Cublas api = [] {
    const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);  // the ABI we compiled for
    void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* err = dlerror();
      throw BackendError(tse::detail::str_cat("cuda matmul: cannot load ", soname, " (", err ? err : "?",
                                              "); install the CUDA toolkit's cuBLAS or put it on LD_LIBRARY_PATH"));
    }
    const auto sym = [&](const char* name) {
      void* f = dlsym(lib, name);
      if (!f) throw BackendError(tse::detail::str_cat("cuda matmul: ", soname, " has no ", name));
      return f;
    };
    Cublas c;
    c.create = reinterpret_cast<decltype(c.create)>(sym("cublasCreate_v2"));
    c.destroy = reinterpret_cast<decltype(c.destroy)>(sym("cublasDestroy_v2"));
    c.gemm = reinterpret_cast<decltype(c.gemm)>(sym("cublasGemmEx"));
    c.gemm_strided_batched = reinterpret_cast<decltype(c.gemm_strided_batched)>(sym("cublasGemmStridedBatchedEx"));
    c.status_name = reinterpret_cast<decltype(c.status_name)>(sym("cublasGetStatusName"));
    c.status_string = reinterpret_cast<decltype(c.status_string)>(sym("cublasGetStatusString"));
    return c;
  }();
  return api;
}

}  // namespace
}  // namespace tse::cuda

#define TSE_CUBLAS_CHECK(call)                                                                                  \
  do {                                                                                                          \
    cublasStatus_t tse_st_ = (call);                                                                            \
    if (tse_st_ != CUBLAS_STATUS_SUCCESS) {                                                                     \
      throw ::tse::BackendError(::tse::detail::str_cat(#call, " failed: ", cublas().status_name(tse_st_), " (", \
                                                       static_cast<int>(tse_st_),                               \
                                                       "): ", cublas().status_string(tse_st_)));                \
    }                                                                                                           \
  } while (0)

namespace tse::cuda {
namespace {

/// One cuBLAS handle per host thread and device (handles are not to be shared between threads
/// running at once); created on first use, destroyed with the thread.
cublasHandle_t handle(int device) {
  struct Handles {
    std::vector<cublasHandle_t> h;
    ~Handles() {
      for (cublasHandle_t x : h)
        if (x) cublas().destroy(x);
    }
  };
  thread_local Handles handles;
  if (handles.h.size() <= static_cast<size_t>(device)) handles.h.resize(static_cast<size_t>(device) + 1, nullptr);
  cublasHandle_t& h = handles.h[static_cast<size_t>(device)];
  if (!h) TSE_CUBLAS_CHECK(cublas().create(&h));
  return h;
}

/// An operand's last two dims as cuBLAS reads them for C^T = B^T A^T (see the file comment).
struct Operand {
  cublasOperation_t op;
  int64_t ld;
};

Operand operand(const Tensor& t) {
  const int64_t r = t.dim(), rows = t.size(r - 2), cols = t.size(r - 1);
  const int64_t rs = rows == 1 ? cols : t.stride(r - 2);  // as in matmul_operand_ok
  const int64_t cs = cols == 1 ? 1 : t.stride(r - 1);
  if (cs == 1 && rs >= cols) return {CUBLAS_OP_N, std::max<int64_t>(rs, 1)};
  return {CUBLAS_OP_T, std::max<int64_t>(cs, 1)};
}

/// t's stride over out's flattened batch dims, if one stride describes them (a broadcast dim
/// counts as stride 0); -1 when it does not.
int64_t flat_batch_stride(const Tensor& t, const Tensor& out) {
  const int64_t nb = out.dim() - 2;
  if (nb <= 0) return 0;
  std::vector<int64_t> eff(static_cast<size_t>(nb));
  for (int64_t d = 0; d < nb; ++d) eff[static_cast<size_t>(d)] = t.size(d) == 1 ? 0 : t.stride(d);
  for (int64_t d = 0; d + 1 < nb; ++d)
    if (eff[static_cast<size_t>(d)] != eff[static_cast<size_t>(d + 1)] * out.size(d + 1)) return -1;
  return eff[static_cast<size_t>(nb - 1)];
}

/// t's element offset for out's flattened batch index i.
int64_t batch_offset(const Tensor& t, const Tensor& out, int64_t i) {
  int64_t off = 0;
  for (int64_t d = out.dim() - 3; d >= 0; --d) {
    const int64_t idx = i % out.size(d);
    i /= out.size(d);
    if (t.size(d) != 1) off += idx * t.stride(d);
  }
  return off;
}

template <typename T>
__global__ void broadcast_rows_kernel(T* out, const T* row, int64_t rows, int64_t n) {
  const int64_t total = rows * n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = row[i % n];
}

/// out's rows = bias (or zeros).
void init_output(const Tensor& out, const Tensor& bias, int64_t rows, int64_t n) {
  const size_t bytes = static_cast<size_t>(out.numel()) * out.itemsize();
  if (!bias.defined()) {
    TSE_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, bytes));
    return;
  }
  const int64_t total = rows * n;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((total + threads - 1) / threads, 65535 * 32));
  if (out.dtype() == DType::f64) {
    broadcast_rows_kernel<<<blocks, threads>>>(static_cast<double*>(out.data_ptr()),
                                               static_cast<const double*>(bias.data_ptr()), rows, n);
  } else {
    broadcast_rows_kernel<<<blocks, threads>>>(static_cast<float*>(out.data_ptr()),
                                               static_cast<const float*>(bias.data_ptr()), rows, n);
  }
  TSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  const int device = out.device().index;
  TSE_CUDA_CHECK(cudaSetDevice(device));
  const int64_t r = out.dim(), M = out.size(r - 2), N = out.size(r - 1), K = a.size(r - 1);
  if (out.numel() == 0) return;
  const int64_t batch = out.numel() / (M * N);
  TSE_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX, "matmul: a GEMM of ", M, " x ", N, " x ", K,
            " exceeds cuBLAS's int dimensions");
  const bool accumulate = bias.defined() || K == 0;
  if (accumulate) init_output(out, bias, out.numel() / N, N);
  if (K == 0) return;

  cudaDataType_t ab_type, c_type;
  cublasComputeType_t compute;
  const bool f64 = out.dtype() == DType::f64;
  if (f64) {
    ab_type = c_type = CUDA_R_64F;
    compute = CUBLAS_COMPUTE_64F;
  } else if (a.dtype() == DType::bf16) {
    ab_type = CUDA_R_16BF;
    c_type = CUDA_R_32F;
    compute = CUBLAS_COMPUTE_32F;
  } else {
    ab_type = c_type = CUDA_R_32F;
    compute = cuda_allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  }
  const double one64 = 1.0, beta64 = accumulate ? 1.0 : 0.0;
  const float one32 = 1.f, beta32 = accumulate ? 1.f : 0.f;
  const void* alpha = f64 ? static_cast<const void*>(&one64) : static_cast<const void*>(&one32);
  const void* beta = f64 ? static_cast<const void*>(&beta64) : static_cast<const void*>(&beta32);

  const Operand oa = operand(a), ob = operand(b);
  const size_t ab_item = a.itemsize();
  const char* ap = static_cast<const char*>(a.data_ptr());
  const char* bp = static_cast<const char*>(b.data_ptr());
  char* cp = static_cast<char*>(out.data_ptr());
  cublasHandle_t h = handle(device);
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int64_t sa = flat_batch_stride(a, out), sb = flat_batch_stride(b, out);
  if (batch == 1 || (sa >= 0 && sb >= 0)) {
    // All batches in strided-batched calls (chunks keep the count an int).
    for (int64_t b0 = 0; b0 < batch; b0 += INT_MAX) {
      const int count = static_cast<int>(std::min<int64_t>(INT_MAX, batch - b0));
      TSE_CUBLAS_CHECK(cublas().gemm_strided_batched(
          h, ob.op, oa.op, m, n, k, alpha, bp + static_cast<size_t>(b0 * sb) * ab_item, ab_type,
          static_cast<int>(ob.ld), sb, ap + static_cast<size_t>(b0 * sa) * ab_item, ab_type, static_cast<int>(oa.ld),
          sa, beta, cp + static_cast<size_t>(b0 * M * N) * out.itemsize(), c_type, m, M * N, count, compute,
          CUBLAS_GEMM_DEFAULT));
    }
    return;
  }
  // Batch strides that no single stride describes: one GEMM per batch entry.
  for (int64_t i = 0; i < batch; ++i) {
    TSE_CUBLAS_CHECK(
        cublas().gemm(h, ob.op, oa.op, m, n, k, alpha, bp + static_cast<size_t>(batch_offset(b, out, i)) * ab_item,
                      ab_type, static_cast<int>(ob.ld), ap + static_cast<size_t>(batch_offset(a, out, i)) * ab_item,
                      ab_type, static_cast<int>(oa.ld), beta, cp + static_cast<size_t>(i * M * N) * out.itemsize(),
                      c_type, m, compute, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace tse::cuda
