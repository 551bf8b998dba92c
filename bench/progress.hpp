// Progress of a long phase on stderr: a redrawn bar when stderr is a terminal, otherwise a
// plain line when the phase starts and one when it ends (logs stay readable).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace parker::bench {

class Progress {
 public:
  Progress(std::string label, std::uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::uint64_t steps = 1);
  void set(std::uint64_t done);
  // Ends the phase (the destructor does it too).
  void finish();

 private:
  void draw(bool final_draw);

  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace parker::bench
