#pragma once
// Runs the built `prunekv` (or mpirun) as a separate process, as a launcher would: the sharding
// tests need separate processes, environments of their own, and a process they can SIGKILL.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace prunekv::testing {

// The prunekv executable this build made (a compile definition of the test target).
inline std::string prunekv_binary() { return PRUNEKV_BINARY; }

// Starts `argv` (argv[0] is a path, or a name looked up on PATH) with this process's
// environment plus `extra_env` ("NAME=value"); stdout and stderr go to `log_path`. Returns the pid.
inline pid_t start_process(const std::vector<std::string>& argv, const std::string& log_path,
                           const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> args, env;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env_strings) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << argv[0];
  return rc == 0 ? pid : -1;
}

// Waits for `pid`; its exit code, or 128 + the signal that ended it.
inline int wait_process(pid_t pid) {
  int status = 0;
  if (pid <= 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

// The exit code of `argv` run to its end.
inline int run_process(const std::vector<std::string>& argv, const std::string& log_path,
                       const std::vector<std::string>& extra_env = {}) {
  return wait_process(start_process(argv, log_path, extra_env));
}

// The full path of `name` on PATH, or nullopt.
inline std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::string dirs(path);
  for (size_t begin = 0; begin <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', begin), dirs.size());
    const std::string candidate = dirs.substr(begin, end - begin) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return std::nullopt;
}

}  // namespace prunekv::testing
