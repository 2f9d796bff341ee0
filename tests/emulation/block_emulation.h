// Runs CUDA kernels on the CPU, for tests of their logic on machines without a GPU (CI).
//
// A launch runs the grid's blocks one after another. Each block's threads are fibers on the
// calling thread (their stacks switched by a few lines of assembly on x86-64, by POSIX ucontext
// elsewhere), run one at a time until each reaches __syncthreads() or returns, in a new random
// order (fixed seed) between every two barriers, so that a missing barrier shows as a wrong
// result; a block moves past a barrier only when every one of its threads has reached it.
// threadIdx, blockIdx, blockDim and gridDim are set for the running fiber; __shared__ arrays
// become static locals, shared by the block's threads (blocks never run at the same time). This
// covers kernels written for one-dimensional grids with __shared__ arrays and __syncthreads only:
// no warp intrinsics or streams; atomics are plain read-modify-writes (threads switch only at
// barriers), and a launch's dynamic shared memory is one buffer per block (dynamic_shared()),
// filled with 0xFF bytes (a NaN in float and double) before each block, so that reading a slot
// nothing wrote shows. A kernel whose threads do not all reach the same barriers throws
// std::logic_error (on a GPU that is undefined behaviour). One host thread launches at a time:
// the scheduler and the built-in variables are process-wide.
//
// Two uses: a test includes this before a kernels' header that keeps its kernels in an unnamed
// namespace (kernels/loss_head.cuh), so that their emulated instantiations never meet the CUDA
// build's host stubs of the same name at link time; and the emulated CUDA build
// (PHYDREAM_CUDA=EMULATE), whose stand-in cuda_runtime.h (this folder) includes it.
#pragma once

#if defined(__CUDACC__)
#error "tests/emulation/block_emulation.h is for host compilers only"
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

namespace phydream::emulation {

struct Dim3 {
  unsigned x, y, z;
};

}  // namespace phydream::emulation

// the built-in variables, as the running fiber sees them
inline phydream::emulation::Dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, blockDim{1, 1, 1},
    gridDim{1, 1, 1};

namespace phydream::emulation {

#if defined(__x86_64__)
// Switches stacks (x86-64 System V): pushes the callee-saved registers, stores the stack pointer
// in *from, loads `to` and pops the registers saved there. No system call, unlike swapcontext
// (which saves the signal mask each time): the fibers switch at every barrier.
__attribute__((naked, noinline)) static void switch_stack(void** /*from*/, void* /*to*/) {
  __asm__ volatile(
      "pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}
#endif

class BlockScheduler {
 public:
  static BlockScheduler& instance() {
    static BlockScheduler s;
    return s;
  }

  // body() on every thread of every block of a (grid x block) launch, with `shared` bytes of
  // dynamic shared memory per block
  void launch(unsigned grid, unsigned block, const std::function<void()>& body,
              std::size_t shared = 0) {
    if (running_) throw std::logic_error("emulated launch from inside an emulated kernel");
    if (grid == 0 || block == 0) throw std::invalid_argument("emulated launch of an empty grid");
    if (block > 1024) {
      throw std::invalid_argument("emulated launch of more than 1024 threads per block");
    }
    if (shared > kMaxShared) {
      throw std::invalid_argument("emulated launch with " + std::to_string(shared) +
                                  " bytes of dynamic shared memory, more than a GPU has");
    }
    running_ = true;
    body_ = &body;
    shared_.assign((shared + 15) / 16, Chunk{});
    if (fibers_.size() < block) fibers_.resize(block);
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    try {
      for (unsigned b = 0; b < grid; ++b) run_block(b, block);
    } catch (...) {
      running_ = false;
      throw;
    }
    running_ = false;
  }

  // the launch's dynamic shared memory (extern __shared__)
  void* dynamic_shared() { return shared_.empty() ? nullptr : static_cast<void*>(shared_.data()); }

  // the running fiber waits at the block's barrier
  void barrier() {
    if (!running_) throw std::logic_error("__syncthreads outside an emulated launch");
    Fiber& f = fibers_[current_];
    f.waiting = true;
    to_scheduler(f);
  }

 private:
  static constexpr std::size_t kMaxShared = 227 * 1024;  // H100's opt-in limit per block
  static constexpr std::size_t kStackBytes = std::size_t(256) << 10;

  struct Fiber {
#if defined(__x86_64__)
    void* sp = nullptr;  // its saved stack pointer (switch_stack)
#else
    ucontext_t context{};
#endif
    std::vector<char> stack;
    bool done = false, waiting = false;
  };

  // every fiber starts here, runs the kernel and hands back to the scheduler for good
  static void entry() {
    BlockScheduler& s = instance();
    (*s.body_)();
    Fiber& f = s.fibers_[s.current_];
    f.done = true;
#if defined(__x86_64__)
    s.to_scheduler(f);  // never resumed
#endif
    // (ucontext: returning resumes uc_link, the scheduler)
  }

  void to_scheduler(Fiber& f) {
#if defined(__x86_64__)
    switch_stack(&f.sp, scheduler_sp_);
#else
    swapcontext(&f.context, &scheduler_);
#endif
  }

  void resume(Fiber& f) {
#if defined(__x86_64__)
    switch_stack(&scheduler_sp_, f.sp);
#else
    if (swapcontext(&scheduler_, &f.context) != 0) throw std::runtime_error("swapcontext failed");
#endif
  }

  // a fresh fiber at entry()
  __attribute__((noinline)) void start_fiber(Fiber& f) {
    f.stack.resize(kStackBytes);
    f.done = f.waiting = false;
#if defined(__x86_64__)
    // the stack as switch_stack leaves it: six saved registers, then entry() as the return
    // address, then a dummy one, so that entry() starts with rsp + 8 16-byte aligned
    const auto top =
        reinterpret_cast<std::uintptr_t>(f.stack.data() + f.stack.size()) & ~std::uintptr_t(15);
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;
    *--sp = reinterpret_cast<void*>(&BlockScheduler::entry);
    for (int r = 0; r < 6; ++r) *--sp = nullptr;
    f.sp = sp;
#else
    if (getcontext(&f.context) != 0) throw std::runtime_error("getcontext failed");
    f.context.uc_stack.ss_sp = f.stack.data();
    f.context.uc_stack.ss_size = f.stack.size();
    f.context.uc_link = &scheduler_;
    makecontext(&f.context, &BlockScheduler::entry, 0);
#endif
  }

  struct alignas(16) Chunk {
    unsigned char bytes[16];
  };

  void run_block(unsigned b, unsigned block) {
    blockIdx = {b, 0, 0};
    for (Chunk& c : shared_) std::memset(c.bytes, 0xFF, sizeof(c.bytes));  // NaN: see the top
    for (unsigned t = 0; t < block; ++t) start_fiber(fibers_[t]);
    order_.resize(block);
    std::iota(order_.begin(), order_.end(), 0u);
    for (;;) {
      // one round: every unfinished thread runs to its next barrier or its end, in a new order
      std::shuffle(order_.begin(), order_.end(), rng_);
      for (unsigned t : order_) {
        Fiber& f = fibers_[t];
        if (f.done) continue;
        f.waiting = false;
        current_ = t;
        threadIdx = {t, 0, 0};
        resume(f);
      }
      unsigned done = 0;
      for (unsigned t = 0; t < block; ++t) done += fibers_[t].done ? 1 : 0;
      if (done == block) return;
      if (done != 0) {
        throw std::logic_error("block " + std::to_string(b) + ": " + std::to_string(done) + " of " +
                               std::to_string(block) +
                               " threads returned while the others wait at __syncthreads");
      }
    }
  }

  std::vector<Fiber> fibers_;
  std::vector<Chunk> shared_;
  std::vector<unsigned> order_;
  std::mt19937 rng_{12345};
#if defined(__x86_64__)
  void* scheduler_sp_ = nullptr;
#else
  ucontext_t scheduler_{};
#endif
  const std::function<void()>* body_ = nullptr;
  unsigned current_ = 0;
  bool running_ = false;
};

/// A launcher for kernels/loss_head.cuh's run_loss_head (and any kernel): kernel(args...) on
/// every thread of a (grid x block) launch.
struct EmulatedLaunch {
  template <class... P, class... A>
  void operator()(const char* /*what*/, unsigned grid, int block, void (*kernel)(P...),
                  A... args) const {
    BlockScheduler::instance().launch(grid, static_cast<unsigned>(block),
                                      [&] { kernel(args...); });
  }
};

/// PHYDREAM_LAUNCH(grid, block, shared, stream, kernel)(args...) in the emulated CUDA build
/// (kernels/check.cuh): the launch configuration, then the call with the kernel's arguments.
template <class F>
class Launch {
 public:
  Launch(std::size_t grid, std::size_t block, std::size_t shared, F kernel)
      : grid_(static_cast<unsigned>(grid)), block_(static_cast<unsigned>(block)), shared_(shared),
        kernel_(kernel) {}
  template <class... A>
  void operator()(const A&... args) const {
    BlockScheduler::instance().launch(grid_, block_, [&] { kernel_(args...); }, shared_);
  }

 private:
  unsigned grid_, block_;
  std::size_t shared_;
  F kernel_;
};

template <class F>
Launch<F*> launch_of(std::size_t grid, std::size_t block, std::size_t shared, F* kernel) {
  return Launch<F*>(grid, block, shared, kernel);
}

/// the running launch's dynamic shared memory
inline void* dynamic_shared() { return BlockScheduler::instance().dynamic_shared(); }

}  // namespace phydream::emulation

inline void __syncthreads() { phydream::emulation::BlockScheduler::instance().barrier(); }

// atomics: one host thread, and fibers switch only at barriers, so a plain update is atomic
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
