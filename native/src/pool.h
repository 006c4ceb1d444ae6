// A small thread pool for kernels that must not wait for a thread the OS has
// not scheduled: the calling thread takes tiles too, and a call ends when every
// tile is done, not when every thread has checked in. On a shared machine a
// late worker then costs at most the tile it holds (an OpenMP team's barrier
// waits for the slowest thread, which made 2-thread products slower than 1).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace advclip {

class Pool {
 public:
  explicit Pool(int threads);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  /** fn(0..count-1), each index once, on this thread and the workers. */
  void run(std::int64_t count, const std::function<void(std::int64_t)>& fn);

 private:
  void work();
  void take(const std::function<void(std::int64_t)>& fn, std::int64_t count);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  const std::function<void(std::int64_t)>* job_ = nullptr;  // under mu_
  std::int64_t count_ = 0;                                   // under mu_
  std::atomic<std::int64_t> next_{0}, done_{0};
  std::atomic<int> inside_{0};  // workers between taking the job and leaving it
};

}  // namespace advclip
