#include "scheduler/transformer_runner.h"

#include <thread>

#include "common/check.h"

namespace prunekv {

TransformerRunner::TransformerRunner(const Model& model, int num_threads)
    : model_(model), transformer_(model, num_threads), start_(std::chrono::steady_clock::now()) {}

KvLayout TransformerRunner::kv_layout(uint32_t block_size) const {
  return model_.config.kv_layout(block_size, KvDtype::kF32);
}

uint32_t TransformerRunner::num_query_heads() const { return model_.config.num_heads; }
uint32_t TransformerRunner::context_length() const { return model_.config.context_length; }
uint32_t TransformerRunner::vocab_size() const { return model_.config.vocab_size; }
std::span<const TokenId> TransformerRunner::stop_tokens() const { return model_.stop_tokens; }
const Tokenizer* TransformerRunner::tokenizer() const { return model_.tokenizer ? &*model_.tokenizer : nullptr; }

void TransformerRunner::execute(const StepBatch& batch, std::span<Sampler* const> samplers,
                                std::vector<TokenId>& next_tokens) {
  const size_t num_sampling = batch.num_sampling();
  PKV_CHECK(samplers.size() == num_sampling, "{} samplers for {} sampling sequences", samplers.size(), num_sampling);
  transformer_.forward(batch, logits_);
  const size_t vocab = model_.config.vocab_size;
  PKV_CHECK(logits_.size() >= num_sampling * vocab, "forward returned {} logits, expected {} x {}", logits_.size(),
            num_sampling, vocab);
  next_tokens.resize(num_sampling);
  for (size_t i = 0; i < num_sampling; ++i)
    next_tokens[i] = samplers[i]->sample(std::span<const float>(logits_.data() + i * vocab, vocab));
}

std::span<const float> TransformerRunner::logits(size_t sampling_index) const {
  const size_t vocab = model_.config.vocab_size;
  PKV_CHECK((sampling_index + 1) * vocab <= logits_.size(), "logits of sampling sequence {}: the last step had {}",
            sampling_index, logits_.size() / vocab);
  return std::span<const float>(logits_).subspan(sampling_index * vocab, vocab);
}

double TransformerRunner::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void TransformerRunner::wait_until(double time) {
  const double wait = time - now();
  if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
}

}  // namespace prunekv
