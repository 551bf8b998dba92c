// parkerctl's one job: open an observer session with parker, ask one question (STATS or
// LIST) and return the text of the answer, or a message that says what went wrong.
#pragma once

#include <chrono>
#include <string>

namespace parker::ctl {

enum class Question { stats, list };

struct Answer {
  enum class Status {
    ok,           // `text` is parker's reply
    unreachable,  // parker is not running, the socket is missing or not ours to open...
    failed,       // parker refused us, went away mid-way, or answered with garbage
  };
  Status status = Status::failed;
  std::string text;  // the reply, or the message to print
};

// Blocking: connects to `socket_path`, says HELLO with an empty pool (an observer), waits
// for WELCOME, sends the question and waits for its reply; each wait at most `timeout`.
[[nodiscard]] Answer ask_parker(const std::string& socket_path, Question question,
                                std::chrono::milliseconds timeout);

}  // namespace parker::ctl
