// Named *_roofline_test.cpp: "cost_model_test.cpp" would end in "_model_test.cpp" and land in the model label.
#include "sim/cost_model.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "model/model_shape.h"

namespace prunekv::sim {
namespace {

// L=2, D=8, H=2, H_kv=1 (G=2), d=4, F=16, V=10: small enough to compute every term by hand.
ModelConfig tiny_config() {
  ModelConfig config;
  config.name = "tiny";
  config.num_layers = 2;
  config.dim = 8;
  config.num_heads = 2;
  config.num_kv_heads = 1;
  config.hidden_dim = 16;
  config.vocab_size = 10;
  config.context_length = 64;
  return config;
}

DeviceProfile unit_device(double overhead) { return {"unit", 1000.0, 1000.0, 1 << 20, overhead, 4}; }

TEST(CostModel, ParamsPerLayerCountAllSevenMatrices) {
  CostModel model(tiny_config(), unit_device(0), KvDtype::kF32);
  // wq 64 + wk 32 + wv 32 + wo 64 + w1,w2,w3 3*128.
  EXPECT_DOUBLE_EQ(model.params_per_layer(), 576.0);
  EXPECT_DOUBLE_EQ(model.classifier_params(), 80.0);
  EXPECT_DOUBLE_EQ(model.weight_bytes_total(), 4.0 * (576 * 2 + 80));
}

TEST(CostModel, MixedStepMatchesHandComputedTerms) {
  CostModel model(tiny_config(), unit_device(0.5), KvDtype::kF32);
  // A: a 3-token prefill chunk, 3 slots in each of the 2 lists; B: one decode token, 5 slots each.
  const std::vector<SequenceWork> seqs = {{3, 6, true}, {1, 10, true}};
  const StepCost cost = model.step_cost(seqs);
  EXPECT_DOUBLE_EQ(cost.linear_flops, 2.0 * 576 * 2 * 4 + 2.0 * 80 * 2);  // 9536
  // Visible keys: A sees 1+2+3 per list = 12, B sees 10; 4*d*G = 32 per key.
  EXPECT_DOUBLE_EQ(cost.attention_flops, 32.0 * 22);
  EXPECT_DOUBLE_EQ(cost.weight_bytes, 4.0 * 1232);
  EXPECT_DOUBLE_EQ(cost.kv_read_bytes, 32.0 * 16);   // slot = 2 * 4 * 4 bytes
  EXPECT_DOUBLE_EQ(cost.kv_write_bytes, 32.0 * 2 * 4);
  EXPECT_DOUBLE_EQ(cost.compute_seconds, 10.24);
  EXPECT_DOUBLE_EQ(cost.memory_seconds, 5.696);
  EXPECT_DOUBLE_EQ(cost.seconds, 10.24 + 0.5);
}

TEST(CostModel, WithoutOverlapComputeAndMemoryAddAndAttentionHasItsOwnRate) {
  DeviceProfile device = unit_device(0.5);
  device.overlap = false;
  device.attention_flops = 100.0;  // a tenth of the GEMM rate
  CostModel model(tiny_config(), device, KvDtype::kF32);
  const std::vector<SequenceWork> seqs = {{3, 6, true}, {1, 10, true}};  // as in the mixed step
  const StepCost cost = model.step_cost(seqs);
  // 9536 linear FLOP at 1000/s, 704 attention FLOP at 100/s, 5696 bytes at 1000/s.
  EXPECT_DOUBLE_EQ(cost.compute_seconds, 9.536 + 7.04);
  EXPECT_DOUBLE_EQ(cost.memory_seconds, 5.696);
  EXPECT_DOUBLE_EQ(cost.seconds, 9.536 + 7.04 + 5.696 + 0.5);
}

TEST(CostModel, MemoryBoundDecodeTakesTheBandwidthTime) {
  DeviceProfile device = unit_device(0);
  device.peak_flops = 1e9;  // compute is nearly free: the step is bound by bytes
  CostModel model(tiny_config(), device, KvDtype::kF16);
  const std::vector<SequenceWork> seqs = {{1, 8, false}};
  const StepCost cost = model.step_cost(seqs);
  // No sampled position: the classifier is neither computed nor read.
  EXPECT_DOUBLE_EQ(cost.linear_flops, 2.0 * 576 * 2);
  EXPECT_DOUBLE_EQ(cost.weight_bytes, 4.0 * 1152);
  EXPECT_DOUBLE_EQ(cost.kv_read_bytes, 16.0 * 8);  // fp16 slot = 2 * 4 * 2 bytes
  EXPECT_DOUBLE_EQ(cost.kv_write_bytes, 16.0 * 2);
  EXPECT_DOUBLE_EQ(cost.seconds, (4.0 * 1152 + 128 + 32) / 1000.0);
}

TEST(CostModel, PrunedSlotsReadFewerBytes) {
  CostModel model(tiny_config(), unit_device(0), KvDtype::kF32);
  const std::vector<SequenceWork> full = {{1, 40, true}};
  const std::vector<SequenceWork> pruned = {{1, 24, true}};
  EXPECT_DOUBLE_EQ(model.step_cost(full).kv_read_bytes - model.step_cost(pruned).kv_read_bytes, 32.0 * 16);
  EXPECT_DOUBLE_EQ(model.step_cost(full).attention_flops - model.step_cost(pruned).attention_flops, 32.0 * 16);
}

TEST(CostModel, EmptyStepCostsNothing) {
  CostModel model(tiny_config(), unit_device(0.5), KvDtype::kF32);
  EXPECT_DOUBLE_EQ(model.step_cost({}).seconds, 0.0);
}

TEST(CostModel, Llama3EightBillionWeighsFifteenGigabytesInBf16) {
  CostModel model(model_shape("Llama-3-8B"), device_profile("H100"), KvDtype::kF16);
  // 32 x 218,103,808 layer params + 525,336,576 classifier params, 2 bytes each.
  EXPECT_DOUBLE_EQ(model.weight_bytes_total(), 2.0 * (218103808.0 * 32 + 525336576.0));
  // A batch-1 decode is memory bound on an H100: ~15 GB / 3.35 TB/s ~ 4.5 ms plus 2 ms overhead.
  const std::vector<SequenceWork> seqs = {{1, 256 * 100, true}};
  const StepCost cost = model.step_cost(seqs);
  EXPECT_GT(cost.memory_seconds, cost.compute_seconds);
  EXPECT_NEAR(cost.seconds, 15.0e9 / 3.35e12 + 2e-3, 1e-4);
}

TEST(CostModel, RejectsAnInvalidDevice) {
  DeviceProfile device = unit_device(0);
  device.memory_bandwidth = 0;
  EXPECT_THROW(CostModel(tiny_config(), device, KvDtype::kF32), ConfigError);
}

}  // namespace
}  // namespace prunekv::sim
