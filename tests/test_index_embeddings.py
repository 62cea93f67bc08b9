"""The index and its embedder: no model (nor anything else unlisted) inside a generation, embeddings cached by
text, and a build with nothing changed writes nothing.

Regression tests for issue 14 items 1 and 6: a planted configuration_*.py in a generation used to run on
`qa ask`, and a no-change `qa index` rewrote a 46 MB generation.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from qa.e5model import e5_model_id
from qa.embeddings import default_cache_dir
from qa.errors import CorruptIndexError
from qa.build import build_index
from qa.index import load_index


def _generation(folder: Path) -> Path:
    return folder / (folder / "CURRENT").read_text(encoding="utf-8").strip()


def _copy(index_dir: Path, dst: Path) -> Path:
    shutil.copytree(index_dir, dst, ignore=shutil.ignore_patterns(".build.lock"))
    return dst


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and p.name != ".build.lock"}


def _plant(gen: Path, files: dict[str, str], list_them: bool) -> None:
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    for rel, text in files.items():
        path = gen / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if list_them:  # what a careful attacker does: the manifest is not signed
            data = path.read_bytes()
            manifest["files"][rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (gen / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def test_the_model_is_not_stored_in_the_index_and_every_file_is_listed(index_dir: Path) -> None:
    gen = _generation(index_dir)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    present = {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()} - {"manifest.json"}
    assert present == set(manifest["files"])
    assert not [p for p in present if p.endswith((".safetensors", ".py")) or "modules.json" in p]
    assert manifest["embedding_model"] == e5_model_id() and len(manifest["embedding_digest"]) == 64


@pytest.mark.parametrize("list_them", [True, False], ids=["manifest-updated", "unlisted"])
def test_code_planted_in_a_generation_is_refused_and_never_runs(index_dir: Path, tmp_path: Path, list_them: bool) -> None:
    """A configuration_evil.py with a modules.json and an auto_map pointing at it, as transformers would import
    with trust_remote_code: loading is refused, with or without the manifest updated to list them."""
    folder = _copy(index_dir, tmp_path / "idx")
    marker = tmp_path / "code-ran"
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nclass EvilConfig: pass\n"
    _plant(_generation(folder), {
        "model/configuration_evil.py": evil,
        "model/modules.json": json.dumps([{"idx": 0, "name": "0", "path": "", "type": "configuration_evil.EvilConfig"}]),
        "model/config.json": json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}}),
    }, list_them)
    with pytest.raises(CorruptIndexError, match=r"model/.*refusing to load it"):
        load_index(folder)
    # pointing the embedding model setting at it, with the opt-in, changes nothing
    with pytest.raises(CorruptIndexError, match="refusing to load it"):
        load_index(folder, str(_generation(folder) / "model"), trust_remote_code=True)
    assert not marker.exists()


def test_a_stray_file_in_a_generation_is_refused(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    _plant(_generation(folder), {"notes.txt": "hello"}, list_them=False)
    with pytest.raises(CorruptIndexError, match="notes.txt is not part of an index.*not listed"):
        load_index(folder)


def test_no_change_build_writes_nothing(corpus_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    build_index(corpus_copy / "corpora", folder, root=corpus_copy)
    before = _snapshot(folder)
    again = build_index(corpus_copy / "corpora", folder, root=corpus_copy)
    assert again.unchanged and again.reembedded == [] and again.cards == 5
    assert _snapshot(folder) == before  # no new generation, no file rewritten


def test_a_rebuild_embeds_only_changed_text(index_dir: Path, corpus_copy: Path, tmp_path: Path) -> None:
    """With the embedding cache, a changed report re-embeds only its units whose text changed, and a full
    rebuild of an unchanged corpus embeds nothing. The cache starts as a copy of the one the session's
    index (`index_dir`) filled, so nothing here embeds the whole corpus."""
    folder = tmp_path / "idx"
    cache = tmp_path / "embeddings"
    shutil.copytree(default_cache_dir() / "embeddings", cache, ignore=shutil.ignore_patterns(".lock", ".*tmp*"))
    first = build_index(corpus_copy / "corpora", folder, root=corpus_copy, embedding_cache=cache)
    assert first.embedded_texts == 0 and first.cards == 5
    full = build_index(corpus_copy / "corpora", folder, root=corpus_copy, embedding_cache=cache, full=True)
    assert full.embedded_texts == 0 and not full.unchanged
    target = corpus_copy / "corpora" / "002_eeb43361c0371a47.txt"
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("株式会社パソナ", "株式会社パソナ西日本", 1), encoding="utf-8")
    changed = build_index(corpus_copy / "corpora", folder, root=corpus_copy, embedding_cache=cache)
    assert changed.reembedded == ["002_eeb43361c0371a47"]
    assert 1 <= changed.embedded_texts <= 5
    index = load_index(folder)
    assert index.embeddings.shape == (len(index.chunks), 384)
    assert any("株式会社パソナ西日本" in c.text for c in index.chunks)
