// Lexically constrained beam search: every token sequence of SearchOptions::constraints for a
// sentence appears in its translation. Dynamic beam allocation (Post & Vilar, "Fast Lexically
// Constrained Decoding with Dynamic Beam Allocation", NAACL 2018): see docs/decoding.md,
// *Constraints*.
//
// Each hypothesis records which constraints it has met and how far it is into the one it is
// producing. A step's candidates are the best continuations overall, each hypothesis' best
// token, and each hypothesis' next constraint token (the next of the one in progress, else the
// first of each unmet one). Candidates are grouped into banks by how many constraint tokens
// they have met, and the beam is filled taking the best of each bank in turn, the bank with
// the most first, so hypotheses that have placed constraints and those that have not yet both
// stay in the beam. A hypothesis may end only once it has met every constraint.
#include <algorithm>
#include <cmath>
#include <limits>

#include "decoding/beam_candidates.h"
#include "decoding/strategies.h"

namespace pytransformer::decoding {

namespace {

constexpr float kImpossible = -std::numeric_limits<float>::infinity();

struct Progress {
  std::vector<uint8_t> met;  // per constraint
  int32_t active = -1;       // the constraint being produced (-1: none)
  int32_t form = 0;          // which of its forms
  int32_t position = 0;      // the form's tokens produced so far
  int32_t met_tokens = 0;    // the bank: tokens of the met constraints and of the active one
  bool word_ends = false;    // the last token completed a constraint: its word ends here
};

struct Beam {
  std::vector<int32_t> tokens;
  float score = 0.0f;
  Progress progress;
};

struct Choice {
  float score;
  int32_t beam;
  int32_t token;
  Progress progress;
};

struct Ended {
  Hypothesis hypothesis;
  int32_t met_tokens;  // below the total only where the length limit came first
};

// A constraint counts as many tokens as its shortest form.
int32_t constraint_tokens(const Constraint& constraint) {
  size_t shortest = constraint.front().size();
  for (const auto& form : constraint) shortest = std::min(shortest, form.size());
  return static_cast<int32_t>(shortest);
}

// The progress after `token`: the active form advances (or another form of the same
// constraint with the same tokens so far does), or the constraint is abandoned (its tokens so
// far no longer count) and the token may start an unmet one (the first form that starts with
// it).
Progress advance(const Progress& before, int32_t token, const std::vector<Constraint>& constraints) {
  Progress after = before;
  after.word_ends = false;
  if (after.active >= 0) {
    const Constraint& constraint = constraints[after.active];
    const auto& produced = constraint[after.form];
    const int32_t counted = std::min(after.position, constraint_tokens(constraint) - 1);
    for (size_t f = 0; f < constraint.size(); ++f) {
      const auto& form = constraint[f];
      if (static_cast<int32_t>(form.size()) <= after.position || form[after.position] != token ||
          !std::equal(produced.begin(), produced.begin() + after.position, form.begin()))
        continue;
      after.form = static_cast<int32_t>(f);
      ++after.position;
      if (after.position == static_cast<int32_t>(form.size())) {
        after.met[after.active] = 1;
        after.met_tokens += constraint_tokens(constraint) - counted;
        after.active = -1;
        after.position = 0;
        after.word_ends = true;
      } else {
        after.met_tokens += std::min(after.position, constraint_tokens(constraint) - 1) - counted;
      }
      return after;
    }
    after.met_tokens -= counted;
    after.active = -1;
    after.position = 0;
  }
  for (size_t c = 0; c < constraints.size(); ++c) {
    if (after.met[c]) continue;
    for (size_t f = 0; f < constraints[c].size(); ++f) {
      if (constraints[c][f].front() != token) continue;
      if (constraints[c][f].size() == 1) {
        after.met[c] = 1;
        after.met_tokens += 1;
        after.word_ends = true;
      } else {
        after.active = static_cast<int32_t>(c);
        after.form = static_cast<int32_t>(f);
        after.position = 1;
        after.met_tokens += std::min(1, constraint_tokens(constraints[c]) - 1);
      }
      return after;
    }
  }
  return after;
}

// The tokens that take a hypothesis further into its constraints.
void next_constraint_tokens(const Progress& progress, const std::vector<Constraint>& constraints,
                            std::vector<int32_t>& tokens) {
  tokens.clear();
  if (progress.active >= 0) {
    tokens.push_back(constraints[progress.active][progress.form][progress.position]);
    return;
  }
  for (size_t c = 0; c < constraints.size(); ++c) {
    if (progress.met[c]) continue;
    for (const auto& form : constraints[c]) tokens.push_back(form.front());
  }
}

}  // namespace

int64_t constrained_beam_width(const SearchOptions& options,
                               const std::vector<Constraint>& constraints) {
  int64_t tokens = 0;
  for (const auto& constraint : constraints) tokens += constraint_tokens(constraint);
  return std::max<int64_t>(options.beam_size, std::min<int64_t>(options.beam_size * (tokens + 1), kMaxConstrainedBeam));
}

std::vector<SentenceResult> beam_search_constrained(const models::EncoderDecoderModel& model,
                                                    const models::EncoderOutput& encoded,
                                                    const SubBatch& batch,
                                                    const SearchOptions& options,
                                                    DecodingHooks& hooks) {
  const auto& config = model.config();
  const int64_t n_sentences = static_cast<int64_t>(batch.input_index.size());
  const LogitsProcessorList processors = model_processors(options, config);

  int64_t longest_prefix = 0, max_rows = 0;
  std::vector<int64_t> width(n_sentences);
  std::vector<int32_t> total(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    longest_prefix = std::max<int64_t>(longest_prefix, batch.prefix[i].size());
    width[i] = constrained_beam_width(options, batch.constraints[i]);
    for (const auto& constraint : batch.constraints[i]) total[i] += constraint_tokens(constraint);
    max_rows += width[i];
  }
  const int64_t max_steps = longest_prefix + options.max_length;

  std::vector<std::vector<Beam>> beams(n_sentences);
  std::vector<std::vector<Ended>> finished(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    Beam start;
    start.progress.met.assign(batch.constraints[i].size(), 0);
    beams[i].push_back(std::move(start));
  }

  StepRunner runner(model, encoded, batch, max_rows, max_steps);
  const int64_t vocab = runner.vocab();
  const std::vector<std::vector<int32_t>> repetition_context =
      repetition_contexts(options, config, encoded, batch);
  BeamRows step_rows(encoded, config, max_rows);
  CandidateSelector selector;
  std::vector<float> beam_scores;
  std::vector<Choice> choices;
  std::vector<int32_t> wanted;
  std::vector<std::vector<Choice>> banks;

  for (int64_t step = 0; step < max_steps && !step_rows.sentence.empty(); ++step) {
    if (hooks.between_steps && *hooks.between_steps) (*hooks.between_steps)();
    float* logits = runner.step(step_rows.tokens, step_rows.sentence, step_rows.parent);

    for (size_t first_row = 0; first_row < step_rows.sentence.size();) {
      const int32_t s = step_rows.sentence[first_row];
      const std::vector<Constraint>& constraints = batch.constraints[s];
      auto& live = beams[s];
      const int64_t count = static_cast<int64_t>(live.size());
      const auto& prefix = batch.prefix[s];
      const int64_t prefix_length = static_cast<int64_t>(prefix.size());
      float* rows = logits + first_row * vocab;

      if (step < prefix_length) {  // forced prefix token, not scored
        live[0].tokens.push_back(prefix[step]);
        step_rows.add_next(prefix[step], s, static_cast<int32_t>(first_row));
        first_row += count;
        continue;
      }
      const int64_t generated = step - prefix_length;
      const bool last = generated + 1 >= batch.max_length[s];

      beam_scores.resize(count);
      for (int64_t b = 0; b < count; ++b) {
        float* row = rows + b * vocab;
        beam_log_probs(row, vocab, options, processors, repetition_context[s],
                       models::start_token(encoded, config, s), live[b].tokens, generated);
        // Unmet constraints: no end yet (at the last step a hypothesis must end somehow).
        if (live[b].progress.met_tokens < total[s] && !last) row[config.eos_id] = kImpossible;
        if (live[b].progress.word_ends && batch.whole_words[s])
          for (const int32_t id : options.word_continuations) row[id] = kImpossible;
        beam_scores[b] = live[b].score;
      }

      choices.clear();
      auto add = [&](int32_t beam, int32_t token) {
        const float score = beam_scores[beam] + rows[beam * vocab + token];
        if (score == kImpossible) return;
        for (const Choice& choice : choices)
          if (choice.beam == beam && choice.token == token) return;
        choices.push_back({score, beam, token, advance(live[beam].progress, token, constraints)});
      };
      for (const Candidate& candidate : selector.best(rows, beam_scores, vocab, width[s]))
        add(candidate.beam, candidate.token);
      for (int64_t b = 0; b < count; ++b) {
        add(static_cast<int32_t>(b), static_cast<int32_t>(argmax(rows + b * vocab, vocab)));
        next_constraint_tokens(live[b].progress, constraints, wanted);
        for (int32_t token : wanted) add(static_cast<int32_t>(b), token);
      }

      // The ends: hypotheses that met every constraint, and at the length limit every one.
      banks.assign(total[s] + 1, {});
      for (Choice& choice : choices) {
        const std::vector<int32_t>& history = live[choice.beam].tokens;
        const bool is_eos = ends_sentence(config, choice.token);
        if (is_eos || last) {
          Hypothesis hypothesis;
          hypothesis.tokens = history;
          if (!is_eos) hypothesis.tokens.push_back(choice.token);
          const int64_t counted = generated + 1 + (options.count_prefix ? prefix_length : 0);
          hypothesis.score = choice.score / static_cast<float>(std::pow(
              static_cast<double>(counted), options.length_penalty));
          hypothesis.finished = is_eos;
          finished[s].push_back({std::move(hypothesis), choice.progress.met_tokens});
          continue;
        }
        banks[choice.progress.met_tokens].push_back(std::move(choice));
      }
      for (auto& bank : banks)
        std::stable_sort(bank.begin(), bank.end(),
                         [](const Choice& a, const Choice& b) { return a.score > b.score; });

      std::vector<Beam> next;
      next.reserve(width[s]);
      std::vector<size_t> taken(banks.size(), 0);
      for (bool any = true; any && static_cast<int64_t>(next.size()) < width[s];) {
        any = false;
        for (size_t bank = banks.size(); bank-- > 0 &&
                                         static_cast<int64_t>(next.size()) < width[s];) {
          if (taken[bank] == banks[bank].size()) continue;
          const Choice& choice = banks[bank][taken[bank]++];
          any = true;
          Beam beam;
          beam.tokens = live[choice.beam].tokens;
          beam.tokens.push_back(choice.token);
          beam.score = choice.score;
          beam.progress = choice.progress;
          step_rows.add_next(choice.token, s, static_cast<int32_t>(first_row + choice.beam));
          next.push_back(std::move(beam));
        }
      }
      const bool done = static_cast<int64_t>(finished[s].size()) >= width[s];
      if (done || last) {
        step_rows.drop_next(static_cast<int64_t>(next.size()));
        next.clear();
      }
      first_row += count;
      live = std::move(next);
    }
    step_rows.advance();
  }

  std::vector<SentenceResult> results(n_sentences);
  for (int64_t i = 0; i < n_sentences; ++i) {
    auto& ended = finished[i];
    // Those that met every constraint first, then the best scores.
    std::stable_sort(ended.begin(), ended.end(), [](const Ended& a, const Ended& b) {
      if (a.met_tokens != b.met_tokens) return a.met_tokens > b.met_tokens;
      return a.hypothesis.score > b.hypothesis.score;
    });
    for (size_t k = 0; k < ended.size() && static_cast<int64_t>(k) < options.n_best; ++k)
      results[i].hypotheses.push_back(std::move(ended[k].hypothesis));
  }
  return results;
}

}  // namespace pytransformer::decoding
