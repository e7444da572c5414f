// _core.EncoderDecoderModel: the entry points tests and tools need (encode, teacher-forced
// logits and cross-attention through the cached decode path) on any model, and _core.Model: the
// CPU Seq2SeqModel opened from a file. The classes are registered with shared_ptr holders
// (model_handle.h) so other bindings (and the CUDA module's model) can build on them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "format/model_file.h"
#include "models/seq2seq_model.h"
#include "python/model_handle.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python {
namespace {

using models::CrossAttentionRecord;
using models::EncoderDecoderModel;
using models::EncoderOutput;
using models::Seq2SeqModel;
using format::ModelConfig;
using IdBatch = std::vector<std::vector<int64_t>>;

// Narrows ids to int32, reporting an out-of-range value as the argument at fault.
std::vector<std::vector<int32_t>> to_int32(const IdBatch& batch, const char* argument) {
  std::vector<std::vector<int32_t>> result(batch.size());
  for (size_t b = 0; b < batch.size(); ++b) {
    result[b].reserve(batch[b].size());
    for (size_t t = 0; t < batch[b].size(); ++t) {
      const int64_t id = batch[b][t];
      if (id < 0 || id > INT32_MAX) {
        throw InvalidArgument(std::string(argument) + "[" + std::to_string(b) + "][" +
                              std::to_string(t) + "] = " + std::to_string(id) +
                              " is not a valid token id");
      }
      result[b].push_back(static_cast<int32_t>(id));
    }
  }
  return result;
}

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
  return d;
}

// Runs the decoder over given target inputs (teacher forcing) through start_decoding and
// decode_step: at step t the hypotheses are the sentences whose target is longer than t, in
// batch order, each extending its own hypothesis of the previous step (so sentences leaving
// the batch exercise the ancestry table). on_step(t, active, logits [n, V], record) receives
// each step's results.
template <typename OnStep>
void teacher_force(const EncoderDecoderModel& model, const IdBatch& source_ids,
                   const IdBatch& target_ids, bool record_attention, const OnStep& on_step) {
  if (source_ids.size() != target_ids.size()) {
    throw InvalidArgument("source_ids has " + std::to_string(source_ids.size()) +
                          " sentences but target_ids has " + std::to_string(target_ids.size()));
  }
  const std::vector<std::vector<int32_t>> sources = to_int32(source_ids, "source_ids");
  const std::vector<std::vector<int32_t>> targets = to_int32(target_ids, "target_ids");
  int64_t steps = 0;
  for (size_t b = 0; b < targets.size(); ++b) {
    if (targets[b].empty()) throw InvalidArgument("target_ids[" + std::to_string(b) + "] is empty");
    steps = std::max<int64_t>(steps, static_cast<int64_t>(targets[b].size()));
  }
  const EncoderOutput encoded = model.encode(sources);
  if (encoded.batch == 0) return;
  auto state = model.start_decoding(encoded, encoded.batch, steps);
  const int64_t vocab = model.config().target_vocab_size;
  std::vector<int32_t> previous_active;
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<int32_t> active, tokens, parent;
    for (int32_t b = 0; b < static_cast<int32_t>(targets.size()); ++b) {
      if (static_cast<int64_t>(targets[b].size()) <= t) continue;
      active.push_back(b);
      tokens.push_back(targets[b][t]);
      const auto found = std::find(previous_active.begin(), previous_active.end(), b);
      parent.push_back(static_cast<int32_t>(found - previous_active.begin()));
    }
    const int64_t n = static_cast<int64_t>(active.size());
    std::vector<float> logits(static_cast<size_t>(n * vocab));
    CrossAttentionRecord record;
    model.decode_step(*state, tokens.data(), active.data(), parent.data(), n, logits.data(),
                      record_attention ? &record : nullptr);
    on_step(t, active, logits, record);
    previous_active = std::move(active);
  }
}

// A decoding loop driven from Python one step at a time (tests of the KV cache and ancestry,
// debugging). Keeps the model alive.
class DecoderSession {
 public:
  DecoderSession(ModelHolder model, const IdBatch& source_ids, int64_t max_hypotheses,
                 int64_t max_steps)
      : model_(std::move(model)) {
    const std::vector<std::vector<int32_t>> sources = to_int32(source_ids, "source_ids");
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
    const std::vector<int32_t> tokens32 = to_int32({tokens}, "tokens")[0];
    const std::vector<int32_t> sentence32 = to_int32({sentence}, "sentence")[0];
    const std::vector<int32_t> parent32 = parent ? to_int32({*parent}, "parent")[0] : std::vector<int32_t>();
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
  const std::vector<std::vector<int32_t>> sources = to_int32(source_ids, "source_ids");
  EncoderOutput encoded;
  {
    py::gil_scoped_release release;
    encoded = model.encode(sources);
  }
  const int64_t d = model.config().d_model;
  py::array_t<float> hidden({encoded.batch, encoded.max_length, d});
  std::memcpy(hidden.mutable_data(), encoded.hidden.data(), sizeof(float) * encoded.hidden.size());
  return py::make_tuple(hidden, py::cast(encoded.lengths));
}

py::list teacher_forced_logits(const EncoderDecoderModel& model, const IdBatch& source_ids,
                               const IdBatch& target_ids) {
  const int64_t vocab = model.config().target_vocab_size;
  std::vector<std::vector<float>> per_sentence(target_ids.size());
  {
    py::gil_scoped_release release;
    teacher_force(model, source_ids, target_ids, false,
                  [&](int64_t, const std::vector<int32_t>& active, const std::vector<float>& logits,
                      const CrossAttentionRecord&) {
                    for (size_t i = 0; i < active.size(); ++i) {
                      std::vector<float>& out = per_sentence[active[i]];
                      out.insert(out.end(), logits.begin() + i * vocab,
                                 logits.begin() + (i + 1) * vocab);
                    }
                  });
  }
  py::list result;
  for (size_t b = 0; b < per_sentence.size(); ++b) {
    const int64_t length = static_cast<int64_t>(target_ids[b].size());
    py::array_t<float> array({length, vocab});
    std::memcpy(array.mutable_data(), per_sentence[b].data(), sizeof(float) * per_sentence[b].size());
    result.append(array);
  }
  return result;
}

py::list cross_attention(const EncoderDecoderModel& model, const IdBatch& source_ids,
                         const IdBatch& target_ids) {
  const format::ModelConfig& config = model.config();
  const int64_t layers = config.decoder_layers, heads = config.decoder_heads;
  int64_t source_length = 0;
  for (const auto& ids : source_ids) source_length = std::max<int64_t>(source_length, ids.size());
  // per_sentence[b]: [layers, heads, T_b, S_b], filled step by step.
  std::vector<std::vector<float>> per_sentence(target_ids.size());
  for (size_t b = 0; b < target_ids.size(); ++b) {
    per_sentence[b].resize(layers * heads * target_ids[b].size() * source_ids[b].size());
  }
  {
    py::gil_scoped_release release;
    teacher_force(
        model, source_ids, target_ids, true,
        [&](int64_t t, const std::vector<int32_t>& active, const std::vector<float>&,
            const CrossAttentionRecord& record) {
          const int64_t n = static_cast<int64_t>(active.size());
          for (int64_t i = 0; i < n; ++i) {
            const int32_t b = active[i];
            const int64_t target_length = static_cast<int64_t>(target_ids[b].size());
            const int64_t length = static_cast<int64_t>(source_ids[b].size());
            for (int64_t l = 0; l < layers; ++l) {
              for (int64_t h = 0; h < heads; ++h) {
                const float* from =
                    record.probabilities.data() + ((l * heads + h) * n + i) * source_length;
                float* to = per_sentence[b].data() + ((l * heads + h) * target_length + t) * length;
                std::copy(from, from + length, to);
              }
            }
          }
        });
  }
  py::list result;
  for (size_t b = 0; b < per_sentence.size(); ++b) {
    const int64_t target_length = static_cast<int64_t>(target_ids[b].size());
    const int64_t length = static_cast<int64_t>(source_ids[b].size());
    py::array_t<float> array({layers, heads, target_length, length});
    std::memcpy(array.mutable_data(), per_sentence[b].data(), sizeof(float) * per_sentence[b].size());
    result.append(array);
  }
  return result;
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
      "The CPU model, loaded from a model file (read into memory: changing the file "
      "afterwards does not affect it).")
      .def(py::init([](const std::string& path, int threads) {
             if (threads < 0) throw InvalidArgument("threads must be >= 0 (0: default)");
             py::gil_scoped_release release;
             return std::make_shared<Seq2SeqModel>(format::ModelFile::open(path), threads);
           }),
           py::arg("path"), py::arg("threads") = 0);

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
