// _core.EncoderDecoderModel: the entry points tests and tools need (encode, teacher-forced
// logits and cross-attention through the cached decode path, decoding/teacher_forcing.h) on any
// model, and _core.Model: the
// CPU Seq2SeqModel opened from a file. The classes are registered with shared_ptr holders
// (model_handle.h) so other bindings (and the CUDA module's model) can build on them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "decoding/teacher_forcing.h"
#include "format/model_file.h"
#include "models/llama_model.h"
#include "models/seq2seq_model.h"
#include "python/conversions.h"
#include "python/model_handle.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python {
namespace {

using models::CrossAttentionRecord;
using models::EncoderDecoderModel;
using models::EncoderOutput;
using models::LlamaModel;
using models::Seq2SeqModel;
using format::ModelConfig;

const char* activation_name(format::Activation value) {
  switch (value) {
    case format::Activation::RELU: return "relu";
    case format::Activation::SWISH: return "swish";
    case format::Activation::GELU: return "gelu";
    case format::Activation::GELU_TANH: return "gelu_tanh";
  }
  return "unknown";
}

py::dict config_dict(const format::ModelConfig& c) {
  py::dict d;
  d["architecture"] = c.decoder_only() ? "llama" : "transformer-seq2seq";
  d["d_model"] = c.d_model;
  d["encoder_layers"] = c.encoder_layers;
  d["decoder_layers"] = c.decoder_layers;
  d["encoder_heads"] = c.encoder_heads;
  d["decoder_heads"] = c.decoder_heads;
  d["encoder_ffn_dim"] = c.encoder_ffn_dim;
  d["decoder_ffn_dim"] = c.decoder_ffn_dim;
  d["activation"] = activation_name(c.activation);
  d["pre_norm"] = c.pre_norm;
  d["layer_norm_epsilon"] = c.layer_norm_epsilon;
  d["scale_embedding"] = c.scale_embedding;
  d["embedding_norm"] = c.embedding_norm;
  d["position_layout"] = c.position_layout == format::PositionLayout::HALVES ? "halves" : "interleaved";
  d["position_frequencies"] =
      c.position_frequencies == format::PositionFrequencies::PAPER ? "paper" : "tensor2tensor";
  d["position_offset"] = c.position_offset;
  d["max_positions"] = c.max_positions;
  d["source_vocab_size"] = c.source_vocab_size;
  d["target_vocab_size"] = c.target_vocab_size;
  d["linear_bias"] = c.linear_bias;
  d["output_bias"] = c.output_bias;
  d["pad_id"] = c.pad_id;
  d["eos_id"] = c.eos_id;
  d["unk_id"] = c.unk_id;
  d["decoder_start_id"] = c.decoder_start_id;
  d["source_eos_id"] = c.source_eos_id;
  if (c.decoder_only()) {
    d["kv_heads"] = c.kv_heads;
    d["rope_base"] = c.rope_base;
    d["rotary_dim"] = c.rotary_dim;
    d["rotary_layout"] = c.rotary_layout == format::RotaryLayout::HALF_SPLIT ? "half_split" : "interleaved";
    d["qkv_bias"] = c.qkv_bias;
    d["bos_id"] = c.bos_id;
    d["stop_ids"] = c.stop_ids;
    d["add_bos"] = c.add_bos;
  }
  return d;
}

// A decoding loop driven from Python one step at a time (tests of the KV cache and ancestry,
// debugging). Keeps the model alive.
class DecoderSession {
 public:
  DecoderSession(ModelHolder model, const IdBatch& source_ids, int64_t max_hypotheses,
                 int64_t max_steps)
      : model_(std::move(model)) {
    const std::vector<std::vector<int32_t>> sources = token_id_batch(source_ids, "source_ids");
    if (sources.empty()) throw InvalidArgument("source_ids is empty");
    py::gil_scoped_release release;
    encoded_ = model_->encode(sources);
    state_ = model_->start_decoding(encoded_, max_hypotheses, max_steps);
  }

  int64_t step_count() const { return state_->step(); }

  // Returns logits [n, V], and with return_attention the cross-attention probabilities
  // [layers, heads, n, source max_length] as well.
  py::object step(const std::vector<int64_t>& tokens, const std::vector<int64_t>& sentence,
                  const std::optional<std::vector<int64_t>>& parent, bool return_attention) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (static_cast<int64_t>(sentence.size()) != n || (parent && static_cast<int64_t>(parent->size()) != n)) {
      throw InvalidArgument("tokens, sentence and parent must have the same length");
    }
    if (!parent && state_->step() > 0) throw InvalidArgument("parent is required after step 0");
    const std::vector<int32_t> tokens32 = token_ids(tokens, "tokens");
    const std::vector<int32_t> sentence32 = token_ids(sentence, "sentence");
    const std::vector<int32_t> parent32 = parent ? token_ids(*parent, "parent") : std::vector<int32_t>();
    const ModelConfig& config = model_->config();
    py::array_t<float> logits({n, config.target_vocab_size});
    float* logits_data = logits.mutable_data();
    CrossAttentionRecord record;
    {
      py::gil_scoped_release release;
      model_->decode_step(*state_, tokens32.data(), sentence32.data(),
                          parent ? parent32.data() : nullptr, n, logits_data,
                          return_attention ? &record : nullptr);
    }
    if (!return_attention) return std::move(logits);
    py::array_t<float> attention(
        {config.decoder_layers, config.decoder_heads, n, encoded_.max_length});
    std::memcpy(attention.mutable_data(), record.probabilities.data(),
                sizeof(float) * record.probabilities.size());
    return py::make_tuple(logits, attention);
  }

 private:
  ModelHolder model_;
  EncoderOutput encoded_;
  std::unique_ptr<models::DecoderState> state_;
};

py::tuple encode(const EncoderDecoderModel& model, const IdBatch& source_ids) {
  if (model.config().decoder_only()) {
    throw InvalidArgument("encode: a language model has no encoder output (its prompt pass "
                          "feeds the cache: start_decoding, generate)");
  }
  const std::vector<std::vector<int32_t>> sources = token_id_batch(source_ids, "source_ids");
  EncoderOutput encoded;
  {
    py::gil_scoped_release release;
    encoded = model.encode(sources);
  }
  const int64_t d = model.config().d_model;
  py::array_t<float> hidden({encoded.batch, encoded.max_length, d});
  encoded.hidden.allocator().copy_to_host(
      encoded.hidden.data(), sizeof(float) * static_cast<size_t>(encoded.hidden.numel()),
      hidden.mutable_data());
  return py::make_tuple(hidden, py::cast(encoded.lengths));
}

// Each sentence's rows as an array of `shape`.
py::list arrays(const std::vector<std::vector<float>>& per_sentence,
                const std::function<std::vector<int64_t>(size_t)>& shape) {
  py::list result;
  for (size_t b = 0; b < per_sentence.size(); ++b) {
    py::array_t<float> array(shape(b));
    std::memcpy(array.mutable_data(), per_sentence[b].data(), sizeof(float) * per_sentence[b].size());
    result.append(array);
  }
  return result;
}

py::list teacher_forced_logits(const EncoderDecoderModel& model, const IdBatch& source_ids,
                               const IdBatch& target_ids) {
  const auto sources = token_id_batch(source_ids, "source_ids");
  const auto targets = token_id_batch(target_ids, "target_ids");
  std::vector<std::vector<float>> per_sentence;
  {
    py::gil_scoped_release release;
    per_sentence = decoding::teacher_forced_logits(model, sources, targets);
  }
  const int64_t vocab = model.config().target_vocab_size;
  return arrays(per_sentence, [&](size_t b) {
    return std::vector<int64_t>{static_cast<int64_t>(targets[b].size()), vocab};
  });
}

py::list cross_attention(const EncoderDecoderModel& model, const IdBatch& source_ids,
                         const IdBatch& target_ids) {
  const auto sources = token_id_batch(source_ids, "source_ids");
  const auto targets = token_id_batch(target_ids, "target_ids");
  std::vector<std::vector<float>> per_sentence;
  {
    py::gil_scoped_release release;
    per_sentence = decoding::teacher_forced_cross_attention(model, sources, targets);
  }
  const ModelConfig& config = model.config();
  return arrays(per_sentence, [&](size_t b) {
    return std::vector<int64_t>{config.decoder_layers, config.decoder_heads,
                                static_cast<int64_t>(targets[b].size()),
                                static_cast<int64_t>(sources[b].size())};
  });
}

}  // namespace

void bind_model(py::module_& m) {
  ModelClass(m, "EncoderDecoderModel",
             "An encoder-decoder Transformer (the CPU Model or the CUDA backend's model).")
      .def_property_readonly("path",
                             [](const EncoderDecoderModel& model) { return model.file().path(); })
      .def_property_readonly(
          "config", [](const EncoderDecoderModel& model) { return config_dict(model.config()); })
      .def_property_readonly(
          "file",
          [](const ModelHolder& model) {
            // Shares the model's ownership: the ModelFile stays valid while either is held.
            return std::shared_ptr<format::ModelFile>(
                model, const_cast<format::ModelFile*>(&model->file()));
          },
          "The ModelFile the model was loaded from, as read then (its metadata and tensor "
          "directory; the file is not opened again).")
      .def("encode", &encode, py::arg("source_ids"),
           "Encoder output [batch, max_length, d_model] (padding rows zero) and the lengths.")
      .def("teacher_forced_logits", &teacher_forced_logits, py::arg("source_ids"),
           py::arg("target_ids"),
           "Logits [T_i, target_vocab] for each sentence, the decoder reading target_ids (its "
           "inputs, starting with the decoder start id) step by step through the KV cache.")
      .def("cross_attention", &cross_attention, py::arg("source_ids"), py::arg("target_ids"),
           "Cross-attention probabilities [layers, heads, T_i, S_i] for each sentence.")
      .def(
          "start_decoding",
          [](const ModelHolder& model, const IdBatch& source_ids, int64_t max_hypotheses,
             int64_t max_steps) {
            return std::make_unique<DecoderSession>(model, source_ids, max_hypotheses, max_steps);
          },
          py::arg("source_ids"), py::arg("max_hypotheses"), py::arg("max_steps"),
          "Encodes the sources and starts a step-by-step decoding loop over them.");

  py::class_<Seq2SeqModel, EncoderDecoderModel, std::shared_ptr<Seq2SeqModel>>(
      m, "Model",
      "The model, loaded from a model file (read into memory: changing the file afterwards "
      "does not affect it): on the CPU when made here, on a GPU when made by the CUDA "
      "backend's _cuda.load_model.")
      .def(py::init([](const std::string& path, int threads) {
             if (threads < 0) throw InvalidArgument("threads must be >= 0 (0: default)");
             py::gil_scoped_release release;
             return std::make_shared<Seq2SeqModel>(format::ModelFile::open(path), threads);
           }),
           py::arg("path"), py::arg("threads") = 0)
      .def_property_readonly(
          "device", [](const Seq2SeqModel& model) { return model.device().name(); },
          "Where the model runs: \"cpu\", or \"cuda:N\" for a model of the CUDA backend "
          "(_cuda.load_model).")
      .def_property_readonly(
          "device_description", [](const Seq2SeqModel& model) { return model.device().description(); },
          "The device's kernels: \"avx512_vnni kernels, 2 threads\", \"NVIDIA H200 (sm_90, "
          "140 GiB), exact GEMM\", ...");

  py::class_<LlamaModel, EncoderDecoderModel, std::shared_ptr<LlamaModel>>(
      m, "LanguageModel",
      "A decoder-only language model (general.architecture llama), loaded from a model file on "
      "the CPU. It offers the EncoderDecoderModel entry points with prompts as the sources: "
      "encode() is the prompt pass (every prompt token but the last), the last token is the "
      "first decoder input, and generate() continues each prompt.")
      .def(py::init([](const std::string& path, int threads) {
             if (threads < 0) throw InvalidArgument("threads must be >= 0 (0: default)");
             py::gil_scoped_release release;
             return std::make_shared<LlamaModel>(format::ModelFile::open(path), threads);
           }),
           py::arg("path"), py::arg("threads") = 0)
      .def_property_readonly(
          "device", [](const LlamaModel& model) { return model.device().name(); })
      .def_property_readonly(
          "device_description", [](const LlamaModel& model) { return model.device().description(); });

  py::class_<DecoderSession>(m, "DecoderSession",
                             "One decoding loop over the KV cache (Model.start_decoding).")
      .def_property_readonly("step_count", &DecoderSession::step_count)
      .def("step", &DecoderSession::step, py::arg("tokens"), py::arg("sentence"),
           py::arg("parent") = py::none(), py::arg("return_attention") = false,
           "One decoder step: tokens[n], sentence[n] (source index), parent[n] (index among the "
           "previous step's hypotheses; omitted at step 0). Returns logits [n, target_vocab] "
           "(and the cross-attention [layers, heads, n, source_length] with return_attention).");
}

}  // namespace pytransformer::python
