#include "model/model_config.h"

#include <cmath>
#include <fmt/format.h>

#include "common/error.h"

namespace prunekv {
namespace {

// Generous ceilings far above any LLaMA-family model; they keep every size product far from
// overflowing 64 bits and turn garbage headers into a clear error instead of a huge allocation.
constexpr uint32_t kMaxDim = 1u << 16;
constexpr uint32_t kMaxHiddenDim = 1u << 18;
constexpr uint32_t kMaxLayers = 1024;
constexpr uint32_t kMaxHeads = 1024;
constexpr uint32_t kMaxVocab = 1u << 22;
constexpr uint32_t kMaxContext = 1u << 24;

void check_range(const std::string& source, const char* field, uint32_t value, uint32_t max) {
  if (value == 0 || value > max)
    throw FormatError(fmt::format("{}: field {} = {}, expected 1..{}", source, field, value, max));
}

}  // namespace

double ModelConfig::weight_flops_per_token() const {
  const double d = dim, kv = kv_dim(), h = hidden_dim;
  const double per_layer = 2.0 * d * d + 2.0 * kv * d + 3.0 * h * d;  // wq, wo, wk, wv, w1..w3
  return 2.0 * (num_layers * per_layer + static_cast<double>(vocab_size) * d);
}

size_t ModelConfig::num_weight_params() const {
  const size_t d = dim, kv = kv_dim(), h = hidden_dim, vocab = vocab_size;
  const size_t per_layer = 2 * d + 2 * d * d + 2 * kv * d + 3 * h * d;  // norms + projections + MLP
  return vocab * d * (tied_classifier ? 1 : 2) + num_layers * per_layer + d;
}

void ModelConfig::validate(const std::string& source) const {
  check_range(source, "dim", dim, kMaxDim);
  check_range(source, "hidden_dim", hidden_dim, kMaxHiddenDim);
  check_range(source, "n_layers", num_layers, kMaxLayers);
  check_range(source, "n_heads", num_heads, kMaxHeads);
  check_range(source, "n_kv_heads", num_kv_heads, kMaxHeads);
  check_range(source, "vocab_size", vocab_size, kMaxVocab);
  check_range(source, "context_length", context_length, kMaxContext);
  if (dim % num_heads != 0)
    throw FormatError(fmt::format("{}: field n_heads = {} must divide dim = {}", source, num_heads, dim));
  if (num_heads % num_kv_heads != 0)
    throw FormatError(
        fmt::format("{}: field n_kv_heads = {} must divide n_heads = {}", source, num_kv_heads, num_heads));
  if (head_dim() % 2 != 0)
    throw FormatError(fmt::format("{}: head_dim = dim / n_heads = {} must be even for RoPE", source, head_dim()));
  if (!std::isfinite(rope_theta) || rope_theta <= 0)
    throw FormatError(fmt::format("{}: field rope_theta = {}, expected a positive number", source, rope_theta));
  if (!std::isfinite(norm_eps) || norm_eps <= 0 || norm_eps >= 1)
    throw FormatError(fmt::format("{}: field norm_eps = {}, expected a value in (0, 1)", source, norm_eps));
}

}  // namespace prunekv
