// _core.generate: decode a batch of source id sequences with a _core.Model (csrc/decoding/).
// The GIL is released while decoding; it is taken back to call the Python token callback and,
// before every decoder step, to let Ctrl-C (or any pending signal handler's exception) stop the
// decoding. A Python exception raised there propagates out of generate() unchanged.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "decoding/search.h"
#include "python/model_handle.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python {

namespace {

using decoding::SearchOptions;

std::vector<int32_t> to_ids(const std::vector<int64_t>& values, const std::string& what) {
  std::vector<int32_t> ids;
  ids.reserve(values.size());
  for (int64_t value : values) {
    if (value < 0 || value > std::numeric_limits<int32_t>::max())
      throw InvalidArgument(what + ": id " + std::to_string(value) + " is not a valid token id");
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

format::SearchConvention parse_convention(const std::string& name) {
  if (name == "transformers") return format::SearchConvention::TRANSFORMERS;
  if (name == "ctranslate2") return format::SearchConvention::CTRANSLATE2;
  throw InvalidArgument("convention must be 'transformers' or 'ctranslate2', got '" + name + "'");
}

py::list generate(const ModelHolder& model, const std::vector<std::vector<int64_t>>& source_ids,
                  std::optional<int64_t> beam_size, int64_t n_best,
                  std::optional<int64_t> max_length, std::optional<int64_t> min_length,
                  std::optional<double> length_penalty,
                  std::optional<std::vector<int64_t>> suppressed_ids,
                  std::optional<bool> forced_eos, std::optional<bool> renormalize_logits,
                  std::optional<std::string> convention,
                  bool sampling, double temperature, int64_t top_k, double top_p, uint64_t seed,
                  std::optional<std::vector<std::optional<std::vector<int64_t>>>> target_prefix,
                  int64_t max_batch_tokens, const py::object& callback) {
  if (!model) throw InvalidArgument("model is None");
  SearchOptions options = SearchOptions::from_config(model->config());
  if (beam_size) options.beam_size = *beam_size;
  options.n_best = n_best;
  if (max_length) options.max_length = *max_length;
  if (min_length) options.min_length = *min_length;
  if (length_penalty) options.length_penalty = *length_penalty;
  if (suppressed_ids) options.suppressed_ids = *suppressed_ids;
  if (forced_eos) options.forced_eos = *forced_eos;
  if (renormalize_logits) options.renormalize_logits = *renormalize_logits;
  if (convention) options.convention = parse_convention(*convention);
  options.sampling = sampling;
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  options.seed = seed;
  options.max_batch_tokens = max_batch_tokens;
  if (target_prefix) {
    for (size_t i = 0; i < target_prefix->size(); ++i) {
      const auto& prefix = (*target_prefix)[i];
      options.target_prefix.push_back(
          prefix ? to_ids(*prefix, "target_prefix[" + std::to_string(i) + "]")
                 : std::vector<int32_t>());
    }
  }
  std::vector<std::vector<int32_t>> sources;
  sources.reserve(source_ids.size());
  for (size_t i = 0; i < source_ids.size(); ++i)
    sources.push_back(to_ids(source_ids[i], "source_ids[" + std::to_string(i) + "]"));

  if (!callback.is_none() && !PyCallable_Check(callback.ptr()))
    throw py::type_error("callback must be callable or None");
  decoding::TokenCallback on_token;
  if (!callback.is_none()) {
    on_token = [&callback](int64_t sentence, int32_t token) {
      py::gil_scoped_acquire gil;
      const py::object keep_going = callback(sentence, token);
      if (keep_going.is_none()) return true;
      const int truth = PyObject_IsTrue(keep_going.ptr());
      if (truth < 0) throw py::error_already_set();
      return truth != 0;
    };
  }
  const std::function<void()> check_signals = [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };

  std::vector<decoding::SentenceResult> results;
  {
    py::gil_scoped_release release;
    results = decoding::generate(*model, sources, options, on_token, check_signals);
  }

  py::list output;
  for (const auto& result : results) {
    py::list hypotheses;
    for (const auto& hypothesis : result.hypotheses)
      hypotheses.append(py::make_tuple(py::cast(hypothesis.tokens), hypothesis.score,
                                       hypothesis.finished));
    output.append(std::move(hypotheses));
  }
  return output;
}

}  // namespace

void bind_decoding(py::module_& m) {
  m.def("generate", &generate, py::arg("model"), py::arg("source_ids"), py::kw_only(),
        py::arg("beam_size") = py::none(), py::arg("n_best") = 1,
        py::arg("max_length") = py::none(), py::arg("min_length") = py::none(),
        py::arg("length_penalty") = py::none(), py::arg("suppressed_ids") = py::none(),
        py::arg("forced_eos") = py::none(), py::arg("renormalize_logits") = py::none(),
        py::arg("convention") = py::none(),
        py::arg("sampling") = false, py::arg("temperature") = 1.0, py::arg("top_k") = 0,
        py::arg("top_p") = 1.0, py::arg("seed") = 0, py::arg("target_prefix") = py::none(),
        py::arg("max_batch_tokens") = 0, py::arg("callback") = py::none(),
        R"doc(Translate token ids: one list of hypotheses (tokens, score, finished) per sentence.

Options left at None take the model file's generation defaults (generation.*). Scores and
stopping rules follow the convention ('transformers' or 'ctranslate2'; docs/decoding.md).
callback(sentence_index, token_id) is called after each greedy/sampling step; returning
False stops decoding; an exception it raises propagates.)doc");
}

}  // namespace pytransformer::python
