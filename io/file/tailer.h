#pragma once
// Following an audit log file as kube-apiserver writes it (`mode: tail`): new lines are read as
// they are appended, the file's rotation (rename + new file, or truncation) is followed without
// losing or duplicating lines, and the position reached is saved so a restart goes on where it
// stopped.
//
// Threading: each tailer runs on its own thread and feeds the pipeline as a producer
// (pipeline::submit, which waits while the in-flight limit is reached: backpressure, no loss).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "engine/pipeline/pipeline.h"

namespace vigil::io {

struct tail_options {
  std::string path;
  std::string cluster;
  /// Where the position is kept across restarts ("" = not kept). One line: inode, offset.
  std::string position_file;
  /// Where to start a file with no saved position that is there when the tailer starts: at its
  /// end (as `tail -f` and CrowdSec do) or at its beginning. One that appears later is read from
  /// its beginning.
  bool from_beginning = false;
  std::uint32_t poll_ms = 100;
};

class tailer {
 public:
  tailer(pipeline::pipeline& pl, tail_options opts);
  ~tailer(); ///< stops and joins
  tailer(const tailer&) = delete;
  tailer& operator=(const tailer&) = delete;

  /// Stops after the bytes already read are submitted and the position is saved.
  void stop();

  /// Lines (documents) submitted so far; rotations followed so far.
  [[nodiscard]] std::uint64_t documents() const noexcept { return documents_.load(); }
  [[nodiscard]] std::uint64_t rotations() const noexcept { return rotations_.load(); }

 private:
  void run();

  pipeline::pipeline& pl_;
  tail_options opts_;
  // `start: end` skips what a file held when vigil started following its path; a file that
  // appears later was written since, and is read from its beginning.
  bool existed_at_start_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> documents_{0};
  std::atomic<std::uint64_t> rotations_{0};
  std::thread thread_;
};

} // namespace vigil::io
