"""The built-in embedder's two variants (issue 12): the default ("e5": bf16 matmuls in token-count batches)
and the plain fp32 path ("e5-fp32"). Both load from the same plain folder without remote code, agree on real
report units, and never share embedding-cache entries or index manifests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from qa.e5model import e5_model_id
from qa.embeddings import (
    EmbeddingCache,
    bf16_matmuls,
    default_cache_dir,
    embed_cached,
    encode_passages,
    encode_queries,
    load_embedder,
    model_digest,
    model_id,
    needs_code,
    precision,
    spec_model_id,
    token_batches,
    token_counts,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models():  # type: ignore[no-untyped-def]
    return load_embedder("e5", cache_dir=default_cache_dir()), load_embedder("e5-fp32", cache_dir=default_cache_dir())


@pytest.fixture(scope="module")
def units() -> list[str]:
    """Real units of the five reports, as a build embeds them: every 60th, plus the 8 longest in tokens."""
    from qa.chunking import chunk_card
    from qa.index import card_id_for, corpus_files
    from qa.parsing import parse_card
    from qa.reading import read_source

    texts: list[str] = []
    for path in corpus_files(ROOT / "corpora"):
        source = read_source(path)
        card = parse_card(source, card_id=card_id_for(path), relative_to=ROOT)
        texts += [c.search_text for c in chunk_card(card, source)]
    texts = list(dict.fromkeys(texts))
    longest = sorted(texts, key=len, reverse=True)[:8]
    return list(dict.fromkeys(texts[::60] + longest))


def test_both_variants_load_from_the_plain_folder_without_remote_code(models) -> None:  # type: ignore[no-untyped-def]
    default, fp32 = models
    folder = default_cache_dir() / e5_model_id()
    assert needs_code(folder) == [] and not list(folder.rglob("*.py"))
    assert not [m for m in sys.modules if m.startswith("transformers_modules")]  # no remote code was imported
    for model in models:
        assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
        assert model._qa_folder == folder
    assert (precision(default), precision(fp32)) == ("bf16", "fp32")
    # the default keeps the id earlier indexes were built under; fp32 has its own
    assert model_id(default) == spec_model_id("e5") == spec_model_id(None) == e5_model_id()
    assert model_id(fp32) == spec_model_id("e5-fp32") != model_id(default)


def test_default_vectors_match_fp32_on_real_units(models, units: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Cosine ≥ 0.99 to the plain fp32 path, on passages (the longest units included) and on questions
    (measured over all 2,709 units: min 0.9999)."""
    default, fp32 = models
    assert len(units) >= 50
    a, b = encode_passages(default, units), encode_passages(fp32, units)
    cos = (a * b).sum(1)
    assert cos.min() >= 0.99, units[int(cos.argmin())]
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-4)
    questions = ["生活保護関係情報を受け取る提供先はどこか", "松戸市の住民基本台帳の委託先は？",
                 "Who can I contact about Toyonaka's report?", "保管期間はどれくらいか"]
    q = (encode_queries(default, questions) * encode_queries(fp32, questions)).sum(1)
    assert q.min() >= 0.99


def test_the_default_holds_bf16_weights_where_the_cpu_has_bf16_matmuls(models) -> None:  # type: ignore[no-untyped-def]
    """The default's linear layers hold bf16 weights (qa.bf16), so a question is embedded without autocast's
    per-call casts; its vectors then differ from fp32 in the last bits. The fp32 variant keeps nn.Linear."""
    from torch import nn

    from qa.bf16 import Bf16Linear

    default, fp32 = models
    kinds = {type(m) for m in default.modules()} & {nn.Linear, Bf16Linear}
    assert kinds == ({Bf16Linear} if bf16_matmuls() else {nn.Linear})
    assert Bf16Linear not in {type(m) for m in fp32.modules()}
    questions = ["委託先の名称は何か", "How long is the data kept?"]
    a, b = encode_queries(default, questions), encode_queries(fp32, questions)
    assert (a * b).sum(1).min() >= 0.9999
    assert np.array_equal(a, b) != bf16_matmuls()


def test_batches_follow_token_counts(models, units: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Every unit lands in exactly one batch, longest first, with less padding than sentence-transformers'
    batches by characters (which sort the reports' units badly: see token_batches)."""
    default, _ = models
    counts = np.asarray(token_counts(default, units))
    batches = token_batches(default, units, 8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(units)))
    assert all(len(b) <= 8 for b in batches)
    maxima = [int(counts[b].max()) for b in batches]
    assert maxima == sorted(maxima, reverse=True)
    padded = sum(int(counts[b].max()) * len(b) for b in batches)
    by_chars = np.argsort([-len(t) for t in units], kind="stable")  # sentence-transformers' own order
    padded_by_chars = sum(int(counts[by_chars[i : i + 8]].max()) * len(by_chars[i : i + 8]) for i in range(0, len(units), 8))
    assert padded < padded_by_chars
    # the counts are the tokenizer's, even after a padded call left padding switched on in its backend
    pair = ["短い", "もう少し長い文です、委託先は株式会社"]
    default.tokenizer(pair, padding=True)
    got = token_counts(default, pair)
    assert got == [len(default.tokenizer(t)["input_ids"]) for t in pair] and got[0] < got[1]


def test_embedding_cache_never_mixes_the_variants(models, units: list[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    default, fp32 = models
    texts = units[:4]
    key_default = EmbeddingCache(tmp_path, model_id(default), model_digest(default))
    key_fp32 = EmbeddingCache(tmp_path, model_id(fp32), model_digest(fp32))
    assert key_default.path != key_fp32.path
    _, n1 = embed_cached(default, texts, key_default)
    _, n2 = embed_cached(fp32, texts, EmbeddingCache(tmp_path, model_id(fp32), model_digest(fp32)))
    _, n3 = embed_cached(default, texts, EmbeddingCache(tmp_path, model_id(default), model_digest(default)))
    assert (n1, n2, n3) == (4, 4, 0)  # fp32 re-embeds what the default cached, and the reverse holds too
    assert len(list(tmp_path.glob("*.npz"))) == 2
