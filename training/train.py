"""Trains, evaluates and exports the default en<->zh model (one bidirectional Transformer).

    python -m training.train --run-dir training-runs/run1 --minutes 90 --threads 1

A run directory holds the SentencePiece model, the dev split, `checkpoint.pt` (written every
few minutes and at the end; a killed run resumes from it with the same command and finishes
its budget), `train.log`, `scores.json` and `candidate.ptm`. A new run starts from
weights/model.ptm when it exists (same SentencePiece model, same architecture), else from
scratch. At the end the model is evaluated on the dev split in both directions (greedy,
BLEU and chrF), exported, and copied to weights/model.ptm only if its dev score beats the one
recorded in weights/scores.json; every finished run is appended to weights/training_log.jsonl.
`--finish-only` redoes the evaluation and export from the run's checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytransformer.format
from pytransformer import Translator
import torch
from torch.nn import functional as F

from training import corpora, data, evaluate, everyday
from training.model import (ModelConfig, Seq2SeqTransformer, export_tensors,
                            load_exported_tensors)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DATA_LICENSE = ("Trained by the pytransformer project on Tatoeba sentence pairs "
                "(tatoeba.org, CC-BY 2.0 FR; credit: Tatoeba (tatoeba.org)), MSCTD (MIT), "
                "3AM (MIT), CC-CEDICT (CC BY-SA 4.0; mdbg.net) and WMT news test sets "
                "(statmt.org, research use)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="wall-clock training budget of the run (evaluation excluded)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--weights-dir", type=Path, default=REPO_ROOT / "weights")
    parser.add_argument("--from-scratch", action="store_true",
                        help="ignore weights/model.ptm and start a new model")
    parser.add_argument("--new-vocab", action="store_true",
                        help="train a new SentencePiece model on the training corpora; a "
                        "continued model keeps its layers and its embeddings of the pieces "
                        "both vocabularies share (new pieces start from the mean embedding "
                        "of their old pieces)")
    parser.add_argument("--cedict-entries", type=int, default=corpora.CEDICT_ENTRIES,
                        help="CC-CEDICT entries mixed into the training pairs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--encoder-layers", type=int, default=3)
    parser.add_argument("--decoder-layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn-dim", type=int, default=1024)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--bf16", action="store_true",
                        help="bf16 autocast (AMX on CPUs that have it, tensor cores on GPUs); ignored, "
                        "with a log line, on a CPU without AVX-512, where it is far slower")
    parser.add_argument("--average", type=int, default=4,
                        help="export the average of the last N checkpoints' weights")
    parser.add_argument("--restart-schedule", action="store_true",
                        help="when continuing, warm up and decay as if from step 0")
    parser.add_argument("--max-length", type=int, default=96,
                        help="longest training example in ids (source or target)")
    parser.add_argument("--max-tokens", type=int, default=2000,
                        help="padded tokens per batch (batch size x longest side)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=500, help="warmup steps")
    parser.add_argument("--rewarmup", type=int, default=200,
                        help="warmup steps when continuing a shipped model with a new optimizer")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--benchmark-steps", type=int, default=0,
                        help="only time this many steps, print tokens/s and exit")
    parser.add_argument("--finish-only", action="store_true",
                        help="evaluate and export the run's checkpoint (or result.pt) "
                        "without training")
    parser.add_argument("--prepare-only", action="store_true",
                        help="write the run's spm.model, examples.pt and start.pt (the "
                        "weights to continue) and stop: what a machine without the corpora's "
                        "tools or the compiled package (a lent GPU) needs to train")
    parser.add_argument("--no-finish", action="store_true",
                        help="after training write result.pt (averaged weights and state) "
                        "instead of exporting and evaluating; --finish-only does that later")
    parser.add_argument("--eval-threads", type=int, default=1,
                        help="threads of the engine scoring the dev and test sets")
    return parser.parse_args(argv)


def cpu_has_fast_bf16() -> bool:
    """Whether torch's CPU kernels multiply bf16 natively (AVX-512 or AMX builds of its
    kernels), rather than by the scalar fallback it uses on AVX2."""
    return torch.backends.cpu.get_cpu_capability().startswith(("AVX512", "AMX"))


class RunLog:
    """Prints and appends lines to <run>/train.log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, message: str) -> None:
        line = f"{datetime.now().strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


# ---------------------------------------------------------------------------------------
# Shipped model (our .ptm format) in and out


def read_shipped_model(path: Path) -> tuple[dict, dict]:
    """Returns (metadata, tensors) of a .ptm file through pytransformer.format."""
    loaded = pytransformer.format.read_model(str(path))
    if isinstance(loaded, tuple):
        metadata, tensors = loaded
    else:
        metadata, tensors = loaded.metadata, loaded.tensors
    return dict(metadata), dict(tensors)


def config_from_metadata(metadata: dict, dropout: float) -> ModelConfig:
    return ModelConfig(
        vocab_size=int(metadata["model.source_vocab_size"]),
        d_model=int(metadata["model.d_model"]),
        encoder_layers=int(metadata["model.encoder_layers"]),
        decoder_layers=int(metadata["model.decoder_layers"]),
        heads=int(metadata["model.encoder_heads"]),
        ffn_dim=int(metadata["model.encoder_ffn_dim"]),
        max_positions=int(metadata["model.max_positions"]),
        dropout=dropout,
        layer_norm_epsilon=float(metadata["model.layer_norm_epsilon"]),
    )


# The length penalties (transformers convention: a beam's score is its log-probability over
# length ** penalty) a finished run chooses its default from, by evaluate.bleu_chrf_quality on
# the dev sets. On run12's model: 0.7 25.13, 1.0 25.45, 1.4 26.02, 1.8 26.11, 2.4 25.92 (the
# small model's beams ended too early).
LENGTH_PENALTIES = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2)


def build_metadata(config: ModelConfig, sp_model: bytes, processor, state: dict,
                   length_penalty: float = 1.0) -> dict:
    """The metadata of docs/format.md for our architecture, plus training provenance."""
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    language_ids = [data.language_token_id(processor, lang) for lang in data.LANGUAGES]
    sources = "Tatoeba cmn-eng, MSCTD, 3AM, WMT newstest 2017-2019, CC-CEDICT"
    return {
        "general.architecture": "transformer-seq2seq",
        "general.name": "pytransformer-en-zh-tiny",
        "general.source": f"trained by pytransformer training/train.py on {sources}",
        "general.converter": "pytransformer training/train.py",
        "general.license": DATA_LICENSE,
        "model.d_model": config.d_model,
        "model.encoder_layers": config.encoder_layers,
        "model.decoder_layers": config.decoder_layers,
        "model.encoder_heads": config.heads,
        "model.decoder_heads": config.heads,
        "model.encoder_ffn_dim": config.ffn_dim,
        "model.decoder_ffn_dim": config.ffn_dim,
        "model.activation": "relu",
        "model.pre_norm": True,
        "model.layer_norm_epsilon": float(config.layer_norm_epsilon),
        "model.scale_embedding": True,
        "model.embedding_norm": False,
        "model.position_layout": "halves",
        "model.position_frequencies": "tensor2tensor",
        "model.position_offset": 0,
        "model.max_positions": config.max_positions,
        "model.source_vocab_size": config.vocab_size,
        "model.target_vocab_size": config.vocab_size,
        "model.linear_bias": True,
        "model.output_bias": False,
        "tokens.pad_id": data.PAD_ID,
        "tokens.eos_id": data.EOS_ID,
        "tokens.unk_id": data.UNK_ID,
        "tokens.decoder_start_id": data.BOS_ID,
        "tokens.source_eos_id": data.EOS_ID,
        "vocab.source": pieces,
        "vocab.target": pieces,
        "tokenizer.type": "sentencepiece",
        "tokenizer.source_model": sp_model,
        "tokenizer.target_model": sp_model,
        "tokenizer.add_source_eos": True,
        "tokenizer.target_languages": [data.LANGUAGE_TOKENS[lang] for lang in data.LANGUAGES],
        # The vocabulary's NFKC normalisation makes the targets' ，？！ ASCII: decode restores them.
        "tokenizer.fullwidth_punctuation": True,
        "generation.beam_size": 4,
        "generation.max_length": 128,
        "generation.length_penalty": length_penalty,
        "generation.suppressed_ids": [data.PAD_ID, data.BOS_ID] + language_ids,
        "generation.forced_eos": True,
        # Against the loops small models fall into on long input: mean dev chrF of the sets
        # (200 sentences each, run3's model) 24.49 without, 24.71 with 3, 24.66 with 4.
        "generation.no_repeat_ngram_size": 3,
        "generation.search_convention": "transformers",
        "training.protocol": "training/corpora.py",
        "training.steps": int(state["global_step"]),
        "training.seconds": float(state["total_seconds"]),
    }


def write_shipped_model(path: Path, metadata: dict, tensors: dict) -> None:
    arrays = {}
    by_identity: dict[int, object] = {}
    for name, tensor in tensors.items():
        # Tied tensors stay one numpy object so the writer can store their bytes once.
        if id(tensor) not in by_identity:
            by_identity[id(tensor)] = tensor.numpy()
        arrays[name] = by_identity[id(tensor)]
    pytransformer.format.write_model(str(path), metadata, arrays)


# ---------------------------------------------------------------------------------------
# Data


def save_examples(path: Path, examples: list[data.Example], dev_pairs: list[data.Pair]) -> None:
    """The tokenized training set as flat int16 arrays (a few MB), so a run can train where
    the corpora's clean-up tools are missing."""
    def flat(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(seq) for seq in sequences], dtype=torch.int32)
        return torch.tensor([i for seq in sequences for i in seq], dtype=torch.int16), lengths

    torch.save({"source": flat([ex.source for ex in examples]),
                "target": flat([ex.target for ex in examples]),
                "dev": [(pair.en, pair.zh) for pair in dev_pairs]}, path)


def load_examples(path: Path) -> tuple[list[data.Example], list[data.Pair]]:
    saved = torch.load(path)

    def unflat(ids: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        values, out, start = ids.tolist(), [], 0
        for length in lengths.tolist():
            out.append(values[start:start + length])
            start += length
        return out

    examples = [data.Example(source, target) for source, target in
                zip(unflat(*saved["source"]), unflat(*saved["target"]))]
    return examples, [data.Pair(en, zh) for en, zh in saved["dev"]]


def prepare(args: argparse.Namespace, log: RunLog, shipped: tuple[dict, dict] | None):
    """Returns (sp_model bytes, processor, train examples, dev pairs for the dev loss)."""
    cached = args.run_dir / "examples.pt"
    if cached.exists() and (args.run_dir / "spm.model").exists():
        sp_model = (args.run_dir / "spm.model").read_bytes()
        examples, dev_pairs = load_examples(cached)
        log(f"{len(examples)} examples read from {cached}")
        return sp_model, data.load_sentencepiece(sp_model), examples, dev_pairs
    loaded = corpora.load(args.data_dir, cedict_entries=args.cedict_entries)
    train_pairs = [pair for pairs in loaded.train.values() for pair in pairs]
    for name, count in loaded.report.items():
        log(f"data {name}: {count}")
    sp_path = args.run_dir / "spm.model"
    if sp_path.exists():
        sp_model = sp_path.read_bytes()
    elif shipped is not None and not args.new_vocab:
        sp_model = shipped[0]["tokenizer.source_model"]
        sp_path.write_bytes(sp_model)
        log("SentencePiece model taken from the shipped model")
    else:
        sp_model = data.train_sentencepiece(train_pairs, args.run_dir / "spm", args.vocab_size)
        log(f"trained SentencePiece model, {args.vocab_size} pieces")
    processor = data.load_sentencepiece(sp_model)
    examples = data.make_examples(processor, train_pairs, args.max_length)
    casual = data.make_casual_examples(
        processor, [pair for name in data.CASUAL_CORPORA for pair in loaded.train[name]],
        args.max_length)
    examples += casual
    log(f"{len(casual)} casual-input examples (short {', '.join(data.CASUAL_CORPORA)} sources "
        "lowercased, without final punctuation)")
    # The dev loss watched during training: 100 pairs of each dev set, in its direction(s).
    dev_pairs = []
    for evalset in loaded.dev:
        if evalset.source_language == "en":
            dev_pairs += [data.Pair(en, zh) for en, zh in
                          zip(evalset.sources[:100], evalset.references[:100])]
    tokens = sum(len(ex.source) + len(ex.target) for ex in examples)
    log(f"{len(train_pairs)} training pairs: {len(examples)} examples (both directions), "
        f"{tokens} tokens per epoch")
    if args.prepare_only:
        save_examples(cached, examples, dev_pairs)
    return sp_model, processor, examples, dev_pairs


def transfer_embeddings(model, shipped: tuple[dict, dict], processor) -> int:
    """Continues a shipped model under a new vocabulary: every tensor but the embedding is
    copied; a piece the old vocabulary has keeps its row, another starts as the mean of the
    rows of the old pieces its text splits into. Returns how many pieces were shared."""
    metadata, tensors = shipped
    old = data.load_sentencepiece(bytes(metadata["tokenizer.source_model"]))
    old_embed = torch.as_tensor(tensors["enc.embed.weight"]).float()
    body = {name: value for name, value in tensors.items()
            if name not in ("enc.embed.weight", "dec.embed.weight", "dec.out_proj.weight")}
    new_embed = model.embed.weight.detach().clone()
    shared = 0
    for piece_id in range(processor.get_piece_size()):
        piece = processor.id_to_piece(piece_id)
        old_id = old.piece_to_id(piece)
        if old.id_to_piece(old_id) == piece and (old_id != data.UNK_ID or piece == "<unk>"):
            new_embed[piece_id] = old_embed[old_id]
            shared += 1
            continue
        if processor.is_byte(piece_id):
            continue
        word_start = old.piece_to_id("\u2581")
        old_ids = [i for i in old.encode(piece.replace("\u2581", " ")) if i != word_start]
        if old_ids:
            new_embed[piece_id] = old_embed[old_ids].mean(dim=0)
    load_exported_tensors(model, {**body, "enc.embed.weight": new_embed,
                                  "dec.embed.weight": new_embed, "dec.out_proj.weight": new_embed})
    return shared


def collate(batch: list[data.Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source (B, S), decoder input (B, T), labels (B, T)), padded with PAD_ID."""
    source_len = max(len(ex.source) for ex in batch)
    target_len = max(len(ex.target) for ex in batch)
    source = torch.full((len(batch), source_len), data.PAD_ID, dtype=torch.long)
    decoder_input = torch.full((len(batch), target_len), data.PAD_ID, dtype=torch.long)
    labels = torch.full((len(batch), target_len), data.PAD_ID, dtype=torch.long)
    for row, ex in enumerate(batch):
        source[row, : len(ex.source)] = torch.tensor(ex.source)
        decoder_input[row, : len(ex.target)] = torch.tensor([data.BOS_ID] + ex.target[:-1])
        labels[row, : len(ex.target)] = torch.tensor(ex.target)
    return source, decoder_input, labels


# ---------------------------------------------------------------------------------------
# Training


def learning_rate(args: argparse.Namespace, global_step: int, local_step: int,
                  continued: bool) -> float:
    """Linear warmup then inverse square root decay; a short re-warmup when a shipped model
    is continued with a fresh optimizer."""
    step = max(local_step if args.restart_schedule else global_step, 1)
    rate = args.lr * min(step / args.warmup, math.sqrt(args.warmup / step))
    if continued and not args.restart_schedule:
        rate *= min(1.0, max(local_step, 1) / args.rewarmup)
    return rate


def save_checkpoint(path: Path, model, optimizer, state: dict, config: ModelConfig,
                    snapshots: list[dict]) -> None:
    """Writes the run's state; `snapshots` are the last checkpoints' weights (on the CPU),
    averaged at export."""
    temporary = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "state": state, "config": config.to_dict(), "snapshots": snapshots},
               temporary)
    os.replace(temporary, path)


def snapshot(model) -> dict:
    return {name: value.detach().to("cpu", copy=True) for name, value in
            model.state_dict().items()}


def averaged(snapshots: list[dict]) -> dict:
    return {name: sum(snap[name].float() for snap in snapshots) / len(snapshots)
            for name in snapshots[0]}


@torch.no_grad()
def dev_loss(model, processor, dev_pairs: list[data.Pair], device: str) -> float:
    model.eval()
    examples = data.make_examples(processor, dev_pairs, 10_000)
    total, count = 0.0, 0
    for start in range(0, len(examples), 64):
        source, decoder_input, labels = (tensor.to(device) for tensor in
                                         collate(examples[start:start + 64]))
        logits = model(source, decoder_input).float()
        total += F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=data.PAD_ID,
                                 reduction="sum").item()
        count += int((labels != data.PAD_ID).sum())
    model.train()
    return total / max(count, 1)


def train(args, log, model, optimizer, state, config, examples, processor, dev_pairs,
          snapshots: list[dict]):
    checkpoint_path = args.run_dir / "checkpoint.pt"
    budget = args.minutes * 60.0
    model.train()
    last_checkpoint = time.monotonic()
    window_tokens, window_loss, window_start = 0, 0.0, time.monotonic()
    step_in_window = 0
    while state["run_seconds"] < budget:
        rng = random.Random(args.seed * 1_000_003 + state["global_step"])
        for batch in data.token_batches(examples, args.max_tokens, rng):
            step_start = time.monotonic()
            source, decoder_input, labels = (tensor.to(args.device)
                                             for tensor in collate(batch))
            rate = learning_rate(args, state["global_step"] + 1, state["local_step"] + 1,
                                 state["continued"])
            for group in optimizer.param_groups:
                group["lr"] = rate
            with torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16,
                                enabled=args.bf16):
                logits = model(source, decoder_input)
            loss = F.cross_entropy(logits.float().transpose(1, 2), labels,
                                   ignore_index=data.PAD_ID,
                                   label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            state["global_step"] += 1
            state["local_step"] += 1
            elapsed = time.monotonic() - step_start
            state["run_seconds"] += elapsed
            state["total_seconds"] += elapsed
            target_tokens = int((labels != data.PAD_ID).sum())
            state["target_tokens"] += target_tokens
            window_tokens += target_tokens + int((source != data.PAD_ID).sum())
            window_loss += loss.item()
            step_in_window += 1
            if args.benchmark_steps and state["local_step"] >= args.benchmark_steps:
                seconds = time.monotonic() - window_start
                log(f"benchmark: {step_in_window} steps, {seconds / step_in_window:.2f} s/step, "
                    f"{window_tokens / seconds:.0f} tokens/s (source + target, unpadded), "
                    f"threads {args.threads}, device {args.device}, bf16 {args.bf16}")
                return
            if state["global_step"] % args.log_every == 0:
                seconds = time.monotonic() - window_start
                log(f"step {state['global_step']} epoch {state['epoch']} "
                    f"loss {window_loss / step_in_window:.3f} lr {rate:.2e} "
                    f"{window_tokens / seconds:.0f} tok/s "
                    f"run {state['run_seconds'] / 60:.1f}/{args.minutes:.0f} min")
                window_tokens, window_loss, window_start = 0, 0.0, time.monotonic()
                step_in_window = 0
            if time.monotonic() - last_checkpoint >= args.checkpoint_minutes * 60:
                loss_dev = dev_loss(model, processor, dev_pairs, args.device)
                snapshots.append(snapshot(model))
                del snapshots[:-args.average]
                save_checkpoint(checkpoint_path, model, optimizer, state, config, snapshots)
                log(f"checkpoint at step {state['global_step']}: dev loss {loss_dev:.3f} "
                    f"(perplexity {math.exp(min(loss_dev, 50)):.1f})")
                last_checkpoint = time.monotonic()
                window_start = time.monotonic()
            if state["run_seconds"] >= budget:
                break
        else:
            state["epoch"] += 1
    snapshots.append(snapshot(model))
    del snapshots[:-args.average]
    save_checkpoint(checkpoint_path, model, optimizer, state, config, snapshots)
    log(f"training done: {state['global_step']} steps, epoch {state['epoch']}, "
        f"{state['run_seconds'] / 60:.1f} min this run, "
        f"{state['total_seconds'] / 60:.1f} min in total")


# ---------------------------------------------------------------------------------------
# Evaluation, export, promotion


def finish(args, log, model, state, config, sp_model, processor,
           snapshots: list[dict]) -> None:
    """Exports the averaged checkpoints, scores the candidate and the shipped model on the
    dev sets with the engine (same run, same sets), ships the candidate only if its mean dev
    chrF over the sets (evaluate.quality) is higher, then scores both on the test sets for
    the card."""
    if snapshots:
        model.load_state_dict(averaged(snapshots))
        log(f"exporting the average of the last {len(snapshots)} checkpoints")
    model.to("cpu")
    candidate = args.run_dir / "candidate.ptm"
    tensors = export_tensors(model)
    write_shipped_model(candidate, build_metadata(config, sp_model, processor, state), tensors)
    log(f"exported {candidate} ({candidate.stat().st_size / 1e6:.1f} MB)")

    loaded = corpora.load(args.data_dir, cedict_entries=args.cedict_entries)
    length_penalty, length_penalty_dev, candidate_dev = choose_length_penalty(
        candidate, loaded.dev, args.eval_threads, log,
        samples=args.run_dir / "dev_samples_candidate.txt")
    write_shipped_model(candidate, build_metadata(config, sp_model, processor, state,
                                                  length_penalty), tensors)
    log(f"exported {candidate} with length penalty {length_penalty}")
    shipped_path = args.weights_dir / "model.ptm"
    models = {"candidate": candidate}
    if shipped_path.exists():
        # The model this run would replace: the shipped one, unless this run shipped it (a
        # --finish-only rerun), whose predecessor previous.ptm kept. A previous.ptm left by
        # another run (a copied run directory) is replaced.
        previous = args.run_dir / "previous.ptm"
        if not previous.exists() or not _shipped_by(args.weights_dir, args.run_dir.name):
            shutil.copyfile(shipped_path, previous)
        models["shipped"] = previous
    scores: dict[str, dict] = {}
    for split, evalsets in (("dev", loaded.dev), ("test", loaded.test)):
        for name, path in models.items():
            start = time.monotonic()
            if name == "candidate" and split == "dev":  # scored while choosing its penalty
                scores.setdefault(name, {})[split] = candidate_dev
                continue
            scores.setdefault(name, {})[split] = evaluate.evaluate_model(
                path, evalsets, None, args.eval_threads,
                samples=args.run_dir / f"{split}_samples_{name}.txt")
            log(f"{split} {name}: quality {evaluate.quality(scores[name][split])} "
                f"({time.monotonic() - start:.0f} s); pooled {scores[name][split]['all']}")
        if split == "dev":
            (args.run_dir / "dev_table.md").write_text(evaluate.table(
                {name: result["dev"] for name, result in scores.items()}) + "\n")
    (args.run_dir / "test_table.md").write_text(evaluate.table(
        {name: result["test"] for name, result in scores.items()}) + "\n")

    record = {
        "run": args.run_dir.name,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": state["command"],
        "config": config.to_dict(),
        "protocol": "training/corpora.py",
        "data": loaded.report,
        "steps": state["global_step"],
        "run_minutes": round(state["run_seconds"] / 60, 1),
        "total_minutes": round(state["total_seconds"] / 60, 1),
        "device": args.device,
        "bf16": args.bf16,
        "target_tokens_seen": state["target_tokens"],
        "threads": args.threads,
        "dev": scores["candidate"]["dev"],
        "test": scores["candidate"]["test"],
        "previous_dev": scores.get("shipped", {}).get("dev"),
        "previous_test": scores.get("shipped", {}).get("test"),
        "quality": evaluate.quality(scores["candidate"]["dev"]),
        "length_penalty": length_penalty,
        "length_penalty_dev": length_penalty_dev,
    }
    previous_quality = (evaluate.quality(scores["shipped"]["dev"]) if "shipped" in scores
                        else None)
    record["shipped"] = previous_quality is None or record["quality"] > previous_quality
    if record["shipped"]:
        record["everyday_failures"] = everyday.failures(Translator(candidate, threads=1))
        record["shipped"] = not record["everyday_failures"]
    (args.run_dir / "scores.json").write_text(json.dumps(record, indent=2) + "\n")
    if record["shipped"]:
        args.weights_dir.mkdir(parents=True, exist_ok=True)
        temporary = args.weights_dir / "model.ptm.tmp"
        shutil.copyfile(candidate, temporary)
        os.replace(temporary, shipped_path)
        (args.weights_dir / "scores.json").write_text(json.dumps(record, indent=2) + "\n")
        log(f"shipped: mean dev chrF {record['quality']} beats {previous_quality}")
    elif record.get("everyday_failures"):
        log(f"not shipped: mean dev chrF {record['quality']} beats {previous_quality}, but "
            f"everyday input fails (training/everyday.py): {record['everyday_failures']}")
    else:
        log(f"not shipped: mean dev chrF {record['quality']} <= {previous_quality}")
    with (args.weights_dir / "training_log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def choose_length_penalty(candidate: Path, dev_sets: list, threads: int, log,
                          samples: Path | None = None) -> tuple[float, dict[str, float], dict]:
    """The LENGTH_PENALTIES entry with the best dev evaluate.bleu_chrf_quality (the first of
    equals), each one's as {penalty: quality}, and the chosen one's dev scores (its
    sample translations written to `samples`). Only the dev sets choose: the test sets stay
    untouched until the card's scores."""
    qualities: dict[str, float] = {}
    best, best_scores = None, None
    for penalty in LENGTH_PENALTIES:
        start = time.monotonic()
        trial_samples = None if samples is None else samples.with_suffix(".trial")
        result = evaluate.evaluate_model(candidate, dev_sets, None, threads,
                                         samples=trial_samples, length_penalty=penalty)
        qualities[str(penalty)] = evaluate.bleu_chrf_quality(result)
        log(f"dev candidate, length penalty {penalty}: quality {qualities[str(penalty)]} "
            f"({time.monotonic() - start:.0f} s)")
        if best is None or qualities[str(penalty)] > qualities[str(best)]:
            best, best_scores = penalty, result
            if trial_samples is not None:
                os.replace(trial_samples, samples)
    if samples is not None:
        samples.with_suffix(".trial").unlink(missing_ok=True)
    return best, qualities, best_scores


def _shipped_by(weights_dir: Path, run: str) -> bool:
    """Whether weights_dir's model was shipped by the run named `run` (its scores.json)."""
    scores = weights_dir / "scores.json"
    try:
        return json.loads(scores.read_text(encoding="utf-8")).get("run") == run
    except (OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.run_dir / "train.log")
    checkpoint_path = args.run_dir / "checkpoint.pt"
    shipped_path = args.weights_dir / "model.ptm"
    # A checkpoint, else the result.pt a --no-finish run left, else the start.pt that
    # --prepare-only wrote: each holds what this run continues from.
    checkpoint = None
    for name in ("checkpoint.pt", "result.pt", "start.pt"):
        if (args.run_dir / name).exists():
            checkpoint = torch.load(args.run_dir / name, map_location="cpu")
            checkpoint_path = args.run_dir / name
            break
    shipped = None
    if checkpoint is None and shipped_path.exists() and not args.from_scratch:
        shipped = read_shipped_model(shipped_path)
    sp_model, processor, examples, dev_pairs = prepare(args, log, shipped)

    vocab_size = processor.get_piece_size()
    if checkpoint is not None:
        config = ModelConfig(**checkpoint["config"])
        state = checkpoint["state"]
        log(f"resuming {checkpoint_path} at step {state['global_step']}, "
            f"{state['run_seconds'] / 60:.1f} min of this run done")
        command = " ".join([Path(sys.executable).name, "-m", "training.train"]
                           + (sys.argv[1:] if argv is None else argv))
        if not args.finish_only and command not in state["command"].split(" ; then "):
            state["command"] += " ; then " + command
    elif shipped is not None:
        config = config_from_metadata(shipped[0], args.dropout)
        config.vocab_size = vocab_size
        state = {"global_step": int(shipped[0].get("training.steps", args.warmup)),
                 "total_seconds": float(shipped[0].get("training.seconds", 0.0)),
                 "continued": True}
        log(f"continuing the shipped model {shipped_path} from step {state['global_step']}")
    else:
        config = ModelConfig(vocab_size=vocab_size, d_model=args.d_model,
                             encoder_layers=args.encoder_layers,
                             decoder_layers=args.decoder_layers, heads=args.heads,
                             ffn_dim=args.ffn_dim, dropout=args.dropout)
        state = {"global_step": 0, "total_seconds": 0.0, "continued": False}
    if checkpoint is None:
        state.update({"local_step": 0, "run_seconds": 0.0, "epoch": 0, "target_tokens": 0,
                      "command": " ".join([Path(sys.executable).name, "-m", "training.train"]
                                          + (sys.argv[1:] if argv is None else argv))})

    model = Seq2SeqTransformer(config, data.PAD_ID)
    snapshots: list[dict] = []
    if checkpoint is not None:
        model.load_state_dict({name: value.float() for name, value in
                               checkpoint["model"].items()})
        snapshots = checkpoint.get("snapshots", [])
    elif shipped is not None:
        if int(shipped[0]["model.source_vocab_size"]) == vocab_size and not args.new_vocab:
            load_exported_tensors(model, shipped[1])
        else:
            shared = transfer_embeddings(model, shipped, processor)
            log(f"new vocabulary of {vocab_size} pieces: {shared} shared with the shipped "
                f"model's, the others start from the mean of their old pieces")
    model.to(args.device)
    if args.bf16 and args.device == "cpu" and not cpu_has_fast_bf16():
        # Without AVX-512 torch multiplies bf16 in a scalar fallback: on an AVX2-only EPYC
        # (2026-12-07) a bf16 run took 5 minutes for its first 7 steps; float32 runs ~23
        # steps a minute there.
        log(f"--bf16 ignored: this CPU's torch kernels are "
            f"{torch.backends.cpu.get_cpu_capability()}, which multiply bf16 far slower than "
            f"float32; training in float32")
        args.bf16 = False
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    if checkpoint is not None and "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
    parameters = sum(p.numel() for p in model.parameters())
    log(f"model {config.to_dict()}: {parameters / 1e6:.2f}M parameters, threads {args.threads}, "
        f"device {args.device}, bf16 {args.bf16}")

    if args.prepare_only:
        # Weights only (f32, no optimizer): small enough to carry to another machine.
        torch.save({"model": snapshot(model), "state": state, "config": config.to_dict()},
                   args.run_dir / "start.pt")
        log(f"prepared {args.run_dir} (spm.model, examples.pt, start.pt)")
        return
    if not args.finish_only:
        train(args, log, model, optimizer, state, config, examples, processor, dev_pairs,
              snapshots)
        if args.benchmark_steps:
            return
    if args.no_finish:
        weights = averaged(snapshots) if snapshots else snapshot(model)
        torch.save({"model": {name: value.half() for name, value in weights.items()},
                    "state": state, "config": config.to_dict()}, args.run_dir / "result.pt")
        log(f"wrote {args.run_dir / 'result.pt'} (averaged weights, f16); finish with "
            f"--finish-only where the package and the corpora's tools are installed")
        return
    finish(args, log, model, state, config, sp_model, processor, snapshots)


if __name__ == "__main__":
    main()
