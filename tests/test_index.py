"""Index builds: incremental re-embedding, atomic generations, damaged and stale indexes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.errors import CorruptIndexError, IndexNotFoundError, StaleIndexError
from qa.build import build_index
from qa.index import load_index

from conftest import CORPORA, ROOT


def _copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_incremental_rebuild_reembeds_only_the_changed_card(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    first = build_index(corpus_copy / "corpora", folder, root=corpus_copy)
    assert first.cards == 5 and len(first.reembedded) == 5
    target = corpus_copy / "corpora" / "002_eeb43361c0371a47.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\n追記\n", encoding="utf-8")
    index = load_index(folder)
    assert index.stale_reasons(corpus_copy / "corpora") == ["002_eeb43361c0371a47 changed"]
    del index  # a loaded Index holds its generation against removal; this reader is done with it
    second = build_index(corpus_copy / "corpora", folder, root=corpus_copy)
    assert second.reembedded == ["002_eeb43361c0371a47"]
    assert len(second.reused) == 4
    assert load_index(folder).stale_reasons(corpus_copy / "corpora") == []
    assert len(list(folder.glob("gen-*"))) == 1  # the old generation is gone


def test_a_new_chunker_reads_every_report_again(index_dir: Path, tmp_path: Path) -> None:
    """An index built by another parser or chunker version is not stale to load, but its cards are not reused:
    the same file parsed by new code may give other units."""
    from qa.chunking import CHUNKER_VERSION

    folder = _copy_index(index_dir, tmp_path / "idx")
    gen = folder / (folder / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["chunker_version"] = "0-older"
    (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    report = build_index(CORPORA, folder, root=ROOT)
    assert not report.unchanged and report.reused == []
    assert sorted(report.reembedded) == sorted(manifest["cards"])
    rebuilt = load_index(folder)
    assert rebuilt.manifest.chunker_version == CHUNKER_VERSION
    assert rebuilt.stale_reasons(CORPORA) == []


def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="qa index"):
        load_index(tmp_path)


@pytest.mark.parametrize("victim", ["dense.faiss", "chunks.jsonl", "embeddings.npy", "bm25/params.index.json"])
def test_damaged_file_is_detected_with_a_rebuild_hint(index_dir: Path, tmp_path: Path, victim: str) -> None:
    folder = _copy_index(index_dir, tmp_path / "idx")
    gen = folder / (folder / "CURRENT").read_text().strip()
    path = gen / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError, match="qa index --full"):
        load_index(folder)


def test_flipped_bytes_of_same_length_are_detected(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy_index(index_dir, tmp_path / "idx")
    gen = folder / (folder / "CURRENT").read_text().strip()
    path = gen / "chunks.jsonl"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="checksum"):
        load_index(folder)


def test_garbage_manifest_is_a_clear_error(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy_index(index_dir, tmp_path / "idx")
    gen = folder / (folder / "CURRENT").read_text().strip()
    (gen / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="manifest"):
        load_index(folder)


def test_index_from_another_model_is_stale(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy_index(index_dir, tmp_path / "idx")
    gen = folder / (folder / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["embedding_model"] = "some-other-model"
    (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(StaleIndexError, match="embedding model"):
        load_index(folder)


def test_no_pickle_in_the_index(index_dir: Path) -> None:
    """Everything on disk is JSON, .npy without object arrays, FAISS or safetensors."""
    import numpy as np

    gen = index_dir / (index_dir / "CURRENT").read_text().strip()
    for npy in gen.rglob("*.npy"):
        np.load(npy, allow_pickle=False)
    assert not list(gen.rglob("*.pkl")) and not list(gen.rglob("*.pickle"))
