// The model's hyper-parameters, special ids and generation defaults, parsed from a file's
// metadata (key names: docs/format.md) by parse_model_config() in model_file.h, which checks
// types, ranges and internal consistency and throws FormatError("<key>: <problem>").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pytransformer::format {

enum class Activation { RELU, SWISH, GELU, GELU_TANH };
enum class PositionLayout { HALVES, INTERLEAVED };
enum class PositionFrequencies { PAPER, TENSOR2TENSOR };
enum class SearchConvention { TRANSFORMERS, CTRANSLATE2 };

struct ModelConfig {
  // model.*
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

  // tokens.*
  int64_t pad_id = 0;
  int64_t eos_id = 0;
  int64_t unk_id = 0;
  int64_t decoder_start_id = 0;
  int64_t source_eos_id = 0;

  // tokenizer.* (the model blobs stay in the metadata; only the flags are parsed)
  std::string tokenizer_type;  // "sentencepiece" or "none"
  bool add_source_eos = false;

  // generation.*
  int64_t beam_size = 1;
  int64_t max_length = 256;
  double length_penalty = 1.0;
  std::vector<int64_t> suppressed_ids;
  bool forced_eos = false;
  bool renormalize_logits = false;  // optional key; false when absent
  int64_t no_repeat_ngram_size = 0;  // optional key; 0 (off) when absent
  SearchConvention search_convention = SearchConvention::TRANSFORMERS;
};

}  // namespace pytransformer::format
