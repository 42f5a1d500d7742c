// prunekv: the command-line front end. Logs go to stderr, results to stdout; bad input is
// reported as a clear error and a non-zero exit, never a crash.
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) { return prunekv::cli::run_cli(std::vector<std::string>(argv, argv + argc)); }
