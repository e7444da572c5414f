#include "tensor/thread_pool.h"

#include <algorithm>

namespace pytransformer::tensor {
namespace {

int64_t part_begin(int64_t count, int parts, int part) { return count * part / parts; }

// Polls done() for up to ThreadPool::kSpin; whether it became true.
template <class Done>
bool spin_until(const Done& done) {
  const auto deadline = std::chrono::steady_clock::now() + ThreadPool::kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    if (i % 64 == 63 && std::chrono::steady_clock::now() >= deadline) return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  size_ = threads;
  for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const Task* task;
    int64_t count;
    int parts;
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      task = task_;
      count = count_;
      parts = parts_;
    }
    if (index < parts) {
      std::exception_ptr error;
      try {
        (*task)(part_begin(count, parts, index), part_begin(count, parts, index + 1));
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (error && !error_) error_ = error;
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t count, int64_t min_per_thread, const Task& task) const {
  if (count <= 0) return;
  const int64_t useful = count / std::max<int64_t>(1, min_per_thread);
  const int parts = static_cast<int>(std::min<int64_t>(size_, std::max<int64_t>(1, useful)));
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (parts == 1 || !busy.owns_lock()) {
    task(0, count);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    count_ = count;
    parts_ = parts;
    pending_ = parts - 1;
    error_ = nullptr;
    ++generation_;
  }
  start_.notify_all();
  std::exception_ptr error;
  try {
    task(0, part_begin(count, parts, 1));
  } catch (...) {
    error = std::current_exception();
  }
  spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  if (!error) error = error_;
  task_ = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

}  // namespace pytransformer::tensor
