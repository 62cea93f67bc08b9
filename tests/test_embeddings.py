"""The chiVe embedding model, built from the installed ja_ginza vectors, as a real SentenceTransformer."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from qa.embeddings import ChiVeEmbedding, build_default_model, load_embedder, model_id
from qa.errors import ModelLoadError
from qa.segment import default_segmenter

SIMILAR_A = "生活保護関係情報を提供する"
SIMILAR_B = "生活保護の情報を渡す"
UNRELATED = "システムの保守業務を委託する"
CORPUS = [
    SIMILAR_A,
    SIMILAR_B,
    UNRELATED,
    "特定個人情報ファイルの保存期間は5年とする",
    "住民基本台帳ネットワークシステムと接続する",
    "従業者に対して年1回セキュリティ教育を実施している",
]
UNKNOWN_ONLY = "qzjxv zzqqxx"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[SentenceTransformer, Path]:
    """The default model pruned to the words of CORPUS (same vectors and weights as the full one)."""
    folder = tmp_path_factory.mktemp("models") / "chive"
    vocab = {t for text in CORPUS for t in default_segmenter().tokens(text)}
    return build_default_model(folder, vocabulary=vocab), folder


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_similar_sentences_score_higher(built: tuple[SentenceTransformer, Path]) -> None:
    model, _ = built
    a, b, c = model.encode([SIMILAR_A, SIMILAR_B, UNRELATED], normalize_embeddings=True)
    # Observed: a·b ≈ 0.89, a·c ≈ 0.54, b·c ≈ 0.40.
    assert a @ b > a @ c + 0.2
    assert a @ b > b @ c + 0.2


def test_embeddings_are_unit_length(built: tuple[SentenceTransformer, Path]) -> None:
    model, _ = built
    emb = model.encode(CORPUS)  # the module normalises even without normalize_embeddings
    assert emb.shape == (len(CORPUS), 300) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert model.get_embedding_dimension() == 300


def test_unknown_only_text_gives_zeros(built: tuple[SentenceTransformer, Path]) -> None:
    model, _ = built
    assert model[0].word_ids(UNKNOWN_ONLY) == []
    for normalize in (False, True):
        emb = model.encode([UNKNOWN_ONLY, "", "。、「」", SIMILAR_A], normalize_embeddings=normalize)
        assert not np.isnan(emb).any()
        assert np.all(emb[:3] == 0.0)
        assert np.isclose(np.linalg.norm(emb[3]), 1.0)
    alone = model.encode([UNKNOWN_ONLY])
    assert alone.shape == (1, 300) and np.all(alone == 0.0)


def test_pruned_model_keeps_only_vocabulary(built: tuple[SentenceTransformer, Path]) -> None:
    module = built[0][0]
    assert isinstance(module, ChiVeEmbedding)
    assert "生活保護" in module.vocab and "保守" in module.vocab
    assert len(module.vocab) < 100
    assert module.embedding.weight.shape[0] <= len(module.vocab)


def test_save_and_load_round_trip(
    built: tuple[SentenceTransformer, Path], tmp_path: Path, no_network: None
) -> None:
    model, _ = built
    model.save(str(tmp_path / "saved"))
    assert not list((tmp_path / "saved").glob("*.bin")) and not list((tmp_path / "saved").glob("*.pkl"))
    assert json.loads((tmp_path / "saved" / "vocab.json").read_text(encoding="utf-8")) == model[0].vocab
    # sentence-transformers 6 imports a class outside its own namespace only with trust_remote_code=True.
    again = SentenceTransformer(
        str(tmp_path / "saved"), device="cpu", local_files_only=True, trust_remote_code=True
    )
    via_loader = load_embedder(tmp_path / "saved")
    want = model.encode(CORPUS + [UNKNOWN_ONLY])
    assert np.array_equal(again.encode(CORPUS + [UNKNOWN_ONLY]), want)
    assert np.array_equal(via_loader.encode(CORPUS + [UNKNOWN_ONLY]), want)
    assert model_id(via_loader) == model_id(model)
    assert model_id(model).startswith("chive-ja-ginza-")


def test_fit_idf_round_trips(built: tuple[SentenceTransformer, Path], tmp_path: Path) -> None:
    model = load_embedder(built[1])  # a private copy: fitting must not disturb the shared fixture
    module = model[0]
    docs = ["生活保護の情報", "住民の情報", "情報システム"]
    module.fit_idf(docs)
    idf = module.idf.numpy()
    assert module.fitted_docs == 3
    assert idf[module.word_to_id["情報"]] == pytest.approx(1.0)  # in every document
    assert idf[module.word_to_id["生活保護"]] == pytest.approx(np.log(4 / 2) + 1)
    assert idf[module.word_to_id["保守"]] == pytest.approx(np.log(4) + 1)  # in none
    model.save(str(tmp_path / "fitted"))
    again = load_embedder(tmp_path / "fitted")
    assert again[0].fitted_docs == 3
    assert np.array_equal(again.encode(CORPUS), model.encode(CORPUS))
    assert not np.array_equal(again.encode(CORPUS), built[0].encode(CORPUS))


@pytest.mark.parametrize("damage", ["truncate_weights", "garbage_vocab", "missing_vocab", "missing_weights"])
def test_damaged_model_raises_model_load_error(
    built: tuple[SentenceTransformer, Path], tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(built[1], folder)
    if damage == "truncate_weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_vocab":
        (folder / "vocab.json").write_text("[\"生活", encoding="utf-8")
    elif damage == "missing_vocab":
        (folder / "vocab.json").unlink()
    else:
        (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError) as info:
        load_embedder(folder)
    message = str(info.value)
    assert str(folder) in message and "rebuild" in message


def test_nonexistent_local_path(tmp_path: Path, no_network: None) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="no embedding model folder"):
        load_embedder(missing)
    with pytest.raises(ModelLoadError, match="no-such-model"):
        load_embedder(str(missing))


def test_folder_that_is_not_a_model(tmp_path: Path, no_network: None) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load the embedding model"):
        load_embedder(tmp_path / "empty")


def test_default_model_is_built_once_then_cached(tmp_path: Path, no_network: None) -> None:
    model = load_embedder(None, cache_dir=tmp_path)
    folder = tmp_path / model_id(model)
    assert (folder / "modules.json").exists() and (folder / "model.safetensors").exists()
    assert len(model[0].vocab) > 400_000
    start = time.perf_counter()
    again = load_embedder("chive", cache_dir=tmp_path)
    assert time.perf_counter() - start < 5.0
    assert np.array_equal(again.encode(CORPUS), model.encode(CORPUS))


def test_encoding_speed(built: tuple[SentenceTransformer, Path]) -> None:
    model, _ = built
    texts = [f"{CORPUS[i % 6]}。{CORPUS[(i * 7) % 6]}（第{i}項）" for i in range(5000)]
    start = time.perf_counter()
    emb = model.encode(texts, batch_size=256)
    elapsed = time.perf_counter() - start
    assert emb.shape == (5000, 300)
    assert elapsed < 30.0, f"5,000 short texts took {elapsed:.1f}s"
