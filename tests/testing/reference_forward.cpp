#include "tests/testing/reference_forward.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "model/dequantize.h"

namespace prunekv::testing {

namespace {

// y[out] = W[out][in] x[in], double accumulation; W in any supported type, each row
// dequantized by the scalar reference (model/dequantize.h).
void matvec(float* y, const float* x, const WeightView& w, size_t in, size_t out) {
  std::vector<float> row(in);
  for (size_t o = 0; o < out; ++o) {
    dequantize_row(w.type, w.row(o, in), row.data(), in);
    double sum = 0.0;
    for (size_t i = 0; i < in; ++i) sum += double{row[i]} * double{x[i]};
    y[o] = static_cast<float>(sum);
  }
}

void rmsnorm(float* out, const float* x, const float* weight, size_t dim, float eps) {
  double ss = 0.0;
  for (size_t i = 0; i < dim; ++i) ss += double{x[i]} * double{x[i]};
  const double scale = 1.0 / std::sqrt(ss / static_cast<double>(dim) + double{eps});
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(double{weight[i]} * (scale * double{x[i]}));
}

// Rotates every head of vec at `pos`, pairing (2k, 2k+1) or (k, k + head_dim/2).
void rope(float* vec, size_t num_heads, size_t head_dim, Pos pos, float theta, RopeLayout layout) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < num_heads; ++h) {
    for (size_t k = 0; k < half; ++k) {
      const double freq = 1.0 / std::pow(double{theta}, double(2 * k) / double(head_dim));
      const double angle = double(pos) * freq;
      const size_t a = h * head_dim + (layout == RopeLayout::kAdjacentPairs ? 2 * k : k);
      const size_t b = a + (layout == RopeLayout::kAdjacentPairs ? 1 : half);
      const double v0 = vec[a];
      const double v1 = vec[b];
      vec[a] = static_cast<float>(v0 * std::cos(angle) - v1 * std::sin(angle));
      vec[b] = static_cast<float>(v0 * std::sin(angle) + v1 * std::cos(angle));
    }
  }
}

}  // namespace

TokenId argmax(std::span<const float> values) {
  PKV_CHECK(!values.empty());
  return static_cast<TokenId>(std::max_element(values.begin(), values.end()) - values.begin());
}

ReferenceForward::ReferenceForward(const Model& model)
    : model_(model),
      key_cache_(model.config.num_layers),
      value_cache_(model.config.num_layers),
      att_rows_(model.config.num_layers) {}

const std::vector<float>& ReferenceForward::step(TokenId token) {
  const ModelConfig& c = model_.config;
  const size_t dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim, hd = c.head_dim();
  const size_t group = c.group_size();
  const auto pos = static_cast<Pos>(num_cached_);
  const size_t n = num_cached_ + 1;  // positions visible to this token
  PKV_CHECK(token >= 0 && static_cast<uint32_t>(token) < c.vocab_size);

  std::vector<float> x(dim);
  dequantize_row(model_.token_embedding.type, model_.token_embedding.row(size_t(token), dim), x.data(), dim);
  std::vector<float> xb(dim), q(dim), k(kv_dim), v(kv_dim), att(dim), hb(hidden), hb2(hidden), branch(dim);
  std::vector<double> scores(n);

  for (uint32_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& w = model_.layers[l];
    rmsnorm(xb.data(), x.data(), w.attn_norm, dim, c.norm_eps);
    matvec(q.data(), xb.data(), w.wq, dim, dim);
    matvec(k.data(), xb.data(), w.wk, dim, kv_dim);
    matvec(v.data(), xb.data(), w.wv, dim, kv_dim);
    rope(q.data(), c.num_heads, hd, pos, c.rope_theta, c.rope_layout);
    rope(k.data(), c.num_kv_heads, hd, pos, c.rope_theta, c.rope_layout);
    key_cache_[l].insert(key_cache_[l].end(), k.begin(), k.end());
    value_cache_[l].insert(value_cache_[l].end(), v.begin(), v.end());

    att_rows_[l].assign(size_t{c.num_heads} * n, 0.0f);
    for (uint32_t h = 0; h < c.num_heads; ++h) {
      const uint32_t kv_head = h / static_cast<uint32_t>(group);
      const float* qh = q.data() + h * hd;
      auto visible = [&](size_t p) { return !keep_ || keep_(l, kv_head, static_cast<Pos>(p)); };
      double max_score = -INFINITY;
      for (size_t p = 0; p < n; ++p) {
        if (!visible(p)) continue;
        const float* kp = key_cache_[l].data() + p * kv_dim + kv_head * hd;
        double dot = 0.0;
        for (size_t i = 0; i < hd; ++i) dot += double{qh[i]} * double{kp[i]};
        scores[p] = dot / std::sqrt(double(hd));
        max_score = std::max(max_score, scores[p]);
      }
      PKV_CHECK(max_score > -INFINITY, "layer {} head {} sees no position", l, h);
      double sum = 0.0;
      for (size_t p = 0; p < n; ++p) {
        scores[p] = visible(p) ? std::exp(scores[p] - max_score) : 0.0;
        sum += scores[p];
      }
      for (size_t i = 0; i < hd; ++i) {
        double acc = 0.0;
        for (size_t p = 0; p < n; ++p) {
          if (scores[p] != 0.0) acc += scores[p] / sum * value_cache_[l][p * kv_dim + kv_head * hd + i];
        }
        att[h * hd + i] = static_cast<float>(acc);
      }
      for (size_t p = 0; p < n; ++p) att_rows_[l][h * n + p] = static_cast<float>(scores[p] / sum);
    }
    matvec(branch.data(), att.data(), w.wo, dim, dim);
    for (size_t i = 0; i < dim; ++i) x[i] += branch[i];

    rmsnorm(xb.data(), x.data(), w.ffn_norm, dim, c.norm_eps);
    matvec(hb.data(), xb.data(), w.w1, dim, hidden);
    matvec(hb2.data(), xb.data(), w.w3, dim, hidden);
    for (size_t i = 0; i < hidden; ++i) {
      const double g = hb[i];
      hb[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * double{hb2[i]});
    }
    matvec(branch.data(), hb.data(), w.w2, hidden, dim);
    for (size_t i = 0; i < dim; ++i) x[i] += branch[i];
  }
  rmsnorm(x.data(), x.data(), model_.final_norm, dim, c.norm_eps);
  logits_.resize(c.vocab_size);
  matvec(logits_.data(), x.data(), model_.classifier, dim, c.vocab_size);
  num_cached_ = n;
  return logits_;
}

const std::vector<float>& ReferenceForward::prefill(std::span<const TokenId> tokens) {
  PKV_CHECK(!tokens.empty());
  for (TokenId t : tokens) step(t);
  return logits_;
}

std::vector<TokenId> ReferenceForward::generate_greedy(size_t max_new, std::span<const TokenId> stop) {
  PKV_CHECK(num_cached_ > 0, "prefill first");
  std::vector<TokenId> out;
  TokenId next = argmax(logits_);
  while (out.size() < max_new && std::find(stop.begin(), stop.end(), next) == stop.end()) {
    out.push_back(next);
    if (out.size() == max_new) break;
    next = argmax(step(next));
  }
  return out;
}

std::span<const float> ReferenceForward::attention_row(uint32_t layer, uint32_t head) const {
  const size_t n = num_cached_;
  return {att_rows_.at(layer).data() + size_t{head} * n, n};
}

}  // namespace prunekv::testing
