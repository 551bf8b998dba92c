#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace parker::bench {

using Clock = std::chrono::steady_clock;

Progress::Progress(std::string label, std::uint64_t total)
    : label_(std::move(label)),
      total_(std::max<std::uint64_t>(total, 1)),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(Clock::now()),
      last_draw_(start_) {
  if (tty_) {
    draw(false);
  } else {
    fmt::print(stderr, "  {} ...\n", label_);
  }
}

Progress::~Progress() { finish(); }

void Progress::advance(std::uint64_t steps) { set(done_ + steps); }

void Progress::set(std::uint64_t done) {
  done_ = std::min(done, total_);
  // Redraw at most ten times a second: the bar must not cost what it measures.
  if (tty_ && Clock::now() - last_draw_ > std::chrono::milliseconds(100)) draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final_draw) {
  last_draw_ = Clock::now();
  double seconds = std::chrono::duration<double>(last_draw_ - start_).count();
  if (!tty_) {
    if (final_draw) fmt::print(stderr, "  {}: done in {:.1f} s\n", label_, seconds);
    return;
  }
  constexpr int kWidth = 30;
  double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  int filled = static_cast<int>(fraction * kWidth);
  fmt::print(stderr, "\r  {:<44.44} [{}{}] {:3.0f}% {:6.1f} s{}", label_, std::string(filled, '#'),
             std::string(kWidth - filled, ' '), fraction * 100, seconds, final_draw ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace parker::bench
