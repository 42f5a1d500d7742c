#pragma once
// Seeded uniform [-1, 1) floats for kernel tests.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace prunekv::testing {

inline std::vector<float> random_vector(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace prunekv::testing
