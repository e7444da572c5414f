// The contract between an encoder-decoder model and the search strategies (csrc/decoding/):
// encode(), start_decoding() and decode_step() over a KV cache. Seq2SeqModel (seq2seq_model.h)
// implements it on any ops::Device (the CPU, or a GPU of the optional _cuda module), so the same
// search code runs on every device. A model never chooses tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "format/model_config.h"
#include "format/model_file.h"
#include "tensor/tensor.h"

namespace pytransformer::models {

// Encoder output for a batch, left where the model computed it: hidden is in the memory of the
// model's device (hidden.allocator() copies it to the host). hidden: [batch, max_length,
// d_model] row-major; rows past a sentence's length are padding (zeros) and are masked by the
// decoder. Move-only.
//
// A decoder-only model (llama_model.h) implements the same contract with encode() as its prompt
// pass: every prompt but its last token runs through the layers at once (causal attention) and
// `prompt_cache` keeps their keys and values; the last token is the sentence's first decoder
// input (`start_tokens`). Then hidden is empty and every length equals max_length (>= 0).
struct EncoderOutput {
  int64_t batch = 0;
  int64_t max_length = 0;
  std::vector<int64_t> lengths;  // [batch]
  tensor::Tensor hidden;         // [batch, max_length, d_model]
  // Decoder-only models: [layers, 2 (keys, values), batch * max_length, kv_width] and [batch].
  tensor::Tensor prompt_cache;
  std::vector<int32_t> start_tokens;
};

// The first decoder input of sentence i of `encoded`: its start token (decoder-only models) or
// the config's tokens.decoder_start_id.
inline int32_t start_token(const EncoderOutput& encoded, const format::ModelConfig& config,
                           int64_t i) {
  return encoded.start_tokens.empty() ? static_cast<int32_t>(config.decoder_start_id)
                                      : encoded.start_tokens[static_cast<size_t>(i)];
}

// The KV cache and ancestry of one decoding loop, made by a model's start_decoding() and usable
// only with that model (decode_step() rejects another's). Not thread-safe: one loop owns it.
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  DecoderState(const DecoderState&) = delete;
  DecoderState& operator=(const DecoderState&) = delete;

  virtual int64_t step() const = 0;  // decode_step() calls made so far (the next position)

 protected:
  DecoderState() = default;
};

// Cross-attention probabilities of one step, for inspection (the `explain` command):
// [decoder_layers, decoder_heads, n, source max_length] row-major.
struct CrossAttentionRecord {
  std::vector<float> probabilities;
};

class EncoderDecoderModel {
 public:
  virtual ~EncoderDecoderModel() = default;

  virtual const format::ModelConfig& config() const = 0;
  virtual const format::ModelFile& file() const = 0;

  // source_ids: one id sequence per sentence (already holding any EOS / language token),
  // lengths 1..max_positions, ids < source_vocab_size (InvalidArgument otherwise). For a
  // decoder-only model: the prompts, ids < target_vocab_size, all of one length.
  virtual EncoderOutput encode(const std::vector<std::vector<int32_t>>& source_ids) const = 0;

  // Prepares a cache for up to `max_hypotheses` hypotheses per step and `max_steps` steps over
  // the sentences of `encoded` (which the state copies what it needs from).
  virtual std::unique_ptr<DecoderState> start_decoding(const EncoderOutput& encoded,
                                                       int64_t max_hypotheses,
                                                       int64_t max_steps) const = 0;

  // One decoder step for n active hypotheses (n <= max_hypotheses), all at the same position
  // (the state's step counter, advanced by this call).
  //   tokens[n]:   the input token of each hypothesis (decoder start id at step 0);
  //   sentence[n]: index in the encoded batch of each hypothesis's source sentence;
  //   parent[n]:   index among the previous step's hypotheses that each one extends
  //                (ignored at step 0);
  //   logits:      output [n, target_vocab_size] in host memory, raw scores before any softmax;
  //   attention:   optional; receives this step's cross-attention probabilities.
  // Every argument is checked before the state changes (InvalidArgument).
  virtual void decode_step(DecoderState& state, const int32_t* tokens, const int32_t* sentence,
                           const int32_t* parent, int64_t n, float* logits,
                           CrossAttentionRecord* attention = nullptr) const = 0;

  // A vocabulary shortlist: restricts the logits of the state's later steps to the target ids
  // `ids` (sorted, unique, each < target_vocab_size; InvalidArgument otherwise), computing only
  // those rows of the output layer; decode_step then writes -infinity for every other id.
  // Returns false, leaving the state as it was, where the model cannot (the default, and a
  // device that does not select weight rows): the caller masks the logits itself.
  virtual bool restrict_output(DecoderState& state, const std::vector<int32_t>& ids) const {
    (void)state, (void)ids;
    return false;
  }
};

}  // namespace pytransformer::models
