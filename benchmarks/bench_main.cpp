// tse-bench: runs the registered cases (see bench.hpp for the protocol) and prints one row per
// case and thread count.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "bench.hpp"

namespace {

using tse::bench::Bench;
using tse::bench::Case;

struct Options {
  std::vector<std::string> filters;
  std::vector<int> threads;
  int repeats = 10;
  double min_time_s = 0.2;
  bool list = false;
  std::string csv;
};

void usage(FILE* to) {
  std::fprintf(to,
               "usage: tse-bench [--filter SUBSTR]... [--threads 1,2] [--repeats N] [--min-time-ms T]\n"
               "                 [--list] [--csv FILE]\n"
               "  --filter      run cases whose name contains SUBSTR or that carry the tag SUBSTR;\n"
               "                a filter equal to a case name selects that case alone (repro lines)\n"
               "  --threads     thread counts, each run for libtse (set_num_threads) and the peer\n"
               "                (default: the current libtse thread count)\n"
               "  --repeats     minimum timed samples per side (default 10)\n"
               "  --min-time-ms minimum timed milliseconds per side (default 200)\n"
               "  --list        print the selected cases and exit\n"
               "  --csv         also write the rows to FILE\n");
}

[[noreturn]] void bad_arg(const std::string& msg) {
  std::fprintf(stderr, "tse-bench: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

int parse_int(const std::string& s, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 1 || v > 1 << 20) bad_arg(std::string(what) + ": expected a positive integer, got '" + s + "'");
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) bad_arg(a + " needs a value");
      return argv[++i];
    };
    if (a == "--filter") {
      o.filters.push_back(value());
    } else if (a == "--threads") {
      std::string list = value();
      for (size_t b = 0; b <= list.size();) {
        size_t e = list.find(',', b);
        if (e == std::string::npos) e = list.size();
        o.threads.push_back(parse_int(list.substr(b, e - b), "--threads"));
        b = e + 1;
      }
    } else if (a == "--repeats") {
      o.repeats = parse_int(value(), "--repeats");
    } else if (a == "--min-time-ms") {
      o.min_time_s = parse_int(value(), "--min-time-ms") * 1e-3;
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--csv") {
      o.csv = value();
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      bad_arg("unknown argument '" + a + "'");
    }
  }
  if (o.threads.empty()) o.threads.push_back(tse::get_num_threads());
  return o;
}

bool has_tag(const Case& c, const std::string& tag) {
  return std::find(c.tags.begin(), c.tags.end(), tag) != c.tags.end();
}

std::vector<const Case*> select(const std::vector<Case>& all, const std::vector<std::string>& filters) {
  std::vector<const Case*> out;
  for (const Case& c : all) {
    bool keep = filters.empty();
    for (const std::string& f : filters) {
      bool exact = std::any_of(all.begin(), all.end(), [&](const Case& o) { return o.name == f; });
      if (exact ? c.name == f : (c.name.find(f) != std::string::npos || has_tag(c, f))) keep = true;
    }
    if (keep) out.push_back(&c);
  }
  // Reference rows (machine bandwidth) first, then by name, so tables from different runs line up.
  std::stable_sort(out.begin(), out.end(), [](const Case* a, const Case* b) {
    bool ra = has_tag(*a, "ref"), rb = has_tag(*b, "ref");
    return ra != rb ? ra : a->name < b->name;
  });
  return out;
}

struct Timing {
  double median = 0;  // seconds per call
  double min = 0;
};

template <typename F>
Timing measure(const F& call, const Options& o) {
  using clock = std::chrono::steady_clock;
  auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
  // Warm-up touches the pages, fills the allocator cache and primes the caches; it also gives
  // the per-call cost that sizes a sample.
  int64_t calls = 0;
  auto t0 = clock::now();
  do {
    call();
    ++calls;
  } while (calls < 2 || since(t0) < o.min_time_s / 5);
  const double per_call = since(t0) / static_cast<double>(calls);
  const int64_t inner = std::max<int64_t>(1, static_cast<int64_t>(200e-6 / std::max(per_call, 1e-9)));

  std::vector<double> samples;
  double total = 0;
  while (static_cast<int>(samples.size()) < o.repeats || total < o.min_time_s) {
    auto ts = clock::now();
    for (int64_t k = 0; k < inner; ++k) call();
    double s = since(ts);
    total += s;
    samples.push_back(s / static_cast<double>(inner));
  }
  std::sort(samples.begin(), samples.end());
  const size_t m = samples.size();
  Timing t;
  t.median = m % 2 ? samples[m / 2] : 0.5 * (samples[m / 2 - 1] + samples[m / 2]);
  t.min = samples.front();
  return t;
}

struct Row {
  const Case* c = nullptr;
  int threads = 1;
  bool ok = false;
  double err = 0;
  std::string message;  // why the gate failed
  Timing ours, peer;
  bool peer_timed = false;
};

// The gate: the same inputs through both sides, compared elementwise.
void gate(const Case& c, const Bench& b, int threads, Row& row) {
  std::vector<double> got = tse::ops::to_vector(b.ours());
  b.peer(threads);
  if (!c.compare) {
    row.ok = std::all_of(got.begin(), got.end(), [](double v) { return std::isfinite(v); });
    if (!row.ok) row.message = "non-finite result";
    return;
  }
  const std::vector<float>& want = *b.expect;
  if (got.size() != want.size()) {
    row.message = "ours has " + std::to_string(got.size()) + " elements, peer " + std::to_string(want.size());
    return;
  }
  double err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double e = std::abs(got[i] - want[i]) / (std::abs(static_cast<double>(want[i])) + c.atol);
    if (!(e <= err)) err = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
  }
  row.err = err;
  row.ok = err <= c.rtol;
  if (!row.ok) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "max rel err %.3g > tolerance %.3g", err, c.rtol);
    row.message = buf;
  }
}

std::string repro(const Row& r) {
  return "tse-bench --filter " + r.c->name + " --threads " + std::to_string(r.threads);
}

std::string fmt_time(double s, bool micros) {
  char buf[32];
  if (micros)
    std::snprintf(buf, sizeof buf, "%9.3f us", s * 1e6);
  else
    std::snprintf(buf, sizeof buf, "%9.3f ms", s * 1e3);
  return buf;
}

// Throughput over a time, in GB/s from bytes or GFLOP/s from flops; "-" when the case has neither.
std::string fmt_rate(const Case& c, double s) {
  char buf[32];
  if (c.bytes > 0)
    std::snprintf(buf, sizeof buf, "%7.2f GB/s", c.bytes / s * 1e-9);
  else if (c.flops > 0)
    std::snprintf(buf, sizeof buf, "%7.2f GF/s", c.flops / s * 1e-9);
  else
    return "          -";
  return buf;
}

void print_header(const Options& o) {
  std::printf("# tse-bench: times are per call, median (and min) of >= %d samples and >= %g ms per side after warm-up\n",
              o.repeats, o.min_time_s * 1e3);
  std::printf("# peer = plain OpenMP loops, same thread count and ISA; ratio = peer time / ours time (> 1: libtse faster)\n");
  std::printf("# %-22s %-31s %3s %12s %12s %11s %12s %11s %6s  %-12s %s\n", "case", "shape", "thr", "ours med",
              "ours min", "ours rate", "peer med", "peer rate", "ratio", "gate err", "repro");
}

void print_row(const Row& r) {
  const Case& c = *r.c;
  if (!r.ok) {
    std::printf("  %-22s %-31s %3d FAIL: %s\n      repro: %s\n", c.name.c_str(), c.shape.c_str(), r.threads,
                r.message.c_str(), repro(r).c_str());
    return;
  }
  std::string peer_med = r.peer_timed ? fmt_time(r.peer.median, c.micros) : "           -";
  std::string peer_rate = r.peer_timed ? fmt_rate(c, r.peer.median) : "          -";
  char ratio[16] = "     -";
  if (r.peer_timed) std::snprintf(ratio, sizeof ratio, "%6.2f", r.peer.median / r.ours.median);
  char err[16];
  std::snprintf(err, sizeof err, "ok %.1e", r.err);
  std::printf("  %-22s %-31s %3d %12s %12s %11s %12s %11s %6s  %-12s %s\n", c.name.c_str(), c.shape.c_str(), r.threads,
              fmt_time(r.ours.median, c.micros).c_str(), fmt_time(r.ours.min, c.micros).c_str(),
              fmt_rate(c, r.ours.median).c_str(), peer_med.c_str(), peer_rate.c_str(), ratio, err, repro(r).c_str());
}

std::string csv_field(const std::string& s) {
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

void write_csv(const std::string& path, const std::vector<Row>& rows) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "tse-bench: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    std::exit(2);
  }
  std::fprintf(f, "case,shape,threads,gate,max_err,ours_median_ms,ours_min_ms,peer_median_ms,peer_min_ms,bytes,flops,"
                  "ratio,repro\n");
  for (const Row& r : rows) {
    const Case& c = *r.c;
    std::fprintf(f, "%s,%s,%d,%s,%.3g,", csv_field(c.name).c_str(), csv_field(c.shape).c_str(), r.threads,
                 r.ok ? "ok" : "FAIL", r.err);
    if (r.ok)
      std::fprintf(f, "%.6g,%.6g,", r.ours.median * 1e3, r.ours.min * 1e3);
    else
      std::fprintf(f, ",,");
    if (r.ok && r.peer_timed)
      std::fprintf(f, "%.6g,%.6g,", r.peer.median * 1e3, r.peer.min * 1e3);
    else
      std::fprintf(f, ",,");
    std::fprintf(f, "%.6g,%.6g,", c.bytes, c.flops);
    if (r.ok && r.peer_timed) std::fprintf(f, "%.4g", r.peer.median / r.ours.median);
    std::fprintf(f, ",%s\n", csv_field(repro(r)).c_str());
  }
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::vector<const Case*> cases = select(tse::bench::registry(), o.filters);
  if (o.list) {
    for (const Case* c : cases) {
      std::string tags;
      for (const std::string& t : c->tags) tags += (tags.empty() ? "" : ",") + t;
      std::printf("%-24s %-32s %s\n", c->name.c_str(), c->shape.c_str(), tags.c_str());
    }
    return 0;
  }
  if (cases.empty()) bad_arg("no case matches the filters (see --list)");

  print_header(o);
  std::vector<Row> rows;
  bool failed = false;
  for (int n : o.threads) {
    tse::set_num_threads(n);
    for (const Case* c : cases) {
      Row r;
      r.c = c;
      r.threads = n;
      try {
        const Bench b = c->setup();
        gate(*c, b, n, r);
        if (r.ok) {
          r.ours = measure([&] { (void)b.ours(); }, o);
          if (c->time_peer) {
            r.peer = measure([&] { b.peer(n); }, o);
            r.peer_timed = true;
          }
        }
      } catch (const std::exception& e) {
        r.ok = false;
        r.message = std::string("exception: ") + e.what();
      }
      failed |= !r.ok;
      print_row(r);
      if (r.ok && c->note) std::printf("      # %s\n", c->note().c_str());
      std::fflush(stdout);
      rows.push_back(r);
    }
  }
  if (!o.csv.empty()) write_csv(o.csv, rows);
  return failed ? 1 : 0;
}
