// Autocast: the thread-local mode and the cache of converted weights.
//
// A weight's converted copy lives in its Storage's derived() slot, so it dies with the weight and
// never outlives the memory it mirrors (a pointer-keyed side table would keep copies of freed
// weights and could match recycled memory). A registry of weak references lets clear_cache() and
// cached_bytes() reach every slot; one mutex guards slots and registry (lookups are a few hundred
// per model forward, conversions happen once per weight version).
#include "src/ops/autocast.hpp"

#include <memory>
#include <mutex>
#include <vector>

#include "src/core/layout.hpp"
#include "src/cpu/elementwise.hpp"
#include "src/cpu/matmul.hpp"
#include "src/dispatch.hpp"
#include "tse/core/error.hpp"

namespace tse {
namespace {

thread_local DType t_autocast_dtype = DType::f32;

const detail::KernelTable<detail::CopyFn> k_copy{"copy", &cpu::copy, TSE_CUDA_KERNEL(cuda::copy)};

struct CachedCast {
  int64_t offset;
  Shape sizes, strides;
  DType dtype;
  uint64_t version;
  Tensor copy;
};
struct CastsOfStorage {
  std::vector<CachedCast> entries;
};

std::mutex g_mutex;
std::vector<std::weak_ptr<Storage>> g_registry;  // storages whose derived() slot holds CastsOfStorage

CastsOfStorage& casts_of(const std::shared_ptr<Storage>& s) {
  std::shared_ptr<void>& slot = s->derived();
  if (!slot) {
    slot = std::make_shared<CastsOfStorage>();
    std::erase_if(g_registry, [](const std::weak_ptr<Storage>& w) { return w.expired(); });
    g_registry.push_back(s);
  }
  return *std::static_pointer_cast<CastsOfStorage>(slot);
}

}  // namespace

namespace autocast {

DType dtype() { return t_autocast_dtype; }

void set_dtype(DType dtype) {
  TSE_CHECK(dtype == DType::f32 || dtype == DType::bf16, "autocast: dtype must be bfloat16 (on) or float32 (off), got ",
            dtype, " (float16 GEMMs are not available on CPU)");
  t_autocast_dtype = dtype;
}

bool native_bf16(Device device) {
  // CUDA: cuBLAS's bf16 GEMMs run on the tensor cores of every GPU our sm_90 build runs on.
  if (!device.is_cpu()) return device.index >= 0 && device.index < cuda_device_count();
  return cpu::bf16_gemm_native();
}

size_t cached_bytes() {
  std::lock_guard<std::mutex> lock(g_mutex);
  size_t bytes = 0;
  for (const std::weak_ptr<Storage>& w : g_registry) {
    const std::shared_ptr<Storage> s = w.lock();
    if (!s || !s->derived()) continue;
    for (const CachedCast& e : std::static_pointer_cast<CastsOfStorage>(s->derived())->entries)
      bytes += e.copy.storage()->nbytes();
  }
  return bytes;
}

void clear_cache() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const std::weak_ptr<Storage>& w : g_registry)
    if (const std::shared_ptr<Storage> s = w.lock()) s->derived().reset();
  g_registry.clear();
}

}  // namespace autocast

namespace detail {
namespace {

Tensor cast_in_memory_order(const Tensor& t, DType dtype) {
  Tensor out = empty_in_memory_order(t, dtype);
  if (out.numel() == 0) return out;
  if (dtype == DType::bf16 && t.dtype() == DType::f32 && t.device().is_cpu() && is_dense_permutation(t)) {
    cpu::round_to_bf16(out, t);  // one linear pass: out has t's memory order
  } else {
    k_copy.get(t.device(), "autocast")(out, t);
  }
  return out;
}

/// The cached cast of t (see cast_weight); called with g_mutex held.
Tensor cached_cast(const Tensor& t, DType dtype) {
  const std::shared_ptr<Storage>& storage = t.storage();
  CastsOfStorage& casts = casts_of(storage);
  const uint64_t version = storage->version();
  for (CachedCast& e : casts.entries) {
    if (e.offset != t.storage_offset() || e.sizes != t.sizes() || e.strides != t.strides() || e.dtype != dtype)
      continue;
    if (e.version != version) {
      e.copy = cast_in_memory_order(t, dtype);
      e.version = version;
    }
    return e.copy;
  }
  casts.entries.push_back({t.storage_offset(), t.sizes(), t.strides(), dtype, version, cast_in_memory_order(t, dtype)});
  return casts.entries.back().copy;
}

}  // namespace

Tensor cast_operand(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  if (is_dense_permutation(t)) return cast_in_memory_order(t, dtype);
  // A strided view that fills much of its storage (q, k and v of one fused qkv projection): cast
  // the whole storage once, a dense pass the views share, instead of three gathers.
  const int64_t storage_numel = static_cast<int64_t>(t.storage()->nbytes() / t.itemsize());
  if (t.numel() * 4 < storage_numel) return cast_in_memory_order(t, dtype);
  const Tensor whole = Tensor::from_storage(t.storage(), {storage_numel}, {1}, 0, t.dtype());
  std::lock_guard<std::mutex> lock(g_mutex);
  const Tensor copy = cached_cast(whole, dtype);
  return Tensor::from_storage(copy.storage(), t.sizes(), t.strides(), t.storage_offset(), dtype);
}

Tensor cast_weight(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  std::lock_guard<std::mutex> lock(g_mutex);
  return cached_cast(t, dtype);
}

}  // namespace detail
}  // namespace tse
