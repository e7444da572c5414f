// The model's hyper-parameters, special ids and generation defaults, parsed from a file's
// metadata (key names: docs/format.md) by parse_model_config() in model_file.h, which checks
// types, ranges and internal consistency and throws FormatError("<key>: <problem>").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pytransformer::format {

// TRANSFORMER_SEQ2SEQ: the encoder-decoder translation model; LLAMA: a decoder-only language
// model of the Llama family (docs/format.md, "Decoder-only language models").
enum class Architecture { TRANSFORMER_SEQ2SEQ, LLAMA };
enum class Activation { RELU, SWISH, GELU, GELU_TANH };
// Where rotary pair i of a head lies: HALF_SPLIT dims i and i + rotary_dim/2, INTERLEAVED 2i, 2i+1.
enum class RotaryLayout { HALF_SPLIT, INTERLEAVED };
enum class PositionLayout { HALVES, INTERLEAVED };
enum class PositionFrequencies { PAPER, TENSOR2TENSOR };
enum class SearchConvention { TRANSFORMERS, CTRANSLATE2, MARIAN };
// What a seq2seq decoder layer's first sub-layer is: masked self-attention, or Marian's SSRU
// recurrence (one state vector per hypothesis; docs/format.md).
enum class DecoderAutoregression { ATTENTION, SSRU };

struct ModelConfig {
  Architecture architecture = Architecture::TRANSFORMER_SEQ2SEQ;
  bool decoder_only() const { return architecture == Architecture::LLAMA; }

  // model.* (a LLAMA config has no encoder: encoder_*, source_vocab_size and the position and
  // LayerNorm keys stay 0 / default; its norms are RMSNorms with layer_norm_epsilon)
  int64_t d_model = 0;
  int64_t encoder_layers = 0;
  int64_t decoder_layers = 0;
  int64_t encoder_heads = 0;
  int64_t decoder_heads = 0;
  int64_t encoder_ffn_dim = 0;
  int64_t decoder_ffn_dim = 0;
  Activation activation = Activation::RELU;
  bool pre_norm = false;
  double layer_norm_epsilon = 1e-5;
  bool scale_embedding = false;
  bool embedding_norm = false;
  PositionLayout position_layout = PositionLayout::HALVES;
  PositionFrequencies position_frequencies = PositionFrequencies::PAPER;
  int64_t position_offset = 0;
  int64_t max_positions = 0;
  int64_t source_vocab_size = 0;
  int64_t target_vocab_size = 0;
  bool linear_bias = true;
  bool output_bias = false;
  DecoderAutoregression decoder_autoregression = DecoderAutoregression::ATTENTION;
  // model.* of LLAMA only
  int64_t kv_heads = 0;           // K/V heads of grouped-query attention; seq2seq: decoder_heads
  double rope_base = 10000.0;
  int64_t rotary_dim = 0;         // leading dims of each head that rotate
  RotaryLayout rotary_layout = RotaryLayout::HALF_SPLIT;
  bool qkv_bias = false;

  // tokens.*
  int64_t pad_id = 0;
  int64_t eos_id = 0;
  int64_t unk_id = 0;
  int64_t decoder_start_id = 0;
  int64_t source_eos_id = 0;
  int64_t bos_id = 0;              // LLAMA
  std::vector<int64_t> stop_ids;   // LLAMA, optional: ids besides eos_id that end generation

  // tokenizer.* (the model blobs stay in the metadata; only the flags are parsed)
  std::string tokenizer_type;  // "sentencepiece" or "none"; LLAMA: "sentencepiece" or "huggingface"
  bool add_source_eos = false;
  bool add_bos = false;        // LLAMA: a prompt starts with bos_id

  // generation.*
  int64_t beam_size = 1;
  int64_t max_length = 256;
  double length_penalty = 1.0;
  std::vector<int64_t> suppressed_ids;
  bool forced_eos = false;
  bool renormalize_logits = false;  // optional key; false when absent
  int64_t no_repeat_ngram_size = 0;  // optional key; 0 (off) when absent
  double max_length_factor = 0.0;    // optional key, marian convention; 0 (off) when absent
  double word_penalty = 0.0;         // optional key, marian convention; 0 when absent
  SearchConvention search_convention = SearchConvention::TRANSFORMERS;
};

}  // namespace pytransformer::format
