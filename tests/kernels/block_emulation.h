// Runs CUDA kernels on the CPU, for tests of their logic on machines without a GPU (CI).
//
// A launch runs the grid's blocks one after another; each block's threads are fibers (POSIX
// ucontext) on the calling thread, run one at a time until each reaches __syncthreads() or
// returns, in a new random order (fixed seed) between every two barriers, so that a missing
// barrier shows as a wrong result; a block moves past a barrier only when every one of its
// threads has reached it. threadIdx,
// blockIdx, blockDim and gridDim are set for the running fiber; __shared__ arrays become static
// locals, shared by the block's threads (blocks never run at the same time). This covers kernels
// written for one-dimensional grids with __shared__ arrays and __syncthreads only: no warp
// intrinsics, atomics, dynamic shared memory or streams. A kernel whose threads do not all reach
// the same barriers throws std::logic_error (on a GPU that is undefined behaviour).
//
// Include this before the kernels' header, in a file a host compiler builds (never nvcc), and put
// the kernels in an unnamed namespace, so that their emulated instantiations never meet the CUDA
// build's host stubs of the same name at link time (kernels/loss_head.cuh does).
#pragma once

#if defined(__CUDACC__)
#error "tests/kernels/block_emulation.h is for host compilers only"
#endif

#include <ucontext.h>

#include <cstddef>
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

class BlockScheduler {
 public:
  static BlockScheduler& instance() {
    static BlockScheduler s;
    return s;
  }

  // body() on every thread of every block of a (grid x block) launch
  void launch(unsigned grid, unsigned block, const std::function<void()>& body) {
    if (running_) throw std::logic_error("emulated launch from inside an emulated kernel");
    if (grid == 0 || block == 0) throw std::invalid_argument("emulated launch of an empty grid");
    running_ = true;
    body_ = &body;
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

  // the running fiber waits at the block's barrier
  void barrier() {
    if (!running_) throw std::logic_error("__syncthreads outside an emulated launch");
    Fiber& f = fibers_[current_];
    f.waiting = true;
    swapcontext(&f.context, &scheduler_);
  }

 private:
  static constexpr std::size_t kStackBytes = std::size_t(128) << 10;

  struct Fiber {
    ucontext_t context{};
    std::vector<char> stack;
    bool done = false, waiting = false;
  };

  static void entry() {
    BlockScheduler& s = instance();
    (*s.body_)();
    s.fibers_[s.current_].done = true;  // returning resumes uc_link, the scheduler
  }

  void run_block(unsigned b, unsigned block) {
    blockIdx = {b, 0, 0};
    for (unsigned t = 0; t < block; ++t) {
      Fiber& f = fibers_[t];
      f.stack.resize(kStackBytes);
      f.done = f.waiting = false;
      if (getcontext(&f.context) != 0) throw std::runtime_error("getcontext failed");
      f.context.uc_stack.ss_sp = f.stack.data();
      f.context.uc_stack.ss_size = f.stack.size();
      f.context.uc_link = &scheduler_;
      makecontext(&f.context, &BlockScheduler::entry, 0);
    }
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
        if (swapcontext(&scheduler_, &f.context) != 0) throw std::runtime_error("swapcontext failed");
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
  std::vector<unsigned> order_;
  std::mt19937 rng_{12345};
  ucontext_t scheduler_{};
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

}  // namespace phydream::emulation

inline void __syncthreads() { phydream::emulation::BlockScheduler::instance().barrier(); }
