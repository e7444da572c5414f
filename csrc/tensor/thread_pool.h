// A fixed set of worker threads that run one data-parallel loop at a time.
//
// parallel_for(count, task) splits [0, count) into at most size() contiguous ranges, runs
// task(begin, end) on them (the calling thread takes the first) and returns when all are done.
// Thread-safety: any thread may call parallel_for; while one call is running, a concurrent
// call runs its whole loop on its own calling thread instead of waiting. An exception thrown
// by the task is rethrown in the caller. A call allocates nothing (the task is borrowed, not
// copied into a std::function).
// Waiting: a worker, after its part, and the caller, waiting for the workers, first poll for
// up to kSpin (the loops of a decode step come microseconds apart, and waking a sleeping
// thread costs tens of microseconds), then sleep on a condition variable (so an idle or
// oversubscribed pool does not burn CPU).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pytransformer::tensor {

class ThreadPool {
 public:
  // A borrowed callable task(begin, end): refers to the caller's function object (a lambda
  // passed to parallel_for), which outlives the call; copying or storing it never allocates.
  class Task {
   public:
    template <class Function>
    Task(const Function& function)  // implicit: parallel_for(count, 1, [&](...) { ... })
        : function_(&function), call_([](const void* f, int64_t begin, int64_t end) {
            (*static_cast<const Function*>(f))(begin, end);
          }) {}
    void operator()(int64_t begin, int64_t end) const { call_(function_, begin, end); }

   private:
    const void* function_;
    void (*call_)(const void* function, int64_t begin, int64_t end);
  };

  // threads: total threads including the caller; 0 picks the hardware concurrency.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // min_per_thread: smallest range worth a thread (ranges are never split finer).
  void parallel_for(int64_t count, int64_t min_per_thread, const Task& task) const;

  static constexpr std::chrono::microseconds kSpin{50};

 private:
  void worker_loop(int index);

  int size_ = 1;
  std::vector<std::thread> workers_;
  mutable std::mutex busy_;  // held by the caller whose loop the workers run
  mutable std::mutex mutex_;
  mutable std::condition_variable start_;
  mutable std::condition_variable done_;
  // Written under mutex_; atomic so that the polling before sleeping may read them.
  mutable std::atomic<uint64_t> generation_{0};
  mutable const Task* task_ = nullptr;
  mutable int64_t count_ = 0;
  mutable int parts_ = 0;
  mutable std::atomic<int> pending_{0};
  mutable std::exception_ptr error_;
  bool stopping_ = false;
};

}  // namespace pytransformer::tensor
