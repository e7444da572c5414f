// The encoder-decoder Transformer built from a model file. Offers encode() and decode_step()
// over a KV cache; it never chooses tokens (csrc/decoding/ does).
//
// KV cache design (no reallocation and no copy of the cache per step, beams never copy it):
// - cross-attention K/V are projected once per source sentence in start_decoding() and shared
//   by every hypothesis of that sentence through `sentence[h]`;
// - self-attention K/V of step t are written for the n_t active hypotheses into one chunk of
//   n_t rows; a hypothesis reads its own history through an ancestry table
//   (row of its ancestor at each earlier step), updated from `parent[h]` each step. Reordering
//   beams or dropping finished sentences only rewrites that small int table.
//
// Thread-safety: a Seq2SeqModel is immutable after construction and may be shared by threads;
// a DecoderState belongs to one decoding loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "format/model_config.h"
#include "format/model_file.h"

namespace pytransformer::models {

// Encoder output for a batch. hidden: [batch, max_length, d_model] row-major; rows past a
// sentence's length are padding (zeros) and are masked by the decoder.
struct EncoderOutput {
  int64_t batch = 0;
  int64_t max_length = 0;
  std::vector<int64_t> lengths;  // [batch]
  std::vector<float> hidden;     // [batch, max_length, d_model]
};

// The KV cache and ancestry of one decoding loop, made by Seq2SeqModel::start_decoding();
// opaque (its contents are defined in seq2seq_model.cpp). Not thread-safe: one loop owns it.
class DecoderState {
 public:
  ~DecoderState();
  DecoderState(const DecoderState&) = delete;
  DecoderState& operator=(const DecoderState&) = delete;

  int64_t step() const;  // decode_step() calls made so far (the position of the next step)

 private:
  friend class Seq2SeqModel;
  DecoderState();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Cross-attention probabilities of one step, for inspection (the `explain` command):
// [decoder_layers, decoder_heads, n, source max_length] row-major.
struct CrossAttentionRecord {
  std::vector<float> probabilities;
};

class Seq2SeqModel {
 public:
  // Builds every layer from the file's weights (names from format/tensor_names.h). The model
  // keeps `file` alive: weights are used in place from the mapping. threads: 0 = default.
  explicit Seq2SeqModel(std::shared_ptr<const format::ModelFile> file, int threads = 0);
  ~Seq2SeqModel();

  const format::ModelConfig& config() const;
  const format::ModelFile& file() const;

  // source_ids: one id sequence per sentence (already holding any EOS / language token),
  // lengths 1..max_positions, ids < source_vocab_size (InvalidArgument otherwise).
  EncoderOutput encode(const std::vector<std::vector<int32_t>>& source_ids) const;

  // Prepares a cache for up to `max_hypotheses` hypotheses per step and `max_steps` steps over
  // the sentences of `encoded` (which the state copies what it needs from).
  std::unique_ptr<DecoderState> start_decoding(const EncoderOutput& encoded, int64_t max_hypotheses,
                                               int64_t max_steps) const;

  // One decoder step for n active hypotheses (n <= max_hypotheses), all at the same position
  // (the state's step counter, advanced by this call).
  //   tokens[n]:   the input token of each hypothesis (decoder start id at step 0);
  //   sentence[n]: index in the encoded batch of each hypothesis's source sentence;
  //   parent[n]:   index among the previous step's hypotheses that each one extends
  //                (ignored at step 0);
  //   logits:      output [n, target_vocab_size], raw scores before any softmax;
  //   attention:   optional; receives this step's cross-attention probabilities.
  void decode_step(DecoderState& state, const int32_t* tokens, const int32_t* sentence,
                   const int32_t* parent, int64_t n, float* logits,
                   CrossAttentionRecord* attention = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::models
