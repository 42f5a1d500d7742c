// The large synthetic shapes (hundreds of MiB of weights). Parameter counts: vocab*dim +
// layers*(2*dim + 4*dim*dim + 3*hidden*dim) + dim, tied classifier (no GQA in these shapes).
#include <gtest/gtest.h>

#include <cmath>

#include "model/model.h"

namespace prunekv {
namespace {

TEST(SyntheticModel, LargeStoriesShapesBuildWithFiniteWeights) {
  for (const auto& [name, dim, hidden, layers, params] :
       {std::tuple{"stories42M", 512u, 1376u, 8u, size_t{41689600}}, std::tuple{"stories110M", 768u, 2048u, 12u, size_t{109529856}}}) {
    const auto model = load_model(std::string("synthetic:") + name);
    EXPECT_EQ(model->config.dim, dim) << name;
    EXPECT_EQ(model->config.hidden_dim, hidden) << name;
    EXPECT_EQ(model->config.num_layers, layers) << name;
    EXPECT_EQ(model->config.num_heads, layers) << name;  // 8 and 12 heads, as many as layers
    EXPECT_EQ(model->config.context_length, 1024u) << name;
    EXPECT_EQ(model->config.num_weight_params(), params) << name;
    const LayerWeights& last = model->layers.back();
    const size_t n = size_t{hidden} * dim;
    for (size_t i = 0; i < n; i += 97) ASSERT_TRUE(std::isfinite(last.w2.f32()[i])) << name;
  }
}

}  // namespace
}  // namespace prunekv
