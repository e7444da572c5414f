// Teacher forcing: the decoder reads given target inputs (the decoder start id, then the
// tokens of a translation) instead of its own choices, step by step through the KV cache, as
// the searches do. `explain` draws the cross-attention of a translation this way, and the tests
// compare the logits with the references'.
//
// At step t the hypotheses are the sentences whose target is longer than t, in batch order,
// each extending its own hypothesis of the previous step (so sentences leaving the batch
// exercise the ancestry table).
#pragma once

#include <cstdint>
#include <vector>

#include "models/encoder_decoder_model.h"

namespace pytransformer::decoding {

using TokenIdBatch = std::vector<std::vector<int32_t>>;

// Per sentence b: logits [targets[b].size(), target_vocab], row-major. InvalidArgument when
// the batch sizes differ or a target is empty.
std::vector<std::vector<float>> teacher_forced_logits(const models::EncoderDecoderModel& model,
                                                      const TokenIdBatch& sources,
                                                      const TokenIdBatch& targets);

// Per sentence b: cross-attention probabilities [decoder_layers, decoder_heads,
// targets[b].size(), sources[b].size()], row-major. Same errors.
std::vector<std::vector<float>> teacher_forced_cross_attention(
    const models::EncoderDecoderModel& model, const TokenIdBatch& sources,
    const TokenIdBatch& targets);

}  // namespace pytransformer::decoding
