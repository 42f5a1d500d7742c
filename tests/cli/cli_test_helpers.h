#pragma once
// Helpers for the CLI tests: run `prunekv ...` in-process, per-test temporary files, JSONL reading.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace prunekv::testing {

// A path under the temp dir unique to this process and test.
inline std::string cli_temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test = info ? std::string(info->test_suite_name()) + "_" + info->name() : "cli";
  return (std::filesystem::temp_directory_path() /
          ("prunekv_" + std::to_string(::getpid()) + "_" + test + "_" + name))
      .string();
}

inline void write_text_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<nlohmann::json> read_jsonl_file(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  return records;
}

// Runs the CLI with `args` (without the program name); returns the exit code.
inline int run_prunekv(std::vector<std::string> args) {
  args.insert(args.begin(), "prunekv");
  return cli::run_cli(std::move(args));
}

// Runs the CLI and returns what it printed on stdout; the exit code goes to *exit_code.
inline std::string run_prunekv_stdout(std::vector<std::string> args, int* exit_code) {
  ::testing::internal::CaptureStdout();
  *exit_code = run_prunekv(std::move(args));
  return ::testing::internal::GetCapturedStdout();
}

// Runs the CLI with its stdout sent to `path` (e.g. /dev/full); returns the exit code.
inline int run_prunekv_stdout_to(const std::string& path, std::vector<std::string> args) {
  std::fflush(stdout);
  const int saved = ::dup(1);
  const int fd = ::open(path.c_str(), O_WRONLY);
  ::dup2(fd, 1);
  ::close(fd);
  const int code = run_prunekv(std::move(args));
  std::fflush(stdout);
  std::clearerr(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  return code;
}

}  // namespace prunekv::testing
