// OutputFile: checked writes, and a target that holds either the old file or all of the new one.
#include "common/output_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace prunekv {
namespace {

std::string temp_dir() {
  const auto dir = std::filesystem::temp_directory_path() / ("prunekv_output_file_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t entries(const std::string& dir) {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

TEST(OutputFile, ACommittedFileHoldsEverythingWritten) {
  const std::string dir = temp_dir(), path = dir + "/a.jsonl";
  std::filesystem::remove(path);
  OutputFile out(path, "--output");
  out.write("one\n");
  out.flush();
  EXPECT_FALSE(std::filesystem::exists(path)) << "the final name appears only at commit";
  out.write("two\n");
  out.commit();
  EXPECT_EQ(read(path), "one\ntwo\n");
  EXPECT_EQ(entries(dir), 1u) << "no temporary file left beside it";
  std::filesystem::remove_all(dir);
}

TEST(OutputFile, AnUncommittedFileLeavesTheOldTargetAndNoTemporary) {
  const std::string dir = temp_dir(), path = dir + "/b.json";
  write_output_file(path, "--output-json", "old\n");
  {
    OutputFile out(path, "--output-json");
    out.write("half of the new");
  }  // a run that failed before commit
  EXPECT_EQ(read(path), "old\n");
  EXPECT_EQ(entries(dir), 1u);
  std::filesystem::remove_all(dir);
}

TEST(OutputFile, AFullDeviceIsAnErrorNamingTheFile) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  try {
    write_output_file("/dev/full", "--output-json", std::string(1 << 16, 'x'));
    FAIL() << "a write to /dev/full succeeded";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--output-json \"/dev/full\""), std::string::npos) << message;
    EXPECT_NE(message.find("No space left"), std::string::npos) << message;
  }
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/full")) << "a device is written through, never replaced";
}

TEST(OutputFile, AFolderThatCannotBeWrittenIsAnErrorAtOpen) {
  EXPECT_THROW(OutputFile("/nonexistent-dir/x.json", "--output"), Error);
}

}  // namespace
}  // namespace prunekv
