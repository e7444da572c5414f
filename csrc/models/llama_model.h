// A decoder-only language model of the Llama family (general.architecture = llama,
// docs/format.md) built from a model file on any ops::Device, offering the EncoderDecoderModel
// contract (encoder_decoder_model.h) so that greedy search, sampling and beam search run on it
// unchanged:
// - encode(prompts) is the prompt pass: all but the last token of each prompt run through the
//   layers as matrices at once (causal attention), and their keys and values are kept; the
//   prompts of one call have one length (generate() groups them so);
// - start_decoding() puts those keys and values in the first steps of the self-attention cache
//   (models/self_attention_cache.h; hypotheses of a sentence share them through the ancestry
//   table, as beams share their history), sized for the whole context: prompt + max_steps, at
//   most model.max_positions;
// - decode_step() runs one token per hypothesis at position prompt length + step (the first
//   input is the prompt's last token, encoded.start_tokens) and returns the next token's logits.
// It never chooses tokens (csrc/decoding/ does). Thread-safety as Seq2SeqModel: immutable after
// construction; a DecoderState belongs to one loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "format/model_config.h"
#include "format/model_file.h"
#include "models/encoder_decoder_model.h"
#include "ops/device.h"

namespace pytransformer::models {

class LlamaModel final : public EncoderDecoderModel {
 public:
  // Builds every layer from the file's weights on `device` (the file opened with
  // TensorData::LOAD; its config decoder-only: FormatError otherwise).
  LlamaModel(std::shared_ptr<const format::ModelFile> file,
             std::shared_ptr<const ops::Device> device);
  explicit LlamaModel(std::shared_ptr<const format::ModelFile> file, int threads = 0);
  ~LlamaModel() override;

  const format::ModelConfig& config() const override;
  const format::ModelFile& file() const override;
  const ops::Device& device() const;

  EncoderOutput encode(const std::vector<std::vector<int32_t>>& prompts) const override;
  std::unique_ptr<DecoderState> start_decoding(const EncoderOutput& encoded, int64_t max_hypotheses,
                                               int64_t max_steps) const override;
  // `attention` must be nullptr (a language model has no cross-attention to record).
  void decode_step(DecoderState& state, const int32_t* tokens, const int32_t* sentence,
                   const int32_t* parent, int64_t n, float* logits,
                   CrossAttentionRecord* attention = nullptr) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::models
