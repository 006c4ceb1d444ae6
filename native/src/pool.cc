#include "pool.h"

namespace advclip {

Pool::Pool(int threads) {
  for (int i = 1; i < threads; i++) workers_.emplace_back([this] { work(); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void Pool::take(const std::function<void(std::int64_t)>& fn, std::int64_t count) {
  for (;;) {
    const std::int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count) return;
    fn(i);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void Pool::run(std::int64_t count, const std::function<void(std::int64_t)>& fn) {
  if (workers_.empty() || count <= 1) {
    for (std::int64_t i = 0; i < count; i++) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    job_ = &fn;
    count_ = count;
    generation_++;
  }
  wake_.notify_all();
  take(fn, count);
  while (done_.load(std::memory_order_acquire) < count) std::this_thread::yield();
  {
    // workers that wake from now on find no job; the ones inside are leaving
    std::lock_guard<std::mutex> lock(mu_);
    job_ = nullptr;
  }
  while (inside_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
}

void Pool::work() {
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(std::int64_t)>* job;
    std::int64_t count;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      count = count_;
      if (job) inside_.fetch_add(1, std::memory_order_acq_rel);
    }
    if (!job) continue;
    take(*job, count);
    inside_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace advclip
