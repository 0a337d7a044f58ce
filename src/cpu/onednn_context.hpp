#pragma once
// The oneDNN context of libtse: the CPU engine, one stream per calling thread, and the bounded LRU
// cache of primitives keyed by the full problem description (STYLE.md section 8: create a
// primitive descriptor once per problem, execute it many times).
//
// Every oneDNN-backed kernel follows the same three steps:
//   PrimitiveKey key(PrimitiveKind::matmul);          // + every md, flag and post-op
//   CachedPrimitive p = context().cache().get_or_create(key, [&] { return pd; }, "matmul");
//   context().execute(p, {{DNNL_ARG_SRC, src}, ...}, "matmul");
// Primitives use the user scratchpad mode: execute() allocates the scratchpad per call from our
// caching allocator, so one cached primitive may run concurrently on several threads.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "src/core/lru_cache.hpp"
#include "tse/export.hpp"

namespace tse::cpu::onednn {

/// The primitive families that share the cache (one value per kind keeps their keys apart).
enum class PrimitiveKind : int64_t {
  matmul = 1,
  conv_fwd,
  conv_bwd_data,
  conv_bwd_weights,
  softmax_fwd,
  layer_norm_fwd,
  layer_norm_bwd,
  reorder,
};

/// Everything that shapes one primitive, flattened into integers: the kind, the thread count
/// (oneDNN sizes its work split and scratchpad for the threads present at creation), then each
/// memory descriptor (ndims, dims, dtype, strides and blocking) and flag the caller adds. The hash
/// is updated as fields are added, so lookups never rehash the key.
class PrimitiveKey {
 public:
  explicit PrimitiveKey(PrimitiveKind kind);
  PrimitiveKey& add(int64_t v);
  PrimitiveKey& add(const dnnl::memory::desc& md);
  size_t hash() const { return hash_; }
  bool operator==(const PrimitiveKey& o) const { return hash_ == o.hash_ && fields_ == o.fields_; }

 private:
  std::vector<int64_t> fields_;
  size_t hash_ = 0;
};

struct PrimitiveKeyHash {
  size_t operator()(const PrimitiveKey& k) const { return k.hash(); }
};

/// A created primitive with its descriptor (handles: copies share the same oneDNN objects).
struct CachedPrimitive {
  dnnl::primitive_desc pd;
  dnnl::primitive primitive;
  size_t scratchpad_bytes = 0;
};

using PrimitiveCacheStats = tse::detail::LruCacheStats;

/// Bounded LRU map from PrimitiveKey to CachedPrimitive, safe to use from several threads.
class PrimitiveCache {
 public:
  explicit PrimitiveCache(size_t capacity) : cache_(capacity) {}

  /// The primitive cached for key; on a miss, make() builds the primitive descriptor (its
  /// attributes must request the user scratchpad mode) with the calling thread's OpenMP team set
  /// to get_num_threads(), as the key records, and the primitive is created and cached.
  /// Creation runs outside the lock (JIT compilation takes milliseconds); when two threads miss
  /// on the same key, the first insertion wins. dnnl::error becomes BackendError naming op.
  CachedPrimitive get_or_create(const PrimitiveKey& key, const std::function<dnnl::primitive_desc()>& make,
                                const char* op);
  /// Capacity 0 disables caching (every call is a miss); shrinking evicts least recently used.
  void set_capacity(size_t capacity) { cache_.set_capacity(capacity); }
  PrimitiveCacheStats stats() const { return cache_.stats(); }

 private:
  tse::detail::LruCache<PrimitiveKey, CachedPrimitive, PrimitiveKeyHash> cache_;
};

/// The CPU engine, this thread's stream and the primitive cache. One per process (context()).
class Context {
 public:
  Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const dnnl::engine& engine() const { return engine_; }
  /// This thread's stream on engine(): streams are not shared between threads.
  dnnl::stream& stream();
  PrimitiveCache& cache() { return cache_; }

  /// Runs p on this thread's stream with args (the scratchpad is added here) and waits. Sets the
  /// calling thread's OpenMP team to get_num_threads() (oneDNN runs on OpenMP's pool), turns on
  /// flush-to-zero on the team's workers and, for the call only, on the calling thread (its own
  /// mode is restored after). dnnl::error becomes BackendError naming op.
  void execute(const CachedPrimitive& p, std::unordered_map<int, dnnl::memory> args, const char* op);

 private:
  dnnl::engine engine_;
  PrimitiveCache cache_;
};

/// The process-wide oneDNN context (created on first use).
Context& context();

/// Attributes every cached primitive starts from (user scratchpad mode).
dnnl::primitive_attr default_attr();

/// Cache counters, for tests and diagnostics.
TSE_API PrimitiveCacheStats primitive_cache_stats();
TSE_API void set_primitive_cache_capacity(size_t capacity);

}  // namespace tse::cpu::onednn
