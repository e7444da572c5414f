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
#include "python/conversions.h"
#include "python/model_handle.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python {

namespace {

using decoding::SearchOptions;

format::SearchConvention parse_convention(const std::string& name) {
  if (name == "transformers") return format::SearchConvention::TRANSFORMERS;
  if (name == "ctranslate2") return format::SearchConvention::CTRANSLATE2;
  if (name == "marian") return format::SearchConvention::MARIAN;
  throw InvalidArgument("convention must be 'transformers', 'ctranslate2' or 'marian', got '" +
                        name + "'");
}

std::string convention_name(format::SearchConvention convention) {
  switch (convention) {
    case format::SearchConvention::CTRANSLATE2: return "ctranslate2";
    case format::SearchConvention::MARIAN: return "marian";
    case format::SearchConvention::TRANSFORMERS: break;
  }
  return "transformers";
}

// The model's defaults (SearchOptions::from_config), then each keyword set as the attribute of
// that name: an unknown name is a TypeError, a value of the wrong type too (pybind11's setter).
SearchOptions options_for(const ModelHolder& model, const py::kwargs& overrides) {
  if (!model) throw InvalidArgument("model is None");
  SearchOptions options = SearchOptions::from_config(model->config());
  py::object view = py::cast(&options, py::return_value_policy::reference);
  for (const auto& [key, value] : overrides) {
    const std::string name = py::str(key);
    if (name == "target_prefix" || !py::hasattr(view, name.c_str()) || name.rfind("_", 0) == 0)
      throw py::type_error("unknown search option '" + name + "'");
    view.attr(name.c_str()) = value;
  }
  return options;
}

py::list generate(const ModelHolder& model, const IdBatch& source_ids,
                  const std::optional<SearchOptions>& given,
                  std::optional<std::vector<std::optional<std::vector<int64_t>>>> target_prefix,
                  const py::object& callback,
                  const std::optional<std::vector<std::vector<int64_t>>>& allowed_ids,
                  const std::optional<std::vector<std::vector<std::vector<std::vector<int64_t>>>>>&
                      constraints) {
  if (!model) throw InvalidArgument("model is None");
  SearchOptions options = given ? *given : SearchOptions::from_config(model->config());
  if (target_prefix) {
    for (size_t i = 0; i < target_prefix->size(); ++i) {
      const auto& prefix = (*target_prefix)[i];
      options.target_prefix.push_back(
          prefix ? token_ids(*prefix, "target_prefix[" + std::to_string(i) + "]")
                 : std::vector<int32_t>());
    }
  }
  if (allowed_ids) {
    for (size_t i = 0; i < allowed_ids->size(); ++i) {
      options.allowed_ids.push_back(
          token_ids((*allowed_ids)[i], "allowed_ids[" + std::to_string(i) + "]"));
    }
  }
  if (constraints) {
    for (size_t i = 0; i < constraints->size(); ++i) {
      std::vector<decoding::Constraint> sentence;
      for (size_t c = 0; c < (*constraints)[i].size(); ++c) {
        decoding::Constraint forms;
        for (size_t f = 0; f < (*constraints)[i][c].size(); ++f) {
          forms.push_back(token_ids((*constraints)[i][c][f], "constraints[" + std::to_string(i) +
                                                                 "][" + std::to_string(c) + "][" +
                                                                 std::to_string(f) + "]"));
        }
        sentence.push_back(std::move(forms));
      }
      options.constraints.push_back(std::move(sentence));
    }
  }
  const std::vector<std::vector<int32_t>> sources = token_id_batch(source_ids, "source_ids");

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
  py::class_<SearchOptions>(m, "SearchOptions", R"doc(How generate() searches: one typed value.

SearchOptions(model, **overrides): the model file's generation defaults (generation.*), resolved
by the core, then each keyword set as the attribute of that name (TypeError for an unknown
name or a value of the wrong type). Values are checked against the model when generate() runs
(ValueError). docs/decoding.md describes each option.)doc")
      .def(py::init(&options_for), py::arg("model"))
      .def_readwrite("beam_size", &SearchOptions::beam_size)
      .def_readwrite("n_best", &SearchOptions::n_best, "hypotheses returned, <= beam_size")
      .def_readwrite("max_length", &SearchOptions::max_length,
                     "generated tokens, not counting the decoder start token")
      .def_readwrite("min_length", &SearchOptions::min_length,
                     "EOS is suppressed before this many generated tokens")
      .def_readwrite("length_penalty", &SearchOptions::length_penalty)
      .def_readwrite("suppressed_ids", &SearchOptions::suppressed_ids,
                     "ids never generated")
      .def_readwrite("forced_eos", &SearchOptions::forced_eos,
                     "force EOS as the token that reaches max_length")
      .def_readwrite("renormalize_logits", &SearchOptions::renormalize_logits,
                     "transformers beam search: renormalise after the logits processors")
      .def_readwrite("no_repeat_ngram_size", &SearchOptions::no_repeat_ngram_size,
                     "no n-gram of this size twice in a hypothesis (transformers convention), "
                     "0: off")
      .def_readwrite("count_prefix", &SearchOptions::count_prefix,
                     "transformers beam search: the target prefix counts in the length "
                     "normalisation (a token forced as transformers' forced_bos_token_id)")
      .def_property(
          "convention", [](const SearchOptions& o) { return convention_name(o.convention); },
          [](SearchOptions& o, const std::string& name) { o.convention = parse_convention(name); },
          "'transformers', 'ctranslate2' or 'marian': whose scores and stopping rules")
      .def_readwrite("max_length_factor", &SearchOptions::max_length_factor,
                     "marian convention: at most ceil(factor * source length) tokens per "
                     "sentence, 0: off")
      .def_readwrite("word_penalty", &SearchOptions::word_penalty,
                     "marian convention: subtracted per token from a finished hypothesis' "
                     "score before the length normalisation")
      .def_readwrite("sampling", &SearchOptions::sampling,
                     "draw tokens (beam_size 1) instead of choosing the most likely")
      .def_readwrite("temperature", &SearchOptions::temperature)
      .def_readwrite("top_k", &SearchOptions::top_k, "0: no top-k filter")
      .def_readwrite("top_p", &SearchOptions::top_p, "1: no nucleus filter")
      .def_readwrite("min_p", &SearchOptions::min_p,
                     "0: no min-p filter (sampling: tokens below min_p times the best "
                     "token's probability are dropped)")
      .def_readwrite("repetition_penalty", &SearchOptions::repetition_penalty,
                     "transformers' repetition_penalty (beam_size 1), 1: off")
      .def_readwrite("seed", &SearchOptions::seed)
      .def_readwrite("word_continuations", &SearchOptions::word_continuations,
                     "with constraints: target ids that continue a word")
      .def_readwrite("whole_words", &SearchOptions::whole_words,
                     "with constraints, per sentence: no word_continuations id may follow the "
                     "last token of its constraints (a language written with spaces)")
      .def_readwrite("max_batch_tokens", &SearchOptions::max_batch_tokens,
                     "source tokens per sub-batch, 0: no limit")
      .def("__repr__", [](const SearchOptions& o) {
        return "SearchOptions(beam_size=" + std::to_string(o.beam_size) +
               ", n_best=" + std::to_string(o.n_best) +
               ", max_length=" + std::to_string(o.max_length) +
               ", min_length=" + std::to_string(o.min_length) +
               ", length_penalty=" + py::repr(py::float_(o.length_penalty)).cast<std::string>() +
               ", convention='" + convention_name(o.convention) + "'" +
               (o.sampling ? ", sampling=True" : "") + ")";
      });

  m.def("generate", &generate, py::arg("model"), py::arg("source_ids"),
        py::arg("options") = py::none(), py::kw_only(), py::arg("target_prefix") = py::none(),
        py::arg("callback") = py::none(), py::arg("allowed_ids") = py::none(),
        py::arg("constraints") = py::none(),
        R"doc(Translate token ids: one list of hypotheses (tokens, score, finished) per sentence.

options: a SearchOptions (None: the model file's generation defaults). Scores and stopping
rules follow its convention (docs/decoding.md). target_prefix: per sentence, ids the target
must start with (None or [] for none). allowed_ids: per sentence, the only target ids it may
generate (a vocabulary shortlist; EOS and its prefix always allowed): its scores are
normalised over them and the output layer computes only their union where it can.
constraints: per sentence, the constraints its translation must meet, each a list of forms
(token id sequences; one of them must appear: lexically constrained beam search; [] for
none). callback(sentence_index, token_id) is called after each
greedy/sampling step; returning False stops decoding; an exception it raises propagates.)doc");
}

}  // namespace pytransformer::python
