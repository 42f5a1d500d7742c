#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/log.h"

namespace prunekv::cli {

ProgressReporter::ProgressReporter(size_t total, bool enabled)
    : total_(total), enabled_(enabled), tty_(enabled && ::isatty(::fileno(stderr)) != 0) {}

void ProgressReporter::update(const ProgressSnapshot& snapshot) {
  if (!enabled_) return;
  const double now = clock_.seconds();
  const double interval = tty_ ? 0.1 : log_interval_s_;
  if (last_draw_ >= 0 && now - last_draw_ < interval) return;
  if (last_draw_ < 0 && !tty_ && now < interval) return;  // no log line for short runs
  last_draw_ = now;
  draw(snapshot);
}

void ProgressReporter::finish(const ProgressSnapshot& snapshot) {
  if (!enabled_ || !tty_) return;  // the summary that follows says the rest
  draw(snapshot);
  std::fputc('\n', stderr);
}

void ProgressReporter::draw(const ProgressSnapshot& s) {
  const double elapsed = std::max(clock_.seconds(), 1e-9);
  const double tok_per_s = static_cast<double>(s.num_output_tokens) / elapsed;
  const std::string counts =
      fmt::format("{}/{} requests, {:.0f} tok/s, blocks {}/{}, running {}, waiting {}", s.num_done, total_,
                  tok_per_s, s.blocks_used, s.blocks_total, s.num_running, s.num_waiting);
  if (!tty_) {
    log::get("cli")->info("progress: {}, {:.1f} s", counts, elapsed);
    return;
  }
  constexpr size_t kWidth = 30;
  const size_t filled = total_ == 0 ? kWidth : std::min(kWidth, s.num_done * kWidth / total_);
  // \r + clear-to-end-of-line redraws the bar in place.
  std::fprintf(stderr, "\r[%s%s] %s\x1b[K", std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(), counts.c_str());
  std::fflush(stderr);
}

}  // namespace prunekv::cli
