// The encoder-decoder Transformer on an NVIDIA GPU: an EncoderDecoderModel like the CPU
// Seq2SeqModel (encode, start_decoding, decode_step; it never chooses tokens), computed by the
// kernels of csrc/kernels/cuda/ with the numerics of the reference kernels, so the search
// strategies of csrc/decoding/ run unchanged on top of it (logits come back to the host every
// step).
//
// Device memory:
// - weights are uploaded once, in their stored dtype (f16 and bf16 values are converted while
//   the GEMM reads them; int8 weights multiply int8-quantised activations, as the CPU core does),
//   tied tensors once; plus the sinusoidal tables;
// - per encode() call, the activations of that batch;
// - per decoding loop (its DecoderState): the cross-attention keys and values of every decoder
//   layer ([batch, source_length, d] each, projected once), step workspaces sized for
//   max_hypotheses, and the self-attention cache, allocated in blocks of kStepsPerBlock steps as
//   decoding advances. Each step's chunk holds max_hypotheses rows per layer for keys and values;
//   hypotheses find their history through the same ancestry table as Seq2SeqModel (rows of
//   ancestors per step, rebuilt from parent[] on the host and uploaded each step), so beams
//   never copy the cache.
//
// Thread-safety: a CudaModel may be shared by threads; its GPU work is serialised (one stream,
// one mutex). A DecoderState belongs to one decoding loop.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "format/model_config.h"
#include "format/model_file.h"
#include "models/encoder_decoder_model.h"

namespace pytransformer::cuda {

// Raised when the GPU cannot be used at all (no driver, no device, unsupported device); the
// message starts with "CUDA requested but".
class CudaUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How linear layers with f32, f16 or bf16 weights multiply: EXACT uses our kernel,
// bit-identical to the reference GEMM; CUBLAS uses cublasSgemm in full f32
// (kernels/cuda/linear.h), available when the build found cuBLAS (cublas_available()). int8
// weights always use the int8 kernel.
enum class GemmBackend { EXACT, CUBLAS };
bool cublas_available();

class CudaModel final : public models::EncoderDecoderModel {
 public:
  // Uploads the weights of `file` to GPU `device`. Throws CudaUnavailable when the GPU cannot be
  // used, InvalidArgument for a GEMM backend this build lacks, FormatError for a bad file.
  CudaModel(std::shared_ptr<const format::ModelFile> file, int device = 0,
            GemmBackend gemm = GemmBackend::EXACT);
  ~CudaModel() override;

  const format::ModelConfig& config() const override;
  const format::ModelFile& file() const override;
  int device() const;
  GemmBackend gemm() const;

  // The EncoderDecoderModel contract, with Seq2SeqModel's checks and error messages.
  // decode_step() accepts only states made by this model's start_decoding().
  models::EncoderOutput encode(const std::vector<std::vector<int32_t>>& source_ids) const override;
  std::unique_ptr<models::DecoderState> start_decoding(const models::EncoderOutput& encoded,
                                                       int64_t max_hypotheses,
                                                       int64_t max_steps) const override;
  void decode_step(models::DecoderState& state, const int32_t* tokens, const int32_t* sentence,
                   const int32_t* parent, int64_t n, float* logits,
                   models::CrossAttentionRecord* attention = nullptr) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::cuda
