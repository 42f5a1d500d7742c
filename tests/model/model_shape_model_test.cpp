#include <gtest/gtest.h>

#include "model/model_shape.h"
#include "tests/testing/model_paths.h"

namespace prunekv {
namespace {

TEST(ModelShape, ReadsTheRealStories260KCheckpointAndGguf) {
  for (const char* file : {"stories260K.bin", "stories260K-f32.gguf"}) {
    const std::string path = testing::model_path(file);
    PKV_REQUIRE_SHARED_FILE(path);
    const ModelConfig config = model_shape(path);
    EXPECT_EQ(config.dim, 64u) << file;
    EXPECT_EQ(config.hidden_dim, 172u) << file;
    EXPECT_EQ(config.num_layers, 5u) << file;
    EXPECT_EQ(config.num_heads, 8u) << file;
    EXPECT_EQ(config.num_kv_heads, 4u) << file;
    EXPECT_EQ(config.vocab_size, 512u) << file;
    EXPECT_EQ(config.context_length, 512u) << file;
  }
}

}  // namespace
}  // namespace prunekv
