// parse_model_config(): the metadata keys of docs/format.md, their types, ranges and
// consistency. Every error message starts with the offending key.
#include <cmath>
#include <set>
#include <string>

#include "format/model_file.h"
#include "pytransformer/error.h"

namespace pytransformer::format {

MetadataType metadata_type(const MetadataValue& value) {
  return static_cast<MetadataType>(value.index() + 1);
}

const char* metadata_type_name(MetadataType type) {
  switch (type) {
    case MetadataType::BOOL: return "bool";
    case MetadataType::INT64: return "int64";
    case MetadataType::FLOAT64: return "float64";
    case MetadataType::STRING: return "string";
    case MetadataType::BYTES: return "bytes";
    case MetadataType::INT64_ARRAY: return "int64 array";
    case MetadataType::STRING_ARRAY: return "string array";
    case MetadataType::FLOAT64_ARRAY: return "float64 array";
  }
  return "unknown";
}

namespace {

// Upper bounds far above any real translation model; they keep size arithmetic far from
// overflow and reject absurd values early.
constexpr int64_t kMaxDModel = 1 << 16;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxFfnDim = 1 << 20;
constexpr int64_t kMaxVocabSize = 1 << 24;
constexpr int64_t kMaxPositions = 1 << 20;
constexpr int64_t kMaxBeamSize = 1024;

// Which architectures require a key (its type is checked wherever it is present).
enum class Need { OPTIONAL, ALWAYS, SEQ2SEQ, LLAMA };

struct KeySpec {
  MetadataType type;
  Need need;
};

const std::map<std::string, KeySpec>& key_specs() {
  using T = MetadataType;
  using N = Need;
  static const std::map<std::string, KeySpec> specs = {
      {"general.architecture", {T::STRING, N::ALWAYS}},
      {"general.name", {T::STRING, N::OPTIONAL}},
      {"general.source", {T::STRING, N::OPTIONAL}},
      {"general.converter", {T::STRING, N::OPTIONAL}},
      {"general.license", {T::STRING, N::OPTIONAL}},
      {"model.d_model", {T::INT64, N::ALWAYS}},
      {"model.encoder_layers", {T::INT64, N::SEQ2SEQ}},
      {"model.decoder_layers", {T::INT64, N::ALWAYS}},
      {"model.encoder_heads", {T::INT64, N::SEQ2SEQ}},
      {"model.decoder_heads", {T::INT64, N::ALWAYS}},
      {"model.encoder_ffn_dim", {T::INT64, N::SEQ2SEQ}},
      {"model.decoder_ffn_dim", {T::INT64, N::ALWAYS}},
      {"model.activation", {T::STRING, N::ALWAYS}},
      {"model.pre_norm", {T::BOOL, N::SEQ2SEQ}},
      {"model.layer_norm_epsilon", {T::FLOAT64, N::ALWAYS}},
      {"model.scale_embedding", {T::BOOL, N::SEQ2SEQ}},
      {"model.embedding_norm", {T::BOOL, N::SEQ2SEQ}},
      {"model.position_layout", {T::STRING, N::SEQ2SEQ}},
      {"model.position_frequencies", {T::STRING, N::SEQ2SEQ}},
      {"model.position_offset", {T::INT64, N::SEQ2SEQ}},
      {"model.max_positions", {T::INT64, N::ALWAYS}},
      {"model.source_vocab_size", {T::INT64, N::SEQ2SEQ}},
      {"model.target_vocab_size", {T::INT64, N::ALWAYS}},
      {"model.linear_bias", {T::BOOL, N::SEQ2SEQ}},
      {"model.output_bias", {T::BOOL, N::SEQ2SEQ}},
      {"model.decoder_autoregression", {T::STRING, N::OPTIONAL}},
      {"model.kv_heads", {T::INT64, N::LLAMA}},
      {"model.rope_base", {T::FLOAT64, N::LLAMA}},
      {"model.rotary_dim", {T::INT64, N::LLAMA}},
      {"model.rotary_layout", {T::STRING, N::LLAMA}},
      {"model.qkv_bias", {T::BOOL, N::LLAMA}},
      {"tokens.pad_id", {T::INT64, N::SEQ2SEQ}},
      {"tokens.eos_id", {T::INT64, N::ALWAYS}},
      {"tokens.unk_id", {T::INT64, N::SEQ2SEQ}},
      {"tokens.decoder_start_id", {T::INT64, N::SEQ2SEQ}},
      {"tokens.source_eos_id", {T::INT64, N::SEQ2SEQ}},
      {"tokens.bos_id", {T::INT64, N::LLAMA}},
      {"tokens.stop_ids", {T::INT64_ARRAY, N::OPTIONAL}},
      {"vocab.source", {T::STRING_ARRAY, N::SEQ2SEQ}},
      {"vocab.target", {T::STRING_ARRAY, N::ALWAYS}},
      {"tokenizer.type", {T::STRING, N::ALWAYS}},
      {"tokenizer.source_model", {T::BYTES, N::OPTIONAL}},
      {"tokenizer.target_model", {T::BYTES, N::OPTIONAL}},
      {"tokenizer.add_source_eos", {T::BOOL, N::SEQ2SEQ}},
      {"tokenizer.target_languages", {T::STRING_ARRAY, N::OPTIONAL}},
      {"tokenizer.add_bos", {T::BOOL, N::LLAMA}},
      {"tokenizer.chat_template", {T::STRING, N::OPTIONAL}},
      {"generation.beam_size", {T::INT64, N::ALWAYS}},
      {"generation.max_length", {T::INT64, N::ALWAYS}},
      {"generation.length_penalty", {T::FLOAT64, N::ALWAYS}},
      {"generation.suppressed_ids", {T::INT64_ARRAY, N::ALWAYS}},
      {"generation.forced_eos", {T::BOOL, N::ALWAYS}},
      {"generation.renormalize_logits", {T::BOOL, N::OPTIONAL}},
      {"generation.no_repeat_ngram_size", {T::INT64, N::OPTIONAL}},
      {"generation.max_length_factor", {T::FLOAT64, N::OPTIONAL}},
      {"generation.word_penalty", {T::FLOAT64, N::OPTIONAL}},
      {"generation.search_convention", {T::STRING, N::ALWAYS}},
  };
  return specs;
}

[[noreturn]] void fail(const std::string& key, const std::string& problem) {
  throw FormatError(key + ": " + problem);
}

class ConfigReader {
 public:
  explicit ConfigReader(const Metadata& metadata) : metadata_(metadata) {}

  // Checks the type of every known key that is present and the presence of the ones
  // `architecture` requires.
  void check_types(Architecture architecture) const {
    for (const auto& [key, spec] : key_specs()) {
      const auto it = metadata_.find(key);
      if (it == metadata_.end()) {
        const bool required =
            spec.need == Need::ALWAYS ||
            (spec.need == Need::SEQ2SEQ && architecture == Architecture::TRANSFORMER_SEQ2SEQ) ||
            (spec.need == Need::LLAMA && architecture == Architecture::LLAMA);
        if (required) fail(key, "missing required key");
        continue;
      }
      const MetadataType actual = metadata_type(it->second);
      if (actual != spec.type) {
        fail(key, std::string("expected ") + metadata_type_name(spec.type) + ", got " +
                      metadata_type_name(actual));
      }
    }
  }

  bool has(const std::string& key) const { return metadata_.count(key) != 0; }

  template <typename T>
  const T& get(const std::string& key) const {
    return std::get<T>(metadata_.at(key));
  }

  int64_t integer(const std::string& key, int64_t min, int64_t max) const {
    const int64_t value = get<int64_t>(key);
    if (value < min || value > max) {
      fail(key, std::to_string(value) + " is outside " + std::to_string(min) + ".." +
                    std::to_string(max));
    }
    return value;
  }

  double finite(const std::string& key) const {
    const double value = get<double>(key);
    if (!std::isfinite(value)) fail(key, "must be a finite number");
    return value;
  }

  template <typename Enum>
  Enum choice(const std::string& key, const std::map<std::string, Enum>& choices) const {
    const std::string& value = get<std::string>(key);
    const auto it = choices.find(value);
    if (it == choices.end()) {
      std::string known;
      for (const auto& [name, unused] : choices) known += (known.empty() ? "" : ", ") + name;
      fail(key, "unknown value '" + value + "' (expected one of: " + known + ")");
    }
    return it->second;
  }

 private:
  const Metadata& metadata_;
};

void check_id(const std::string& key, int64_t id, int64_t vocab_size, const char* vocab_name) {
  if (id < 0 || id >= vocab_size) {
    fail(key, std::to_string(id) + " is outside the " + vocab_name + " vocabulary (size " +
                  std::to_string(vocab_size) + ")");
  }
}

void check_heads(const std::string& key, int64_t heads, int64_t d_model) {
  if (d_model % heads != 0) {
    fail(key, std::to_string(heads) + " does not divide model.d_model " + std::to_string(d_model));
  }
}

}  // namespace

const std::map<std::string, MetadataType>& known_metadata_types() {
  static const std::map<std::string, MetadataType> types = [] {
    std::map<std::string, MetadataType> result;
    for (const auto& [key, spec] : key_specs()) result.emplace(key, spec.type);
    return result;
  }();
  return types;
}

namespace {

Architecture parse_architecture(const Metadata& metadata) {
  const std::string key = "general.architecture";
  const auto it = metadata.find(key);
  if (it == metadata.end()) fail(key, "missing required key");
  const std::string* name = std::get_if<std::string>(&it->second);
  if (name == nullptr) {
    fail(key, std::string("expected string, got ") + metadata_type_name(metadata_type(it->second)));
  }
  if (*name == "transformer-seq2seq") return Architecture::TRANSFORMER_SEQ2SEQ;
  if (*name == "llama") return Architecture::LLAMA;
  fail(key, "unsupported architecture '" + *name + "' (expected transformer-seq2seq or llama)");
}

void check_vocab(const ConfigReader& reader, const std::string& key, int64_t size,
                 const char* size_key) {
  const auto& pieces = reader.get<std::vector<std::string>>(key);
  if (static_cast<int64_t>(pieces.size()) != size) {
    fail(key, "has " + std::to_string(pieces.size()) + " pieces but " + size_key + " is " +
                  std::to_string(size));
  }
}

// The keys of the encoder-decoder translation model beyond the shared ones.
// The encoder's sizes, read before the decoder's (a file wrong in both reports the encoder).
void parse_encoder_sizes(const ConfigReader& reader, ModelConfig& config) {
  config.encoder_layers = reader.integer("model.encoder_layers", 1, kMaxLayers);
  config.encoder_heads = reader.integer("model.encoder_heads", 1, config.d_model);
  check_heads("model.encoder_heads", config.encoder_heads, config.d_model);
  config.encoder_ffn_dim = reader.integer("model.encoder_ffn_dim", 1, kMaxFfnDim);
}

void parse_seq2seq(const ConfigReader& reader, ModelConfig& config) {
  config.kv_heads = config.decoder_heads;
  config.pre_norm = reader.get<bool>("model.pre_norm");
  config.scale_embedding = reader.get<bool>("model.scale_embedding");
  config.embedding_norm = reader.get<bool>("model.embedding_norm");
  config.position_layout = reader.choice<PositionLayout>(
      "model.position_layout",
      {{"halves", PositionLayout::HALVES}, {"interleaved", PositionLayout::INTERLEAVED}});
  config.position_frequencies = reader.choice<PositionFrequencies>(
      "model.position_frequencies", {{"paper", PositionFrequencies::PAPER},
                                     {"tensor2tensor", PositionFrequencies::TENSOR2TENSOR}});
  // Sinusoidal encodings pair a sine and a cosine column; tensor2tensor frequencies divide
  // by d/2 - 1, which must not be zero.
  if (config.d_model % 2 != 0) fail("model.d_model", "must be even (sinusoidal positions)");
  if (config.position_frequencies == PositionFrequencies::TENSOR2TENSOR && config.d_model < 4) {
    fail("model.d_model", "must be at least 4 with tensor2tensor position frequencies");
  }
  config.position_offset = reader.integer("model.position_offset", 0, kMaxPositions);
  config.source_vocab_size = reader.integer("model.source_vocab_size", 1, kMaxVocabSize);
  config.linear_bias = reader.get<bool>("model.linear_bias");
  config.output_bias = reader.get<bool>("model.output_bias");
  if (reader.has("model.decoder_autoregression")) {
    config.decoder_autoregression = reader.choice<DecoderAutoregression>(
        "model.decoder_autoregression",
        {{"attention", DecoderAutoregression::ATTENTION}, {"ssru", DecoderAutoregression::SSRU}});
  }
  check_vocab(reader, "vocab.source", config.source_vocab_size, "model.source_vocab_size");

  const int64_t source_size = config.source_vocab_size;
  const int64_t target_size = config.target_vocab_size;
  config.pad_id = reader.get<int64_t>("tokens.pad_id");
  config.unk_id = reader.get<int64_t>("tokens.unk_id");
  config.decoder_start_id = reader.get<int64_t>("tokens.decoder_start_id");
  config.source_eos_id = reader.get<int64_t>("tokens.source_eos_id");
  check_id("tokens.pad_id", config.pad_id, target_size, "target");
  // Unknown pieces map to unk on both sides.
  check_id("tokens.unk_id", config.unk_id, source_size, "source");
  check_id("tokens.unk_id", config.unk_id, target_size, "target");
  check_id("tokens.decoder_start_id", config.decoder_start_id, target_size, "target");
  check_id("tokens.source_eos_id", config.source_eos_id, source_size, "source");

  config.tokenizer_type = reader.get<std::string>("tokenizer.type");
  if (config.tokenizer_type == "sentencepiece") {
    for (const char* key : {"tokenizer.source_model", "tokenizer.target_model"}) {
      if (!reader.has(key)) fail(key, "required when tokenizer.type is sentencepiece");
      if (reader.get<Bytes>(key).data.empty()) fail(key, "is empty");
    }
  } else if (config.tokenizer_type != "none") {
    fail("tokenizer.type", "unknown value '" + config.tokenizer_type +
                               "' (expected one of: none, sentencepiece)");
  }
  config.add_source_eos = reader.get<bool>("tokenizer.add_source_eos");
  if (reader.has("tokenizer.target_languages")) {
    const auto& source_pieces = reader.get<std::vector<std::string>>("vocab.source");
    const std::set<std::string> known(source_pieces.begin(), source_pieces.end());
    for (const auto& language : reader.get<std::vector<std::string>>("tokenizer.target_languages")) {
      if (known.count(language) == 0) {
        fail("tokenizer.target_languages", "'" + language + "' is not in vocab.source");
      }
    }
  }
}

// The keys of a decoder-only Llama-family model beyond the shared ones.
void parse_llama(const ConfigReader& reader, ModelConfig& config) {
  if (config.activation != Activation::SWISH && config.activation != Activation::GELU_TANH) {
    fail("model.activation", "must be swish (SwiGLU) or gelu_tanh (GeGLU) for llama");
  }
  config.kv_heads = reader.integer("model.kv_heads", 1, config.decoder_heads);
  if (config.decoder_heads % config.kv_heads != 0) {
    fail("model.kv_heads", std::to_string(config.kv_heads) + " does not divide model.decoder_heads " +
                               std::to_string(config.decoder_heads));
  }
  config.rope_base = reader.finite("model.rope_base");
  if (!(config.rope_base > 1.0)) fail("model.rope_base", "must be greater than 1");
  const int64_t head_dim = config.d_model / config.decoder_heads;
  config.rotary_dim = reader.integer("model.rotary_dim", 2, head_dim);
  if (config.rotary_dim % 2 != 0) fail("model.rotary_dim", "must be even (rotated pairs)");
  config.rotary_layout = reader.choice<RotaryLayout>(
      "model.rotary_layout",
      {{"half_split", RotaryLayout::HALF_SPLIT}, {"interleaved", RotaryLayout::INTERLEAVED}});
  config.qkv_bias = reader.get<bool>("model.qkv_bias");
  config.linear_bias = false;
  config.pre_norm = true;

  const int64_t vocab = config.target_vocab_size;
  config.bos_id = reader.get<int64_t>("tokens.bos_id");
  check_id("tokens.bos_id", config.bos_id, vocab, "target");
  // Without a pad or unknown piece, ids that no tokenizer produces stand in (never generated).
  config.pad_id = reader.has("tokens.pad_id") ? reader.get<int64_t>("tokens.pad_id") : config.eos_id;
  check_id("tokens.pad_id", config.pad_id, vocab, "target");
  config.unk_id = reader.has("tokens.unk_id") ? reader.get<int64_t>("tokens.unk_id") : config.eos_id;
  check_id("tokens.unk_id", config.unk_id, vocab, "target");
  config.decoder_start_id = config.bos_id;
  if (reader.has("tokens.stop_ids")) {
    config.stop_ids = reader.get<std::vector<int64_t>>("tokens.stop_ids");
    for (const int64_t id : config.stop_ids) check_id("tokens.stop_ids", id, vocab, "target");
  }

  config.tokenizer_type = reader.get<std::string>("tokenizer.type");
  if (config.tokenizer_type != "sentencepiece" && config.tokenizer_type != "huggingface") {
    fail("tokenizer.type", "unknown value '" + config.tokenizer_type +
                               "' (expected one of: sentencepiece, huggingface)");
  }
  const char* model_key = "tokenizer.target_model";
  if (!reader.has(model_key)) fail(model_key, "required for a llama model");
  if (reader.get<Bytes>(model_key).data.empty()) fail(model_key, "is empty");
  config.add_bos = reader.get<bool>("tokenizer.add_bos");
}

}  // namespace

ModelConfig parse_model_config(const Metadata& metadata) {
  ConfigReader reader(metadata);
  ModelConfig config;
  config.architecture = parse_architecture(metadata);
  reader.check_types(config.architecture);

  // The keys every architecture shares.
  config.d_model = reader.integer("model.d_model", 2, kMaxDModel);
  if (!config.decoder_only()) parse_encoder_sizes(reader, config);
  config.decoder_layers = reader.integer("model.decoder_layers", 1, kMaxLayers);
  config.decoder_heads = reader.integer("model.decoder_heads", 1, config.d_model);
  check_heads("model.decoder_heads", config.decoder_heads, config.d_model);
  config.decoder_ffn_dim = reader.integer("model.decoder_ffn_dim", 1, kMaxFfnDim);
  config.activation = reader.choice<Activation>(
      "model.activation", {{"relu", Activation::RELU},
                           {"swish", Activation::SWISH},
                           {"gelu", Activation::GELU},
                           {"gelu_tanh", Activation::GELU_TANH}});
  config.layer_norm_epsilon = reader.finite("model.layer_norm_epsilon");
  if (!(config.layer_norm_epsilon > 0.0 && config.layer_norm_epsilon <= 1.0)) {
    fail("model.layer_norm_epsilon", "must be in (0, 1]");
  }
  config.max_positions = reader.integer("model.max_positions", 1, kMaxPositions);
  config.target_vocab_size = reader.integer("model.target_vocab_size", 1, kMaxVocabSize);
  check_vocab(reader, "vocab.target", config.target_vocab_size, "model.target_vocab_size");
  config.eos_id = reader.get<int64_t>("tokens.eos_id");
  check_id("tokens.eos_id", config.eos_id, config.target_vocab_size, "target");

  if (config.decoder_only()) {
    parse_llama(reader, config);
  } else {
    parse_seq2seq(reader, config);
  }

  const int64_t target_size = config.target_vocab_size;
  config.beam_size = reader.integer("generation.beam_size", 1, kMaxBeamSize);
  config.max_length = reader.integer("generation.max_length", 1, kMaxPositions);
  config.length_penalty = reader.finite("generation.length_penalty");
  config.suppressed_ids = reader.get<std::vector<int64_t>>("generation.suppressed_ids");
  for (const int64_t id : config.suppressed_ids) {
    check_id("generation.suppressed_ids", id, target_size, "target");
  }
  config.forced_eos = reader.get<bool>("generation.forced_eos");
  config.renormalize_logits = reader.has("generation.renormalize_logits") &&
                              reader.get<bool>("generation.renormalize_logits");
  config.no_repeat_ngram_size = reader.has("generation.no_repeat_ngram_size")
                                     ? reader.integer("generation.no_repeat_ngram_size", 0,
                                                      kMaxPositions)
                                     : 0;
  config.search_convention = reader.choice<SearchConvention>(
      "generation.search_convention",
      {{"transformers", SearchConvention::TRANSFORMERS},
       {"ctranslate2", SearchConvention::CTRANSLATE2},
       {"marian", SearchConvention::MARIAN}});
  const bool marian = config.search_convention == SearchConvention::MARIAN;
  if (reader.has("generation.max_length_factor")) {
    config.max_length_factor = reader.finite("generation.max_length_factor");
    if (config.max_length_factor < 0.0) fail("generation.max_length_factor", "must be >= 0");
    if (config.max_length_factor != 0.0 && !marian)
      fail("generation.max_length_factor", "is only defined for the marian convention");
  }
  if (reader.has("generation.word_penalty")) {
    config.word_penalty = reader.finite("generation.word_penalty");
    if (config.word_penalty != 0.0 && !marian)
      fail("generation.word_penalty", "is only defined for the marian convention");
  }
  return config;
}

}  // namespace pytransformer::format
