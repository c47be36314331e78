#pragma once
// Warnings the engine gives while running (a limit reached, memory refused), written where the
// program wants them: `vigil run` sends them into its logrus-format log, other commands leave
// the default, a "vigil: ..." line on stderr. Not for the hot path: each is said once, or on a
// failure.

#include <atomic>
#include <cstdio>
#include <string>

namespace vigil::util {

using warning_sink = void (*)(const std::string& message);

inline std::atomic<warning_sink>& warning_sink_slot() noexcept {
  static std::atomic<warning_sink> sink{nullptr};
  return sink;
}

/// Where warn() writes from now on (nullptr: back to stderr).
inline void set_warning_sink(warning_sink sink) noexcept { warning_sink_slot().store(sink, std::memory_order_release); }

inline void warn(const std::string& message) {
  if (const warning_sink sink = warning_sink_slot().load(std::memory_order_acquire); sink != nullptr) {
    sink(message);
  } else {
    std::fprintf(stderr, "vigil: %s\n", message.c_str());
  }
}

} // namespace vigil::util
