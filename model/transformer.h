#pragma once
// The batched LLaMA forward step over the paged KV memory (reads top to bottom like llama2.c's
// forward()): embeddings -> per layer [RMSNorm, QKV GEMM, RoPE, write K/V to the step's slots,
// paged GQA attention, output GEMM, residual, RMSNorm, gate|up GEMM, SwiGLU, down GEMM,
// residual] -> final norm -> classifier for sampling positions only. The GEMMs run on the
// model's weights repacked once into kernel panels (model/packed_model.h), shared by every
// Transformer over the same Model; a token's results do not depend on the batch around it.
#include <memory>
#include <vector>

#include "model/model.h"
#include "model/step_batch.h"

namespace prunekv {

class Transformer {
 public:
  // num_threads workers in one explicit tbb::task_arena; 1 runs the serial drivers.
  Transformer(const Model& model, int num_threads);
  ~Transformer();

  // Runs one step. `logits` receives [batch.num_sampling()][vocab] rows, in the order of the
  // sampling sequences in batch.seqs.
  void forward(const StepBatch& batch, std::vector<float>& logits);

  const Model& model() const { return model_; }
  int num_threads() const;

 private:
  struct Impl;
  const Model& model_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prunekv
