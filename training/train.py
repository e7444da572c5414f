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

import torch
from torch.nn import functional as F

from training import data
from training.model import (ModelConfig, Seq2SeqTransformer, export_tensors, greedy_decode,
                            load_exported_tensors)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DATA_LICENSE = ("Trained by the pytransformer project on Tatoeba sentence pairs "
                "(tatoeba.org, CC-BY 2.0 FR; credit: Tatoeba (tatoeba.org))")


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
    parser.add_argument("--include-wmt", action="store_true",
                        help="also train on WMT news pairs no longer than --wmt-max-chars")
    parser.add_argument("--wmt-max-chars", type=int, default=120)
    parser.add_argument("--dev-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--encoder-layers", type=int, default=3)
    parser.add_argument("--decoder-layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn-dim", type=int, default=1024)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=64,
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
                        help="evaluate and export the run's checkpoint without training")
    parser.add_argument("--eval-batch", type=int, default=64)
    return parser.parse_args(argv)


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


def import_format_module():
    """Returns pytransformer.format from the installed package.

    `python -m training.train` run from the repository root puts the source tree first on
    sys.path, and its pytransformer/ lacks the compiled extension the writer needs; in that
    case the installed package is imported instead.
    """
    try:
        import pytransformer._core  # noqa: F401
    except ImportError:
        sys.path[:] = [entry for entry in sys.path
                       if Path(entry or ".").resolve() != REPO_ROOT]
        for name in [name for name in sys.modules
                     if name == "pytransformer" or name.startswith("pytransformer.")]:
            del sys.modules[name]
    import pytransformer.format

    return pytransformer.format


def read_shipped_model(path: Path) -> tuple[dict, dict]:
    """Returns (metadata, tensors) of a .ptm file through pytransformer.format."""
    loaded = import_format_module().read_model(str(path))
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


def build_metadata(config: ModelConfig, sp_model: bytes, processor, state: dict,
                   scores: dict) -> dict:
    """The metadata of docs/format.md for our architecture, plus training provenance."""
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    language_ids = [data.language_token_id(processor, lang) for lang in data.LANGUAGES]
    sources = "Tatoeba cmn-eng" + (" + WMT news test sets (short pairs)"
                                   if state["include_wmt"] else "")
    return {
        "general.architecture": "transformer-seq2seq",
        "general.name": "pytransformer-en-zh-tiny",
        "general.source": f"trained by pytransformer training/train.py on {sources}",
        "general.converter": "pytransformer training/train.py",
        "general.license": DATA_LICENSE + (
            "; WMT news test sets (statmt.org, research use)" if state["include_wmt"] else ""),
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
        "generation.beam_size": 4,
        "generation.max_length": 128,
        "generation.length_penalty": 1.0,
        "generation.suppressed_ids": [data.PAD_ID, data.BOS_ID] + language_ids,
        "generation.forced_eos": True,
        "generation.search_convention": "transformers",
        "training.dev_size": int(state["dev_size"]),
        "training.dev_seed": int(state["dev_seed"]),
        "training.steps": int(state["global_step"]),
        "training.seconds": float(state["total_seconds"]),
        "training.dev_en_zh_bleu": float(scores["en-zh"]["bleu"]),
        "training.dev_en_zh_chrf": float(scores["en-zh"]["chrf"]),
        "training.dev_zh_en_bleu": float(scores["zh-en"]["bleu"]),
        "training.dev_zh_en_chrf": float(scores["zh-en"]["chrf"]),
    }


def write_shipped_model(path: Path, metadata: dict, tensors: dict) -> None:
    arrays = {}
    by_identity: dict[int, object] = {}
    for name, tensor in tensors.items():
        # Tied tensors stay one numpy object so the writer can store their bytes once.
        if id(tensor) not in by_identity:
            by_identity[id(tensor)] = tensor.numpy()
        arrays[name] = by_identity[id(tensor)]
    import_format_module().write_model(str(path), metadata, arrays)


# ---------------------------------------------------------------------------------------
# Data


def prepare(args: argparse.Namespace, log: RunLog, shipped: tuple[dict, dict] | None):
    """Returns (sp_model bytes, processor, train examples, dev pairs)."""
    pairs = data.read_tatoeba(args.data_dir / "tatoeba-cmn" / "cmn.txt")
    train_pairs, dev_pairs = data.split_dev(pairs, args.dev_size, args.seed)
    if args.include_wmt:
        wmt = data.read_wmt(args.data_dir / "wmt-zh-en", args.wmt_max_chars)
        log(f"WMT pairs of at most {args.wmt_max_chars} characters: {len(wmt)}")
        train_pairs = train_pairs + wmt
    sp_path = args.run_dir / "spm.model"
    if sp_path.exists():
        sp_model = sp_path.read_bytes()
    elif shipped is not None:
        sp_model = shipped[0]["tokenizer.source_model"]
        sp_path.write_bytes(sp_model)
        log("SentencePiece model taken from the shipped model")
    else:
        sp_model = data.train_sentencepiece(train_pairs, args.run_dir / "spm", args.vocab_size)
        log(f"trained SentencePiece model, {args.vocab_size} pieces")
    processor = data.load_sentencepiece(sp_model)
    examples = data.make_examples(processor, train_pairs, args.max_length)
    with (args.run_dir / "dev.tsv").open("w", encoding="utf-8") as handle:
        for pair in dev_pairs:
            handle.write(f"{pair.en}\t{pair.zh}\n")
    tokens = sum(len(ex.source) + len(ex.target) for ex in examples)
    log(f"{len(pairs)} Tatoeba pairs: {len(dev_pairs)} dev, {len(train_pairs)} train; "
        f"{len(examples)} training examples (both directions), {tokens} tokens per epoch")
    return sp_model, processor, examples, dev_pairs


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


def pad_sources(sequences: list[list[int]]) -> torch.Tensor:
    length = max(len(seq) for seq in sequences)
    source = torch.full((len(sequences), length), data.PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        source[row, : len(seq)] = torch.tensor(seq)
    return source


# ---------------------------------------------------------------------------------------
# Training


def learning_rate(args: argparse.Namespace, global_step: int, local_step: int,
                  continued: bool) -> float:
    """Linear warmup then inverse square root decay; a short re-warmup when a shipped model
    is continued with a fresh optimizer."""
    step = max(global_step, 1)
    rate = args.lr * min(step / args.warmup, math.sqrt(args.warmup / step))
    if continued:
        rate *= min(1.0, max(local_step, 1) / args.rewarmup)
    return rate


def save_checkpoint(path: Path, model, optimizer, state: dict, config: ModelConfig) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "state": state, "config": config.to_dict()}, temporary)
    os.replace(temporary, path)


@torch.no_grad()
def dev_loss(model, processor, dev_pairs: list[data.Pair]) -> float:
    model.eval()
    examples = data.make_examples(processor, dev_pairs, 10_000)
    total, count = 0.0, 0
    for start in range(0, len(examples), 64):
        source, decoder_input, labels = collate(examples[start:start + 64])
        logits = model(source, decoder_input)
        total += F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=data.PAD_ID,
                                 reduction="sum").item()
        count += int((labels != data.PAD_ID).sum())
    model.train()
    return total / max(count, 1)


def train(args, log, model, optimizer, state, config, examples, processor, dev_pairs):
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
            source, decoder_input, labels = collate(batch)
            rate = learning_rate(args, state["global_step"] + 1, state["local_step"] + 1,
                                 state["continued"])
            for group in optimizer.param_groups:
                group["lr"] = rate
            logits = model(source, decoder_input)
            loss = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=data.PAD_ID,
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
                    f"threads {args.threads}")
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
                loss_dev = dev_loss(model, processor, dev_pairs)
                save_checkpoint(checkpoint_path, model, optimizer, state, config)
                log(f"checkpoint at step {state['global_step']}: dev loss {loss_dev:.3f} "
                    f"(perplexity {math.exp(min(loss_dev, 50)):.1f})")
                last_checkpoint = time.monotonic()
                window_start = time.monotonic()
            if state["run_seconds"] >= budget:
                break
        else:
            state["epoch"] += 1
    save_checkpoint(checkpoint_path, model, optimizer, state, config)
    log(f"training done: {state['global_step']} steps, epoch {state['epoch']}, "
        f"{state['run_seconds'] / 60:.1f} min this run, "
        f"{state['total_seconds'] / 60:.1f} min in total")


# ---------------------------------------------------------------------------------------
# Evaluation, export, promotion


def translate(model, processor, texts: list[str], target_language: str,
              batch_size: int) -> list[str]:
    suppressed = [data.PAD_ID, data.BOS_ID] + [
        data.language_token_id(processor, lang) for lang in data.LANGUAGES]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        sources = [data.encode_source(processor, texts[i], target_language)[: model.config.max_positions]
                   for i in indices]
        # Up to twice the longest source plus 10 new tokens (the engine's default allows
        # 128): only a degenerate, repeating output is cut short, and evaluation stays fast.
        limit = min(128, 2 * max(len(source) for source in sources) + 10)
        decoded = greedy_decode(model, pad_sources(sources), data.BOS_ID, data.EOS_ID,
                                max_length=limit, suppressed_ids=suppressed)
        for index, ids in zip(indices, decoded):
            outputs[index] = processor.decode(ids)
    return outputs


def evaluate(model, processor, dev_pairs: list[data.Pair], batch_size: int,
             log: RunLog, samples_path: Path) -> dict:
    import sacrebleu

    english = [pair.en for pair in dev_pairs]
    chinese = [pair.zh for pair in dev_pairs]
    scores = {}
    with samples_path.open("w", encoding="utf-8") as samples:
        for direction, sources, references, target, tokenize in (
                ("en-zh", english, chinese, "zh", "zh"),
                ("zh-en", chinese, english, "en", "13a")):
            hypotheses = translate(model, processor, sources, target, batch_size)
            bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize)
            chrf = sacrebleu.corpus_chrf(hypotheses, [references])
            scores[direction] = {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2),
                                 "sentences": len(sources)}
            log(f"dev {direction}: BLEU {bleu.score:.2f} chrF {chrf.score:.2f} "
                f"({len(sources)} sentences, greedy)")
            for source, hypothesis, reference in list(zip(sources, hypotheses, references))[:40]:
                samples.write(f"[{direction}] {source}\n  -> {hypothesis}\n  ref {reference}\n")
    return scores


def quality(scores: dict) -> float:
    """The number a new model must beat to ship: mean chrF over both directions."""
    return (scores["en-zh"]["chrf"] + scores["zh-en"]["chrf"]) / 2


def finish(args, log, model, state, config, sp_model, processor, dev_pairs) -> None:
    scores = evaluate(model, processor, dev_pairs, args.eval_batch, log,
                      args.run_dir / "dev_samples.txt")
    record = {
        "run": args.run_dir.name,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": state["command"],
        "config": config.to_dict(),
        "include_wmt": state["include_wmt"],
        "steps": state["global_step"],
        "run_minutes": round(state["run_seconds"] / 60, 1),
        "total_minutes": round(state["total_seconds"] / 60, 1),
        "target_tokens_seen": state["target_tokens"],
        "threads": args.threads,
        "dev": scores,
        "quality": round(quality(scores), 2),
    }
    (args.run_dir / "scores.json").write_text(json.dumps(record, indent=2) + "\n")
    candidate = args.run_dir / "candidate.ptm"
    metadata = build_metadata(config, sp_model, processor, state, scores)
    try:
        write_shipped_model(candidate, metadata, export_tensors(model))
    except Exception as error:  # the writer may be unavailable; the checkpoint stays usable
        log(f"export failed ({type(error).__name__}: {error}); rerun with --finish-only")
        record["shipped"] = False
        record["export_error"] = str(error)
        return
    log(f"exported {candidate} ({candidate.stat().st_size / 1e6:.1f} MB)")
    shipped_scores_path = args.weights_dir / "scores.json"
    shipped = (json.loads(shipped_scores_path.read_text())
               if shipped_scores_path.exists() else None)
    record["shipped"] = shipped is None or record["quality"] > shipped["quality"]
    if record["shipped"]:
        args.weights_dir.mkdir(parents=True, exist_ok=True)
        temporary = args.weights_dir / "model.ptm.tmp"
        shutil.copyfile(candidate, temporary)
        os.replace(temporary, args.weights_dir / "model.ptm")
        shipped_scores_path.write_text(json.dumps(record, indent=2) + "\n")
        log(f"shipped: mean dev chrF {record['quality']} beats "
            f"{shipped['quality'] if shipped else 'no shipped model'}")
    else:
        log(f"not shipped: mean dev chrF {record['quality']} <= {shipped['quality']}")
    with (args.weights_dir / "training_log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.run_dir / "train.log")
    checkpoint_path = args.run_dir / "checkpoint.pt"
    shipped_path = args.weights_dir / "model.ptm"
    checkpoint = torch.load(checkpoint_path) if checkpoint_path.exists() else None
    shipped = None
    if checkpoint is None and shipped_path.exists() and not args.from_scratch:
        shipped = read_shipped_model(shipped_path)
        # The dev split must stay the one the shipped model never saw.
        args.dev_size = int(shipped[0].get("training.dev_size", args.dev_size))
        args.seed = int(shipped[0].get("training.dev_seed", args.seed))
    elif checkpoint is not None:
        args.dev_size = checkpoint["state"].get("dev_size", args.dev_size)
        args.seed = checkpoint["state"].get("dev_seed", args.seed)
    sp_model, processor, examples, dev_pairs = prepare(args, log, shipped)

    if checkpoint is not None:
        config = ModelConfig(**checkpoint["config"])
        state = checkpoint["state"]
        log(f"resuming {checkpoint_path} at step {state['global_step']}, "
            f"{state['run_seconds'] / 60:.1f} min of this run done")
    elif shipped is not None:
        config = config_from_metadata(shipped[0], args.dropout)
        state = {"global_step": int(shipped[0].get("training.steps", args.warmup)),
                 "total_seconds": float(shipped[0].get("training.seconds", 0.0)),
                 "continued": True}
        log(f"continuing the shipped model {shipped_path} from step {state['global_step']}")
    else:
        config = ModelConfig(vocab_size=processor.get_piece_size(), d_model=args.d_model,
                             encoder_layers=args.encoder_layers,
                             decoder_layers=args.decoder_layers, heads=args.heads,
                             ffn_dim=args.ffn_dim, dropout=args.dropout)
        state = {"global_step": 0, "total_seconds": 0.0, "continued": False}
    state.setdefault("dev_size", args.dev_size)
    state.setdefault("dev_seed", args.seed)
    if checkpoint is None:
        state.update({"local_step": 0, "run_seconds": 0.0, "epoch": 0, "target_tokens": 0,
                      "include_wmt": args.include_wmt,
                      "command": " ".join([Path(sys.executable).name, "-m", "training.train"]
                                          + (sys.argv[1:] if argv is None else argv))})

    model = Seq2SeqTransformer(config, data.PAD_ID)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    elif shipped is not None:
        load_exported_tensors(model, shipped[1])
    parameters = sum(p.numel() for p in model.parameters())
    log(f"model {config.to_dict()}: {parameters / 1e6:.2f}M parameters, threads {args.threads}")

    if not args.finish_only:
        train(args, log, model, optimizer, state, config, examples, processor, dev_pairs)
        if args.benchmark_steps:
            return
    finish(args, log, model, state, config, sp_model, processor, dev_pairs)


if __name__ == "__main__":
    main()
