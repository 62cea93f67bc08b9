"""Passages embedded by one worker per core (qa.embed_workers): the same vectors as one worker, every row
filled, a failure in a worker raised in the caller, and the caller's thread count left as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import qa.embed_workers as embed_workers
from qa.embed_workers import document_prompt, worker_plan
from qa.embeddings import default_cache_dir, encode_passages, load_embedder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return load_embedder(None, cache_dir=default_cache_dir())


@pytest.fixture(scope="module")
def units() -> list[str]:
    """Real units of one report as a build embeds them: every 12th of 001, plus its longest."""
    from qa.chunking import chunk_card
    from qa.index import card_id_for, corpus_files
    from qa.parsing import parse_card
    from qa.reading import read_source

    path = next(p for p in corpus_files(ROOT / "corpora") if p.name.startswith("001"))
    source = read_source(path)
    texts = [c.search_text for c in chunk_card(parse_card(source, card_id=card_id_for(path), relative_to=ROOT), source)]
    return list(dict.fromkeys(texts[::12] + sorted(texts, key=len)[-3:]))


def test_workers_give_the_vectors_one_worker_gives(model, units, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    before = torch.get_num_threads()
    assert worker_plan()[0] >= 1
    monkeypatch.setattr(embed_workers, "worker_plan", lambda: (2, 1))
    many = encode_passages(model, units, batch_size=8)
    assert torch.get_num_threads() == before
    monkeypatch.setattr(embed_workers, "worker_plan", lambda: (1, 0))
    one = encode_passages(model, units, batch_size=8)
    assert many.shape == one.shape == (len(units), 384)
    assert np.allclose(np.linalg.norm(many, axis=1), 1, atol=1e-4)
    assert (many * one).sum(1).min() >= 0.99999  # the same batches, the same model: rounding at most


def test_a_failure_in_a_worker_is_raised_in_the_caller(model, units, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}
    real = model.preprocess

    def flaky(texts, prompt=None, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("the second batch cannot be read")
        return real(texts, prompt=prompt, **kwargs)

    monkeypatch.setattr(embed_workers, "worker_plan", lambda: (2, 1))
    monkeypatch.setattr(model, "preprocess", flaky)
    with pytest.raises(ValueError, match="second batch"):
        encode_passages(model, units, batch_size=4)


def test_the_prompt_is_the_one_encode_document_uses(model) -> None:  # type: ignore[no-untyped-def]
    assert document_prompt(model) == "passage: "


def test_a_users_thread_count_means_one_worker(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_plan() == (1, 0)
    monkeypatch.delenv("OMP_NUM_THREADS")
    workers, threads = worker_plan()
    assert workers >= 1 and threads >= 1
