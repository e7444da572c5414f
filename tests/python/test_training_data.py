"""The training pipeline: data split, SentencePiece ids, batching, and the exported weights.

The last test recomputes the exported model's logits with numpy directly from the tensor
names and metadata of docs/format.md, independently of the torch module, so a mismatch
between what the trainer learns and what the metadata promises to the engine fails here.
Skipped without the [train] extra (torch, sentencepiece).
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from training import data  # noqa: E402
from training import model as model_module  # noqa: E402
from training import train as train_module  # noqa: E402

ENGLISH = ["I like tea.", "She runs every day.", "The cat is black.", "We are friends.",
           "Where is the station?", "He reads a book.", "It is raining.", "Thank you.",
           "I am hungry.", "Open the door."]
CHINESE = ["我喜欢茶。", "她每天跑步。", "猫是黑色的。", "我们是朋友。", "车站在哪里？",
           "他在看书。", "下雨了。", "谢谢你。", "我饿了。", "开门。"]


@pytest.fixture(scope="module")
def pairs() -> list:
    result = [data.Pair(en, zh) for en, zh in zip(ENGLISH, CHINESE)]
    # A second translation of one sentence: the split must keep both on one side.
    result.append(data.Pair("I like tea.", "我爱喝茶。"))
    return result


@pytest.fixture(scope="module")
def sentencepiece_model(pairs, tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("spm")
    return data.train_sentencepiece(pairs * 20, folder / "spm", vocab_size=330)


@pytest.fixture(scope="module")
def processor(sentencepiece_model):
    return data.load_sentencepiece(sentencepiece_model)


def test_read_tatoeba_skips_malformed_lines(tmp_path):
    path = tmp_path / "cmn.txt"
    path.write_text("Hi.\t你好。\tCC-BY attribution\nbroken line\n\t空\t\nRun.\t跑。\tx\n",
                    encoding="utf-8")
    assert data.read_tatoeba(path) == [data.Pair("Hi.", "你好。"), data.Pair("Run.", "跑。")]


def test_dev_split_is_fixed_and_disjoint(pairs):
    train, dev = data.split_dev(pairs, dev_size=4, seed=7)
    assert len(dev) >= 4
    assert data.split_dev(pairs, dev_size=4, seed=7) == (train, dev)
    assert not {p.en for p in train} & {p.en for p in dev}
    assert not {p.zh for p in train} & {p.zh for p in dev}
    assert len(train) + len(dev) == len(pairs)


def test_special_ids_and_language_tokens(processor):
    assert processor.id_to_piece(data.PAD_ID) == "<pad>"
    assert processor.id_to_piece(data.EOS_ID) == "</s>"
    source = data.encode_source(processor, "I like tea.", "zh")
    assert source[0] == processor.piece_to_id(">>zh<<")
    assert source[-1] == data.EOS_ID
    assert data.LANGUAGE_TOKENS["zh"] not in processor.encode("I like tea.", out_type=str)
    target = data.encode_target(processor, "我喜欢茶。")
    assert processor.decode(target[:-1]) == "我喜欢茶。"


def test_examples_cover_both_directions(processor, pairs):
    examples = data.make_examples(processor, pairs[:3], max_length=64)
    assert len(examples) == 6
    first_tokens = {processor.id_to_piece(ex.source[0]) for ex in examples}
    assert first_tokens == {">>en<<", ">>zh<<"}
    assert data.make_examples(processor, pairs[:3], max_length=2) == []


def test_casual_examples_take_lowercase_unpunctuated_sources_to_written_targets(processor):
    long_sentence = data.Pair("We go to the park every day after work.", "我们每天下班后去公园。")
    examples = data.make_casual_examples(
        processor, [data.Pair("Thank you.", "谢谢你。"), long_sentence,
                    data.Pair("run", "跑")], max_length=64)
    decoded = {(processor.id_to_piece(ex.source[0]), processor.decode(ex.source[1:-1]),
                processor.decode(ex.target[:-1])) for ex in examples}
    # The long pair is left out, and "run"/"跑" is already casual in both directions.
    assert decoded == {(">>zh<<", "thank you", "谢谢你。"), (">>en<<", "谢谢你", "Thank you.")}


def test_token_batches_hold_every_example_once_within_budget(processor, pairs):
    examples = data.make_examples(processor, pairs * 5, max_length=64)
    batches = list(data.token_batches(examples, max_tokens=60, rng=random.Random(3)))
    assert sorted(id(ex) for batch in batches for ex in batch) == sorted(map(id, examples))
    for batch in batches:
        longest = max(max(len(ex.source), len(ex.target) + 1) for ex in batch)
        assert len(batch) == 1 or longest * len(batch) <= 60


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta


def _attention(t, prefix, query, memory, heads, causal):
    def project(x, name):
        return x @ t[f"{prefix}_{name}.weight"].T + t[f"{prefix}_{name}.bias"]

    q, k, v = project(query, "q"), project(memory, "k"), project(memory, "v")
    head_dim = q.shape[-1] // heads
    outputs = []
    for h in range(heads):
        cols = slice(h * head_dim, (h + 1) * head_dim)
        scores = q[:, cols] @ k[:, cols].T / math.sqrt(head_dim)
        if causal:
            scores = scores + np.triu(np.full(scores.shape, -np.inf), 1)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        outputs.append(weights @ v[:, cols])
    return np.concatenate(outputs, -1) @ t[f"{prefix}_out.weight"].T + t[f"{prefix}_out.bias"]


def _positions(length, d, offset, layout, frequencies):
    half = d // 2
    i = np.arange(half, dtype=np.float64)
    f = 10000.0 ** (-i / (half - 1)) if frequencies == "tensor2tensor" else 10000.0 ** (-2 * i / d)
    angles = (np.arange(length) + offset)[:, None] * f[None, :]
    table = np.zeros((length, d))
    if layout == "halves":
        table[:, :half], table[:, half:] = np.sin(angles), np.cos(angles)
    else:
        table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table


def _reference_logits(t, meta, source, decoder_input):
    """Single-sequence forward pass written from docs/format.md (pre-norm stacks)."""
    assert meta["model.pre_norm"] and not meta["model.embedding_norm"]
    d, eps = meta["model.d_model"], meta["model.layer_norm_epsilon"]
    relu = meta["model.activation"] == "relu"
    assert relu

    def embed(name, ids):
        x = t[f"{name}.embed.weight"][ids]
        if meta["model.scale_embedding"]:
            x = x * math.sqrt(d)
        return x + _positions(len(ids), d, meta["model.position_offset"],
                              meta["model.position_layout"], meta["model.position_frequencies"])

    def ffn(prefix, x):
        hidden = np.maximum(x @ t[f"{prefix}.ffn_up.weight"].T + t[f"{prefix}.ffn_up.bias"], 0)
        return hidden @ t[f"{prefix}.ffn_down.weight"].T + t[f"{prefix}.ffn_down.bias"]

    def norm(name, x):
        return _layer_norm(x, t[f"{name}.gamma"], t[f"{name}.beta"], eps)

    x = embed("enc", source)
    for i in range(meta["model.encoder_layers"]):
        p = f"enc.{i}"
        normed = norm(f"{p}.attn_self_norm", x)
        x = x + _attention(t, f"{p}.attn_self", normed, normed,
                           meta["model.encoder_heads"], False)
        x = x + ffn(p, norm(f"{p}.ffn_norm", x))
    memory = norm("enc.final_norm", x)
    y = embed("dec", decoder_input)
    for i in range(meta["model.decoder_layers"]):
        p = f"dec.{i}"
        normed = norm(f"{p}.attn_self_norm", y)
        y = y + _attention(t, f"{p}.attn_self", normed, normed,
                           meta["model.decoder_heads"], True)
        y = y + _attention(t, f"{p}.attn_cross", norm(f"{p}.attn_cross_norm", y), memory,
                           meta["model.decoder_heads"], False)
        y = y + ffn(p, norm(f"{p}.ffn_norm", y))
    return norm("dec.final_norm", y) @ t["dec.out_proj.weight"].T


def test_exported_tensors_and_metadata_reproduce_the_torch_model(processor):
    config = model_module.ModelConfig(vocab_size=processor.get_piece_size(), d_model=32,
                                      encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=48,
                                      max_positions=64, dropout=0.0)
    torch.manual_seed(0)
    net = model_module.Seq2SeqTransformer(config, data.PAD_ID)
    with torch.no_grad():  # non-trivial norms and biases
        for name, parameter in net.named_parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    net.eval()
    state = {"global_step": 3, "total_seconds": 1.0}
    meta = train_module.build_metadata(config, b"", processor, state)
    tensors = {name: value.numpy().astype(np.float64)
               for name, value in model_module.export_tensors(net).items()}

    source = data.encode_source(processor, "I like tea.", "zh")
    decoder_input = [data.BOS_ID] + data.encode_target(processor, "我喜欢茶。")[:-1]
    with torch.no_grad():
        expected = net(torch.tensor([source]), torch.tensor([decoder_input]))[0].numpy()
    actual = _reference_logits(tensors, meta, np.array(source), np.array(decoder_input))
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)

    # The exported tensors load back into a fresh module unchanged.
    fresh = model_module.Seq2SeqTransformer(config, data.PAD_ID)
    model_module.load_exported_tensors(fresh, model_module.export_tensors(net))
    fresh.eval()
    with torch.no_grad():
        again = fresh(torch.tensor([source]), torch.tensor([decoder_input]))[0].numpy()
    np.testing.assert_array_equal(again, expected)
    assert meta["vocab.source"][data.EOS_ID] == "</s>"
    assert len(meta["vocab.source"]) == meta["model.source_vocab_size"]


def test_length_penalty_is_chosen_on_dev_and_written_as_the_default(processor,
                                                                   sentencepiece_model,
                                                                   tmp_path):
    """The finished run's length penalty: the LENGTH_PENALTIES entry with the best dev BLEU and
    chrF, scored by the engine; the file exported with it scores exactly that by its own
    defaults."""
    from training import corpora, evaluate

    config = model_module.ModelConfig(vocab_size=processor.get_piece_size(), d_model=32,
                                      encoder_layers=1, decoder_layers=1, heads=4, ffn_dim=48,
                                      max_positions=160, dropout=0.0)
    torch.manual_seed(1)
    tensors = model_module.export_tensors(model_module.Seq2SeqTransformer(config, data.PAD_ID))
    state = {"global_step": 3, "total_seconds": 1.0}
    candidate = tmp_path / "candidate.ptm"
    train_module.write_shipped_model(
        candidate, train_module.build_metadata(config, sentencepiece_model, processor, state), tensors)
    dev_sets = [corpora.EvalSet("toy", "en", "zh", ENGLISH, CHINESE),
                corpora.EvalSet("toy", "zh", "en", CHINESE, ENGLISH)]
    samples = tmp_path / "dev_samples.txt"
    best, qualities, best_scores = train_module.choose_length_penalty(
        candidate, dev_sets, 1, lambda message: None, samples=samples)

    assert list(qualities) == [str(p) for p in train_module.LENGTH_PENALTIES]
    first_best = next(p for p in train_module.LENGTH_PENALTIES
                      if qualities[str(p)] == max(qualities.values()))
    assert best == first_best
    assert best_scores == evaluate.evaluate_model(candidate, dev_sets, None, 1,
                                                  length_penalty=best)
    assert samples.exists() and not samples.with_suffix(".trial").exists()
    train_module.write_shipped_model(
        candidate, train_module.build_metadata(config, sentencepiece_model, processor, state, best),
        tensors)
    assert evaluate.evaluate_model(candidate, dev_sets, None, 1) == best_scores


def test_model_card_takes_every_number_from_the_run_log(tmp_path):
    from training import model_card

    config = model_module.ModelConfig().to_dict()
    old = {"run": "run1", "command": "python -m training.train --run-dir r --minutes 5",
           "config": config, "steps": 1234, "run_minutes": 5.0, "total_minutes": 5.0,
           "shipped": True, "dev": {"en-zh": {"bleu": 11.11, "chrf": 22.22},
                                    "zh-en": {"bleu": 33.33, "chrf": 44.44}}}
    scores = {"msctd": {"en-zh": {"bleu": 1.25, "chrf": 2.5}},
              "all": {"en-zh": {"bleu": 1.25, "chrf": 2.5}}}
    previous = {"msctd": {"en-zh": {"bleu": 0.5, "chrf": 0.75}},
                "all": {"en-zh": {"bleu": 0.5, "chrf": 0.75}}}
    new = {"run": "run2", "command": "python -m training.train --run-dir s --bf16",
           "config": config, "steps": 2345, "run_minutes": 7.0, "total_minutes": 12.0,
           "device": "cpu", "bf16": True, "shipped": True, "dev": scores, "test": scores,
           "previous_test": previous, "data": {"msctd.read": 70148, "msctd.kept": 68615},
           "length_penalty": 1.4, "length_penalty_dev": {"1.0": 25.44, "1.4": 26.0}}
    log = tmp_path / "training_log.jsonl"
    log.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n", encoding="utf-8")
    card = model_card.render(log, recase=("96.2%", "77.6%"))
    assert "| run1 | 11.11 | 22.22 | 33.33 | 44.44 |" in card
    assert "| 1234 | 5.0 | 5.0 | cpu | 1 | yes |" in card
    assert "| 2345 | 7.0 | 12.0 | cpu bf16 | 1 | yes |" in card
    assert "| msctd | en-zh | 1.25 | 2.50 | 0.50 | 0.75 |" in card
    assert "| MSCTD | 70148 | 68615 |" in card
    assert "96.2%" in card and "12.0 minutes of CPU training" in card
    assert "length penalty 1.4," in card and "(run2): 1.0 25.44, 1.4 26.00." in card
    for credit in ("Tatoeba (tatoeba.org)", "CC BY-SA 4.0", "MSCTD", "3AM"):
        assert credit in card
    parameters = sum(p.numel() for p in
                     model_module.Seq2SeqTransformer(model_module.ModelConfig(), 0).parameters())
    assert f"{parameters / 1e6:.2f}M parameters" in card
    # The gains over the model shipped before the protocol (run1), set by set.
    assert "BLEU gained by the shipped file over `run1`" in card and "| msctd | +0.75 | - |" in card
    # A later run: its table adds run1's column beside the run it replaced.
    later = dict(new, run="run3", test={"msctd": {"en-zh": {"bleu": 9.5, "chrf": 9.0}}},
                 previous_test=scores)
    log.write_text("\n".join(json.dumps(run) for run in (old, new, later)) + "\n",
                   encoding="utf-8")
    card = model_card.render(log, recase=("96.2%", "77.6%"))
    assert "| msctd | en-zh | 9.50 | 9.00 | 1.25 | 2.50 | 0.50 | 0.75 |" in card
    assert "| msctd | +9.00 | - |" in card


def test_examples_cache_round_trips(tmp_path, processor, pairs):
    examples = data.make_examples(processor, pairs, max_length=64)
    train_module.save_examples(tmp_path / "examples.pt", examples, pairs[:2])
    assert train_module.load_examples(tmp_path / "examples.pt") == (examples, pairs[:2])


def test_new_vocabulary_keeps_shared_pieces_and_the_layers(processor, pairs, tmp_path):
    """Continuing under a new vocabulary: a shared piece keeps its row, the layers are the
    shipped ones, a new piece starts from its old pieces' mean."""
    old_config = model_module.ModelConfig(vocab_size=processor.get_piece_size(), d_model=16,
                                          encoder_layers=1, decoder_layers=1, heads=2,
                                          ffn_dim=24, max_positions=32, dropout=0.0)
    torch.manual_seed(1)
    old_net = model_module.Seq2SeqTransformer(old_config, data.PAD_ID)
    old_tensors = model_module.export_tensors(old_net)
    bigger = data.load_sentencepiece(data.train_sentencepiece(
        pairs * 30 + [data.Pair("Good morning, teacher.", "老师早上好。"),
                      data.Pair("Tomorrow we travel to Beijing.", "明天我们去北京旅行。")] * 30,
        tmp_path / "bigger", vocab_size=345))
    metadata = {"tokenizer.source_model": processor.serialized_model_proto()}
    config = model_module.ModelConfig(**{**old_config.to_dict(),
                                         "vocab_size": bigger.get_piece_size()})
    net = model_module.Seq2SeqTransformer(config, data.PAD_ID)
    shared = train_module.transfer_embeddings(net, (metadata, old_tensors), bigger)
    assert 6 < shared < bigger.get_piece_size()
    new_tensors = model_module.export_tensors(net)
    torch.testing.assert_close(new_tensors["enc.0.ffn_up.weight"],
                               old_tensors["enc.0.ffn_up.weight"])
    for special in (data.EOS_ID, processor.piece_to_id(">>zh<<")):
        torch.testing.assert_close(new_tensors["enc.embed.weight"][special],
                                   old_tensors["enc.embed.weight"][special])
    for piece_id in range(bigger.get_piece_size()):
        text = bigger.id_to_piece(piece_id)
        if processor.piece_to_id(text) == data.UNK_ID and not bigger.is_byte(piece_id) \
                and text != "<unk>" and "\u2581" not in text:
            word_start = processor.piece_to_id("\u2581")
            old_ids = [i for i in processor.encode(text) if i != word_start]
            expected = old_tensors["enc.embed.weight"][old_ids].mean(dim=0)
            torch.testing.assert_close(new_tensors["enc.embed.weight"][piece_id], expected)
            break
    else:
        pytest.fail("the bigger vocabulary has no piece the old one lacks")
