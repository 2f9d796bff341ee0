// The dispatch of training/cpu_gemm.h to the products of training/cpu_gemm_<set>.cpp.
#include "training/cpu_gemm.h"

#include <atomic>
#include <cstdlib>

#include "engine/errors.h"

namespace phydream::training {

// each set's functions (explicitly instantiated in its object, so declarations suffice)
#define PHYDREAM_DECLARE_GEMMS(NS)                                                \
  namespace NS {                                                                  \
  template <class S>                                                              \
  void gemm_abt(std::int64_t, std::int64_t, std::int64_t, const S*, const S*, S*); \
  template <class S>                                                              \
  void gemm_atb(std::int64_t, std::int64_t, std::int64_t, const S*, const S*, S*); \
  template <class S>                                                              \
  void gemm_ab(std::int64_t, std::int64_t, std::int64_t, const S*, const S*, S*);  \
  void tanh_f32(std::int64_t, const float*, float*);                              \
  }
PHYDREAM_DECLARE_GEMMS(isa_baseline)
#if PHYDREAM_CPU_DISPATCH_X86
PHYDREAM_DECLARE_GEMMS(isa_avx2)
PHYDREAM_DECLARE_GEMMS(isa_avx512)
#endif
#undef PHYDREAM_DECLARE_GEMMS

namespace {

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

// what the CPU and the operating system (its saved vector state, which libgcc's check includes)
// support
bool hardware_runs(CpuIsa isa) {
#if PHYDREAM_CPU_DISPATCH_X86
  __builtin_cpu_init();
  switch (isa) {
    case CpuIsa::baseline:
      return true;
    case CpuIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::avx512:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  }
  return false;
#else
  return isa == CpuIsa::baseline;
#endif
}

// PHYDREAM_CPU_ISA, once (an error is thrown again at every call)
struct EnvChoice {
  int isa = kNoOverride;
  std::string error;
};

const EnvChoice& env_choice() {
  static const EnvChoice choice = [] {
    EnvChoice c;
    const char* value = std::getenv("PHYDREAM_CPU_ISA");
    if (value == nullptr || *value == '\0') return c;
    try {
      const CpuIsa isa = parse_cpu_isa(value, "PHYDREAM_CPU_ISA");
      if (!cpu_isa_supported(isa)) {
        c.error = std::string("PHYDREAM_CPU_ISA=") + value + ": " +
                  (cpu_isa_built(isa) ? "this CPU does not support it"
                                      : "this build has no products for it") +
                  "; the widest supported here is " + cpu_isa_name(cpu_isa_best());
      } else {
        c.isa = static_cast<int>(isa);
      }
    } catch (const InputError& e) {
      c.error = e.what();
    }
    return c;
  }();
  return choice;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::baseline:
      return "baseline";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
  }
  return "unknown";
}

CpuIsa parse_cpu_isa(const std::string& name, const char* what) {
  if (name == "auto") return cpu_isa_best();
  for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512}) {
    if (name == cpu_isa_name(isa)) return isa;
  }
  throw InputError(std::string(what) + ": unknown instruction set '" + name +
                   "'; expected baseline, avx2, avx512 or auto");
}

bool cpu_isa_built(CpuIsa isa) {
#if PHYDREAM_CPU_DISPATCH_X86
  return isa == CpuIsa::baseline || isa == CpuIsa::avx2 || isa == CpuIsa::avx512;
#else
  return isa == CpuIsa::baseline;
#endif
}

bool cpu_isa_supported(CpuIsa isa) {
  static const bool runs[3] = {hardware_runs(CpuIsa::baseline), hardware_runs(CpuIsa::avx2),
                               hardware_runs(CpuIsa::avx512)};
  const int i = static_cast<int>(isa);
  return i >= 0 && i < 3 && cpu_isa_built(isa) && runs[i];
}

CpuIsa cpu_isa_best() {
  if (cpu_isa_supported(CpuIsa::avx512)) return CpuIsa::avx512;
  if (cpu_isa_supported(CpuIsa::avx2)) return CpuIsa::avx2;
  return CpuIsa::baseline;
}

CpuIsa cpu_isa() {
  const int chosen = g_override.load(std::memory_order_relaxed);
  if (chosen != kNoOverride) return static_cast<CpuIsa>(chosen);
  const EnvChoice& env = env_choice();
  if (!env.error.empty()) throw InputError(env.error);
  if (env.isa != kNoOverride) return static_cast<CpuIsa>(env.isa);
  return cpu_isa_best();
}

void set_cpu_isa(CpuIsa isa) {
  if (!cpu_isa_supported(isa)) {
    throw InputError(std::string("set_cpu_isa: ") + cpu_isa_name(isa) + " is not supported here (" +
                     (cpu_isa_built(isa) ? "this CPU does not run it" : "not built") +
                     "); the widest supported is " + cpu_isa_name(cpu_isa_best()));
  }
  g_override.store(static_cast<int>(isa), std::memory_order_relaxed);
}

// CALL in the namespace of the set in use
#if PHYDREAM_CPU_DISPATCH_X86
#define PHYDREAM_DISPATCH(CALL)   \
  switch (cpu_isa()) {            \
    case CpuIsa::avx512:          \
      return isa_avx512::CALL;    \
    case CpuIsa::avx2:            \
      return isa_avx2::CALL;      \
    case CpuIsa::baseline:        \
      break;                      \
  }                               \
  return isa_baseline::CALL
#else
#define PHYDREAM_DISPATCH(CALL) return isa_baseline::CALL
#endif

template <class S>
void gemm_abt(std::int64_t m, std::int64_t n, std::int64_t k, const S* a, const S* b, S* c) {
  PHYDREAM_DISPATCH(gemm_abt(m, n, k, a, b, c));
}
template <class S>
void gemm_atb(std::int64_t m, std::int64_t n, std::int64_t k, const S* a, const S* b, S* c) {
  PHYDREAM_DISPATCH(gemm_atb(m, n, k, a, b, c));
}
template <class S>
void gemm_ab(std::int64_t m, std::int64_t n, std::int64_t k, const S* a, const S* b, S* c) {
  PHYDREAM_DISPATCH(gemm_ab(m, n, k, a, b, c));
}
void tanh_f32(std::int64_t n, const float* x, float* y) { PHYDREAM_DISPATCH(tanh_f32(n, x, y)); }
#undef PHYDREAM_DISPATCH

template void gemm_abt<float>(std::int64_t, std::int64_t, std::int64_t, const float*, const float*, float*);
template void gemm_abt<double>(std::int64_t, std::int64_t, std::int64_t, const double*, const double*, double*);
template void gemm_atb<float>(std::int64_t, std::int64_t, std::int64_t, const float*, const float*, float*);
template void gemm_atb<double>(std::int64_t, std::int64_t, std::int64_t, const double*, const double*, double*);
template void gemm_ab<float>(std::int64_t, std::int64_t, std::int64_t, const float*, const float*, float*);
template void gemm_ab<double>(std::int64_t, std::int64_t, std::int64_t, const double*, const double*, double*);

}  // namespace phydream::training
