#include "src/cpu/onednn_context.hpp"

#include <omp.h>

#include <memory>

#include "src/core/parallel.hpp"
#include "tse/core/error.hpp"
#include "tse/core/storage.hpp"
#include "tse/core/threading.hpp"

namespace tse::cpu::onednn {
namespace {

// oneDNN's own primitive cache defaults to 1024 entries; the models here use a few hundred
// distinct problems (layers x batch shapes x forward/backward).
constexpr size_t kDefaultCapacity = 1024;

void use_our_threads() {
  const int n = get_num_threads();
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

/// oneDNN runs on the calling thread's OpenMP team. Gives every member of a team of n threads
/// flush-to-zero once, as parallel_for does for our kernels (the mode persists on pool threads).
/// Call under an FtzGuard: the calling thread takes part and gets its own mode back after.
void ftz_on_team(int n) {
  thread_local int covered = 1;
  if (n <= covered) return;
#pragma omp parallel num_threads(n)
  tse::detail::set_ftz_this_thread();
  covered = n;
}

[[noreturn]] void rethrow(const dnnl::error& e, const char* op, const char* what) {
  throw BackendError(tse::detail::str_cat(op, ": oneDNN failed to ", what, ": ", e.what(), " (status ",
                                          static_cast<int>(e.status), ")"));
}

}  // namespace

PrimitiveKey::PrimitiveKey(PrimitiveKind kind) {
  fields_.reserve(64);
  add(static_cast<int64_t>(kind));
  add(get_num_threads());
}

PrimitiveKey& PrimitiveKey::add(int64_t v) {
  fields_.push_back(v);
  // boost::hash_combine's mixing step, on 64-bit values.
  hash_ ^= std::hash<int64_t>{}(v) + 0x9e3779b97f4a7c15ULL + (hash_ << 6) + (hash_ >> 2);
  return *this;
}

PrimitiveKey& PrimitiveKey::add(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  add(d.ndims);
  add(static_cast<int64_t>(d.data_type));
  add(static_cast<int64_t>(d.format_kind));
  add(d.offset0);
  for (int i = 0; i < d.ndims; ++i) add(d.dims[i]);
  if (d.format_kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    for (int i = 0; i < d.ndims; ++i) add(b.strides[i]);
    add(b.inner_nblks);
    for (int i = 0; i < b.inner_nblks; ++i) {
      add(b.inner_blks[i]);
      add(b.inner_idxs[i]);
    }
  }
  return *this;
}

CachedPrimitive PrimitiveCache::get_or_create(const PrimitiveKey& key,
                                              const std::function<dnnl::primitive_desc()>& make, const char* op) {
  if (std::optional<CachedPrimitive> hit = cache_.find(key)) return *hit;
  CachedPrimitive p;
  use_our_threads();
  try {
    p.pd = make();
  } catch (const dnnl::error& e) {
    rethrow(e, op, "create a primitive descriptor");
  }
  try {
    p.primitive = dnnl::primitive(p.pd);
  } catch (const dnnl::error& e) {
    rethrow(e, op, "create a primitive");
  }
  p.scratchpad_bytes = p.pd.scratchpad_desc().get_size();
  return cache_.insert(key, std::move(p));
}

Context::Context() : engine_(dnnl::engine::kind::cpu, 0), cache_(kDefaultCapacity) {}

dnnl::stream& Context::stream() {
  // One CPU context per process, so a thread-local stream per thread is a stream per
  // (thread, engine).
  thread_local dnnl::stream s(engine_);
  return s;
}

void Context::execute(const CachedPrimitive& p, std::unordered_map<int, dnnl::memory> args, const char* op) {
  std::shared_ptr<Storage> scratch;
  if (p.scratchpad_bytes > 0) {
    scratch = std::make_shared<Storage>(p.scratchpad_bytes, Device::cpu());
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(p.pd.scratchpad_desc(), engine_, scratch->data()));
  }
  use_our_threads();
  tse::detail::FtzGuard ftz;
  ftz_on_team(get_num_threads());
  try {
    dnnl::stream& s = stream();
    p.primitive.execute(s, args);
    s.wait();
  } catch (const dnnl::error& e) {
    rethrow(e, op, "execute");
  }
}

Context& context() {
  // Never destroyed: threads still running at exit may execute primitives, and oneDNN's own
  // statics may already be gone when ours would be torn down.
  static Context* ctx = new Context();
  return *ctx;
}

dnnl::primitive_attr default_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

PrimitiveCacheStats primitive_cache_stats() { return context().cache().stats(); }

void set_primitive_cache_capacity(size_t capacity) { context().cache().set_capacity(capacity); }

}  // namespace tse::cpu::onednn
