// generate(): option checks, batching (sort by length, split by max_batch_tokens), dispatch to
// a strategy per sub-batch, results back in input order.
#include "decoding/search.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "decoding/strategies.h"
#include "pytransformer/error.h"

namespace pytransformer::decoding {

namespace {

void require(bool condition, const std::string& message) {
  if (!condition) throw InvalidArgument(message);
}

// A per-sentence option (allowed_ids, target_prefix): empty, or one list of target ids per
// sentence, each id in the target vocabulary.
void require_target_id_lists(const std::vector<std::vector<int32_t>>& lists, const std::string& name,
                             const format::ModelConfig& config, size_t n_sentences) {
  if (lists.empty()) return;
  require(lists.size() == n_sentences, name + " has " + std::to_string(lists.size()) +
                                           " entries for " + std::to_string(n_sentences) +
                                           " sentences");
  for (const auto& ids : lists) {
    for (int32_t id : ids)
      require(id >= 0 && id < config.target_vocab_size,
              name + ": id " + std::to_string(id) + " is outside the target vocabulary (size " +
                  std::to_string(config.target_vocab_size) + ")");
  }
}

void validate(const SearchOptions& options, const format::ModelConfig& config,
              size_t n_sentences, bool has_callback) {
  require(options.beam_size >= 1,
          "beam_size must be >= 1, got " + std::to_string(options.beam_size));
  require(options.n_best >= 1, "n_best must be >= 1, got " + std::to_string(options.n_best));
  require(options.max_length >= 1,
          "max_length must be >= 1, got " + std::to_string(options.max_length));
  require(options.max_length <= config.max_positions,
          "max_length " + std::to_string(options.max_length) +
              " exceeds the model's max_positions " + std::to_string(config.max_positions));
  require(options.min_length >= 0,
          "min_length must be >= 0, got " + std::to_string(options.min_length));
  require(options.min_length <= options.max_length,
          "min_length " + std::to_string(options.min_length) + " exceeds max_length " +
              std::to_string(options.max_length));
  require(std::isfinite(options.length_penalty), "length_penalty must be finite");
  for (int64_t id : options.suppressed_ids)
    require(id >= 0 && id < config.target_vocab_size,
            "suppressed_ids: id " + std::to_string(id) + " is outside the target vocabulary (size " +
                std::to_string(config.target_vocab_size) + ")");
  require(options.no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be >= 0, got " +
                                                 std::to_string(options.no_repeat_ngram_size));

  require(std::isfinite(options.repetition_penalty) && options.repetition_penalty > 0.0,
          "repetition_penalty must be > 0, got " + std::to_string(options.repetition_penalty));
  const bool marian = options.convention == format::SearchConvention::MARIAN;
  require(std::isfinite(options.max_length_factor) && options.max_length_factor >= 0.0,
          "max_length_factor must be >= 0, got " + std::to_string(options.max_length_factor));
  require(options.max_length_factor == 0.0 || marian,
          "max_length_factor is only defined for the marian convention");
  require(std::isfinite(options.word_penalty), "word_penalty must be finite");
  require(options.word_penalty == 0.0 || marian,
          "word_penalty is only defined for the marian convention");
  require(options.max_batch_tokens >= 0,
          "max_batch_tokens must be >= 0, got " + std::to_string(options.max_batch_tokens));

  if (options.sampling) {
    require(options.beam_size == 1, "sampling requires beam_size 1, got " +
                                        std::to_string(options.beam_size));
    require(std::isfinite(options.temperature) && options.temperature >= 0.0,
            "temperature must be >= 0, got " + std::to_string(options.temperature));
    require(options.top_k >= 0, "top_k must be >= 0, got " + std::to_string(options.top_k));
    require(options.top_p > 0.0 && options.top_p <= 1.0,
            "top_p must be in (0, 1], got " + std::to_string(options.top_p));
    require(options.min_p >= 0.0 && options.min_p <= 1.0,
            "min_p must be in [0, 1], got " + std::to_string(options.min_p));
  }
  const bool samples_differ = options.sampling && options.temperature > 0.0;
  if (!samples_differ)
    require(options.n_best <= options.beam_size,
            "n_best " + std::to_string(options.n_best) + " exceeds beam_size " +
                std::to_string(options.beam_size));
  if (has_callback) {
    require(options.beam_size == 1, "a token callback requires beam_size 1 (greedy or sampling)");
    require(options.n_best == 1, "a token callback requires n_best 1");
  }

  require_target_id_lists(options.allowed_ids, "allowed_ids", config, n_sentences);
  if (!options.constraints.empty()) {
    require(options.constraints.size() == n_sentences,
            "constraints has " + std::to_string(options.constraints.size()) + " entries for " +
                std::to_string(n_sentences) + " sentences");
    require(!options.sampling, "constraints cannot be combined with sampling");
    require(options.whole_words.empty() || options.whole_words.size() == n_sentences,
            "whole_words has " + std::to_string(options.whole_words.size()) + " entries for " +
                std::to_string(n_sentences) + " sentences");
    for (int32_t id : options.word_continuations)
      require(id >= 0 && id < config.target_vocab_size,
              "word_continuations: id " + std::to_string(id) +
                  " is outside the target vocabulary");
    require(!has_callback, "constraints cannot be combined with a token callback");
    for (const auto& sentence : options.constraints) {
      int64_t tokens = 0;
      for (const Constraint& constraint : sentence) {
        require(!constraint.empty(), "constraints: a constraint has no form");
        size_t longest = 0;
        for (const auto& form : constraint) {
          require(!form.empty(), "constraints: a form of a constraint is empty");
          longest = std::max(longest, form.size());
          for (int32_t id : form)
            require(std::find(options.suppressed_ids.begin(), options.suppressed_ids.end(),
                              id) == options.suppressed_ids.end(),
                    "constraints: id " + std::to_string(id) +
                        " is suppressed (suppressed_ids): the search could never produce it");
        }
        tokens += static_cast<int64_t>(longest);
        require_target_id_lists(constraint, "constraints", config, constraint.size());
      }
      require(tokens < options.max_length,
              "constraints: " + std::to_string(tokens) + " tokens do not fit max_length " +
                  std::to_string(options.max_length));
    }
  }
  require_target_id_lists(options.target_prefix, "target_prefix", config, n_sentences);
  for (const auto& prefix : options.target_prefix) {
    // transformers counts max_length after the prefix, ctranslate2 from the decoder start.
    const int64_t steps = options.convention == format::SearchConvention::TRANSFORMERS
                              ? static_cast<int64_t>(prefix.size()) + options.max_length
                              : options.max_length;
    require(steps <= config.max_positions,
            "target_prefix of length " + std::to_string(prefix.size()) +
                " plus max_length exceeds the model's max_positions " +
                std::to_string(config.max_positions));
  }
}

// A language model's context holds each prompt (all but its last token cached before the
// first step) and the steps after it.
void validate_prompts(const SearchOptions& options, const format::ModelConfig& config,
                      const std::vector<std::vector<int32_t>>& prompts) {
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t prefix = options.target_prefix.empty()
                               ? 0 : static_cast<int64_t>(options.target_prefix[i].size());
    const int64_t prompt = static_cast<int64_t>(prompts[i].size());
    require(prompt >= 1, "prompt " + std::to_string(i) + " is empty");
    require(prompt - 1 + prefix + options.max_length <= config.max_positions,
            "prompt " + std::to_string(i) + " of " + std::to_string(prompt) +
                " tokens plus max_length " + std::to_string(options.max_length) +
                " exceeds the model's context of " + std::to_string(config.max_positions) +
                " tokens");
  }
}

// Sub-batches of the sentences `order` names: sorted by decreasing source length, each
// sub-batch at most max_batch_tokens padded source tokens (and at least one sentence). With
// one_length (a decoder-only model's prompts), a sub-batch also holds one length only.
std::vector<std::vector<int64_t>> split_batches(const std::vector<std::vector<int32_t>>& source_ids,
                                                std::vector<int64_t> order,
                                                int64_t max_batch_tokens, bool one_length) {
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return source_ids[a].size() > source_ids[b].size();
  });
  std::vector<std::vector<int64_t>> batches;
  int64_t longest = 0;
  for (int64_t index : order) {
    const int64_t length = static_cast<int64_t>(source_ids[index].size());
    if (batches.empty() || (one_length && length != longest) ||
        (max_batch_tokens > 0 &&
         (static_cast<int64_t>(batches.back().size()) + 1) * std::max(longest, length) >
             max_batch_tokens)) {
      batches.emplace_back();
      longest = 0;
    }
    batches.back().push_back(index);
    longest = std::max(longest, length);
  }
  return batches;
}

// Sentence `index`'s shortlist as the strategies take it (SubBatch::allowed): its allowed ids
// with EOS, the stop ids, its target prefix and its constraints, ascending and unique.
std::vector<int32_t> sentence_shortlist(const SearchOptions& options,
                                        const format::ModelConfig& config, int64_t index) {
  std::vector<int32_t> ids = options.allowed_ids[static_cast<size_t>(index)];
  ids.push_back(static_cast<int32_t>(config.eos_id));
  for (const int64_t stop : config.stop_ids) ids.push_back(static_cast<int32_t>(stop));
  if (!options.target_prefix.empty()) {
    const auto& prefix = options.target_prefix[static_cast<size_t>(index)];
    ids.insert(ids.end(), prefix.begin(), prefix.end());
  }
  if (!options.constraints.empty()) {
    for (const Constraint& constraint : options.constraints[static_cast<size_t>(index)])
      for (const auto& form : constraint) ids.insert(ids.end(), form.begin(), form.end());
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// The most tokens sentence `source` may generate: options.max_length, or Marian's limit
// ceil(max_length_factor * source length) where smaller (BeamSearch::search stops once a
// history holds max-length-factor * batch width steps; the product is a float there).
int64_t sentence_max_length(const SearchOptions& options, const std::vector<int32_t>& source) {
  if (options.max_length_factor == 0.0) return options.max_length;
  const float limit = std::ceil(static_cast<float>(options.max_length_factor) *
                                static_cast<float>(source.size()));
  return std::max<int64_t>(1, std::min<int64_t>(options.max_length, static_cast<int64_t>(limit)));
}

}  // namespace

SearchOptions SearchOptions::from_config(const format::ModelConfig& config) {
  SearchOptions options;
  options.beam_size = config.beam_size;
  options.max_length = config.max_length;
  options.length_penalty = config.length_penalty;
  options.suppressed_ids = config.suppressed_ids;
  options.forced_eos = config.forced_eos;
  options.renormalize_logits = config.renormalize_logits;
  options.no_repeat_ngram_size = config.no_repeat_ngram_size;
  options.convention = config.search_convention;
  options.max_length_factor = config.max_length_factor;
  options.word_penalty = config.word_penalty;
  // CTranslate2's translate_batch never returns an empty translation by default
  // (min_decoding_length=1); Hugging Face generate() has no such default.
  options.min_length = config.search_convention == format::SearchConvention::CTRANSLATE2 ? 1 : 0;
  return options;
}

std::vector<SentenceResult> generate(const models::EncoderDecoderModel& model,
                                     const std::vector<std::vector<int32_t>>& source_ids,
                                     const SearchOptions& options, const TokenCallback& on_token,
                                     const std::function<void()>& between_steps) {
  const format::ModelConfig& config = model.config();
  validate(options, config, source_ids.size(), static_cast<bool>(on_token));
  if (config.decoder_only()) validate_prompts(options, config, source_ids);
  std::vector<SentenceResult> results(source_ids.size());
  if (source_ids.empty()) return results;

  bool request_has_prefix = false;
  for (const auto& prefix : options.target_prefix) request_has_prefix |= !prefix.empty();

  DecodingHooks hooks;
  hooks.on_token = on_token ? &on_token : nullptr;
  hooks.between_steps = between_steps ? &between_steps : nullptr;

  // Sentences with constraints are decoded apart, by the constrained search.
  std::vector<int64_t> free, constrained;
  for (size_t i = 0; i < source_ids.size(); ++i) {
    const bool has = !options.constraints.empty() && !options.constraints[i].empty();
    (has ? constrained : free).push_back(static_cast<int64_t>(i));
  }
  std::vector<std::vector<int64_t>> batches =
      split_batches(source_ids, free, options.max_batch_tokens, config.decoder_only());
  const size_t free_batches = batches.size();
  for (auto& batch : split_batches(source_ids, constrained, options.max_batch_tokens,
                                   config.decoder_only()))
    batches.push_back(std::move(batch));

  for (size_t b = 0; b < batches.size(); ++b) {
    const std::vector<int64_t>& indices = batches[b];
    const bool with_constraints = b >= free_batches;
    if (hooks.stopped) {
      // The caller stopped decoding: sentences not yet started get an empty hypothesis.
      for (int64_t index : indices) results[index].hypotheses.resize(1);
      continue;
    }
    if (hooks.between_steps) (*hooks.between_steps)();
    SubBatch batch;
    batch.input_index = indices;
    batch.request_has_prefix = request_has_prefix;
    std::vector<std::vector<int32_t>> batch_source;
    for (int64_t index : indices) {
      batch_source.push_back(source_ids[index]);
      batch.sources.push_back(&source_ids[index]);
      batch.prefix.push_back(options.target_prefix.empty() ? std::vector<int32_t>()
                                                            : options.target_prefix[index]);
      if (!options.allowed_ids.empty())
        batch.allowed.push_back(sentence_shortlist(options, config, index));
      batch.max_length.push_back(sentence_max_length(options, source_ids[index]));
      if (with_constraints) {
        batch.constraints.push_back(options.constraints[index]);
        batch.whole_words.push_back(options.whole_words.empty() ? 0 : options.whole_words[index]);
      }
    }
    const models::EncoderOutput encoded = model.encode(batch_source);

    std::vector<SentenceResult> batch_results;
    if (with_constraints)
      batch_results = beam_search_constrained(model, encoded, batch, options, hooks);
    else if (options.beam_size == 1)
      batch_results = greedy_search(model, encoded, batch, options, hooks);
    else if (options.convention == format::SearchConvention::CTRANSLATE2)
      batch_results = beam_search_ctranslate2(model, encoded, batch, options, hooks);
    else if (options.convention == format::SearchConvention::MARIAN)
      batch_results = beam_search_marian(model, encoded, batch, options, hooks);
    else
      batch_results = beam_search_transformers(model, encoded, batch, options, hooks);
    for (size_t i = 0; i < indices.size(); ++i) results[indices[i]] = std::move(batch_results[i]);
  }
  return results;
}

}  // namespace pytransformer::decoding
