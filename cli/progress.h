#pragma once
// Progress of a batch run on stderr: a live bar redrawn in place when stderr is a terminal, a
// periodic info log line otherwise (so logs stay readable in files and CI). Engine thread only.
#include <cstddef>
#include <string>

#include "common/stopwatch.h"

namespace prunekv::cli {

struct ProgressSnapshot {
  size_t num_done = 0;  // requests ended
  size_t num_output_tokens = 0;
  size_t blocks_used = 0;
  size_t blocks_total = 0;
  size_t num_running = 0;
  size_t num_waiting = 0;
};

class ProgressReporter {
 public:
  // `total` requests; `enabled` = false makes every call a no-op (quiet runs, tests).
  ProgressReporter(size_t total, bool enabled);
  // Draws at most ~10 times a second on a terminal, logs every log_interval_s otherwise.
  void update(const ProgressSnapshot& snapshot);
  // Draws the final state and ends the bar's line.
  void finish(const ProgressSnapshot& snapshot);

 private:
  void draw(const ProgressSnapshot& snapshot);

  size_t total_;
  bool enabled_;
  bool tty_;
  Stopwatch clock_;
  double last_draw_ = -1.0;
  double log_interval_s_ = 5.0;
};

}  // namespace prunekv::cli
