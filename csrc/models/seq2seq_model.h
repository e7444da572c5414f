// The encoder-decoder Transformer built from a model file, on any ops::Device: the CPU
// (ops/cpu_device.h) or a GPU of the optional _cuda module (csrc/cuda/cuda_device.h). The layers
// (csrc/layers/) run their ops on the device; only the device's kernels and memory differ.
// Offers encode() and decode_step() over a KV cache (the EncoderDecoderModel contract,
// encoder_decoder_model.h); it never chooses tokens (csrc/decoding/ does).
//
// KV cache design (no reallocation and no copy of the cache per step, beams never copy it):
// - cross-attention K/V are projected once per source sentence in start_decoding() and shared
//   by every hypothesis of that sentence through `sentence[h]`;
// - self-attention K/V of step t are written for the n_t active hypotheses into chunk t, the
//   first n_t of max_hypotheses rows reserved for that step; a hypothesis reads its own history
//   through an ancestry table (row of its ancestor at each earlier step), updated from
//   `parent[h]` each step. Reordering beams or dropping finished sentences only rewrites that
//   small int table. The chunks live in blocks of Device::cache_block_steps() steps, allocated
//   uninitialised as steps reach them and never moved: on the CPU one block for all steps,
//   allocated in start_decoding() (only the rows written become resident memory); on a GPU,
//   blocks of 16 steps.
// - decode_step() allocates nothing on the CPU once its step buffers (kept in the state) have
//   reached their largest size, usually at the first step; with PYTRANSFORMER_DUMP_DIR set it
//   builds the dump names.
//
// Thread-safety: a Seq2SeqModel is immutable after construction and may be shared by threads
// (calls run concurrently on the CPU and one at a time on a GPU: Device::begin_call); a
// DecoderState belongs to one decoding loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "format/model_config.h"
#include "format/model_file.h"
#include "models/encoder_decoder_model.h"
#include "ops/device.h"

namespace pytransformer::models {

class Seq2SeqModel final : public EncoderDecoderModel {
 public:
  // Builds every layer from the file's weights (names from format/tensor_names.h) on `device`;
  // `file` must have been opened with TensorData::LOAD. The model keeps `file` alive: the weights
  // the CPU does not repack (embeddings, vectors, int8 scales) are used in place from the memory
  // it read them into, which holds no reference to the file itself.
  Seq2SeqModel(std::shared_ptr<const format::ModelFile> file,
               std::shared_ptr<const ops::Device> device);
  // On the CPU with `threads` threads (0 = the physical cores: ops::CpuDevice).
  explicit Seq2SeqModel(std::shared_ptr<const format::ModelFile> file, int threads = 0);
  ~Seq2SeqModel() override;

  const format::ModelConfig& config() const override;
  const format::ModelFile& file() const override;
  const ops::Device& device() const;

  // The EncoderDecoderModel contract (encoder_decoder_model.h). decode_step() accepts only
  // states made by this model's start_decoding().
  EncoderOutput encode(const std::vector<std::vector<int32_t>>& source_ids) const override;
  std::unique_ptr<DecoderState> start_decoding(const EncoderOutput& encoded, int64_t max_hypotheses,
                                               int64_t max_steps) const override;
  void decode_step(DecoderState& state, const int32_t* tokens, const int32_t* sentence,
                   const int32_t* parent, int64_t n, float* logits,
                   CrossAttentionRecord* attention = nullptr) const override;
  // On a device whose memory is the host's and that selects weight rows (the CPU).
  bool restrict_output(DecoderState& state, const std::vector<int32_t>& ids) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::models
