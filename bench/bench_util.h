// Helpers shared by the benchmark programs: timing windows, host facts, random inputs and
// copies from backend buffers. Benchmarks print JSON lines; these never print.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/buffer.h"

namespace phydream::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// one warm-up call, then calls until min_time has passed; synchronize before the clock stops.
// returns work units (environments or environment steps) per second, the best of `repeats`
// such windows: a noisy host only ever slows a window down
inline int g_repeats = 1;

template <class Call, class Sync>
double rate(double min_time, double work_per_call, Call&& call, Sync&& sync) {
  call();
  sync();
  double best = 0;
  for (int r = 0; r < g_repeats; ++r) {
    const auto t0 = Clock::now();
    std::int64_t calls = 0;
    do {
      call();
      ++calls;
    } while (seconds_since(t0) < min_time);
    sync();
    best = std::max(best, static_cast<double>(calls) * work_per_call / seconds_since(t0));
  }
  return best;
}

// rate() for several calls timed against each other: their windows taken in rotation (call 1,
// call 2, ..., then again, g_repeats rounds) so that a slow spell of a noisy host falls on all
// of them alike, not on whichever was timed then; each call's best window, in the order given
template <class Call>
std::vector<double> rates_interleaved(double min_time, double work_per_call, const std::vector<Call>& calls) {
  std::vector<double> best(calls.size(), 0.0);
  for (const Call& call : calls) call();  // warm-up
  for (int r = 0; r < g_repeats; ++r) {
    for (std::size_t i = 0; i < calls.size(); ++i) {
      const auto t0 = Clock::now();
      std::int64_t n = 0;
      do {
        calls[i]();
        ++n;
      } while (seconds_since(t0) < min_time);
      best[i] = std::max(best[i], static_cast<double>(n) * work_per_call / seconds_since(t0));
    }
  }
  return best;
}

// the "model name" line of /proc/cpuinfo
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        const auto start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
      }
    }
  }
  return "unknown CPU";
}

// the 1-minute load average: other work on the host makes the thread counts lie
inline double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

// ---------------------------------------------------------------------------------------------
// host data

template <class S>
std::vector<S> uniform(std::size_t n, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<S> v(n);
  for (S& e : v) e = static_cast<S>(dist(rng));
  return v;
}

template <class S>
std::vector<S> head(Backend be, const Buffer<S>& buf, std::size_t n) {
  n = std::min(n, buf.size());
  std::vector<S> v(n);
  if (n == 0) return v;
  if (be == Backend::cuda) {
    cuda_memcpy_to_host(v.data(), buf.data(), n * sizeof(S), nullptr);
  } else {
    std::memcpy(v.data(), buf.data(), n * sizeof(S));
  }
  return v;
}

template <class S>
bool all_finite(const std::vector<S>& v) {
  return std::all_of(v.begin(), v.end(), [](S e) { return std::isfinite(e); });
}

}  // namespace phydream::bench
