// Builds a variant's KernelTable from the kernels of *_impl.h instantiated with its vector
// abstraction S; entries without a vectorised version use the scalar references.
// Internal linkage; include only from kernels_<isa>.cpp.
#pragma once

#include "kernels/cpu/activation_impl.h"
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/layer_norm_impl.h"
#include "kernels/cpu/linear_impl.h"
#include "kernels/cpu/rms_norm_impl.h"
#include "kernels/cpu/softmax_impl.h"
#include "kernels/ref/rotary.h"

namespace pytransformer::kernels::cpu {
namespace {

template <class S>
KernelTable make_table(Isa isa) {
  KernelTable table;
  table.isa = isa;
  table.panel_columns = kPanelColumns<S>;
  table.packed_weight_bytes = &packed_weight_bytes<S>;
  table.pack_weight = &pack_weight<S>;
  table.select_packed_rows = &select_packed_rows<S>;
  table.linear_float = &linear_float<S>;
  table.quantize_rows = &quantize_rows<S>;
  table.quantize_rows_fixed = &ref::quantize_rows_fixed;
  table.linear_int8 = &linear_int8<S>;
  table.activation = &activate<S>;
  table.gated_activation = &gated_activation<S>;
  table.ssru_step = &ssru_step<S>;
  table.add = &add<S>;
  table.log_softmax = &log_softmax<S>;
  table.argmax = &argmax<S>;
  table.layer_norm = &layer_norm<S>;
  table.rms_norm = &rms_norm<S>;
  table.apply_rotary = &ref::apply_rotary;  // O(head_dim) per row: the reference suffices
  table.attention = &attention<S>;
  table.cached_attention = &cached_attention<S>;
  return table;
}

}  // namespace
}  // namespace pytransformer::kernels::cpu
