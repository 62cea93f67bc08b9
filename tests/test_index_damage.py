"""A damaged, foreign or outdated index is detected with a message saying what to run; a build killed
halfway leaves the previous index usable, and the next build clears what it left behind.

Every test works on a copy of the session's index (and of the project, `corpus_copy`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.config import Settings
from qa.errors import CorruptIndexError, StaleIndexError
from qa.build import build_index
from qa.index import load_index

ROOT = Path(__file__).resolve().parent.parent
MATSUDO = "003_5fcca4f6e38d6e1a"


def _copy(index_dir: Path, dst: Path) -> Path:
    shutil.copytree(index_dir, dst, ignore=shutil.ignore_patterns(".build.lock", "_models"))
    return dst


def _generation(folder: Path) -> Path:
    return folder / (folder / "CURRENT").read_text(encoding="utf-8").strip()


def _tamper(folder: Path, rel: str, data: bytes) -> None:
    """Replace a generation file and update the manifest's size and checksum, so that only the file's own
    reader can notice (what a bug in a writer, or a careful attacker, would leave)."""
    gen = _generation(folder)
    (gen / rel).write_bytes(data)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (gen / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def _cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from qa.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- damaged files, found by their own readers -----------------------------------------------------------


def test_truncated_faiss_file(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    data = (_generation(folder) / "dense.faiss").read_bytes()
    _tamper(folder, "dense.faiss", data[: len(data) // 3])
    with pytest.raises(CorruptIndexError, match="run `qa index --full` to rebuild it") as caught:
        load_index(folder)
    assert "dense.faiss" in str(caught.value) or "RuntimeError" in str(caught.value)


@pytest.mark.parametrize(
    "garbage",
    [
        b"{not json}\n",
        b'{"id": "x"}\n',  # valid JSON, not a chunk
        b"",  # no chunks at all: counts disagree with the vectors
        "\ufffd\x00".encode() * 100,
    ],
)
def test_corrupted_chunk_store(index_dir: Path, tmp_path: Path, garbage: bytes) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    _tamper(folder, "chunks.jsonl", garbage)
    with pytest.raises(CorruptIndexError, match="qa index --full"):
        load_index(folder)


def test_chunks_of_an_unknown_card(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    rows = (_generation(folder) / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(rows[0])
    first["card"] = "../../etc/passwd"
    _tamper(folder, "chunks.jsonl", ("\n".join([json.dumps(first, ensure_ascii=False), *rows[1:]]) + "\n").encode())
    with pytest.raises(CorruptIndexError, match="names a card"):
        load_index(folder)


def test_a_pickled_array_is_refused(index_dir: Path, tmp_path: Path) -> None:
    """An .npy holding Python objects would need pickle to load: refused, never unpickled."""
    import io

    folder = _copy(index_dir, tmp_path / "idx")
    buf = io.BytesIO()
    np.save(buf, np.array([{"boom": 1}], dtype=object), allow_pickle=True)
    _tamper(folder, "embeddings.npy", buf.getvalue())
    with pytest.raises(CorruptIndexError, match="qa index --full"):
        load_index(folder)


def test_damaged_tokens_are_found_when_needed(index_dir: Path, tmp_path: Path) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    _tamper(folder, "tokens.jsonl", b'["a"]\n')
    index = load_index(folder)  # tokens are read on first use (only an incremental build needs them)
    with pytest.raises(CorruptIndexError, match="tokens.jsonl has 1 rows"):
        index.tokens  # noqa: B018


@pytest.mark.parametrize("pointer", ["../x", "gen-missing", "", "/etc"])
def test_current_pointing_elsewhere(index_dir: Path, tmp_path: Path, pointer: str) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    (folder / "CURRENT").write_text(pointer, encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="not a generation folder"):
        load_index(folder)


# -- foreign and outdated indexes ------------------------------------------------------------------------


def test_manifest_from_another_model(index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    gen = _generation(folder)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["embedding_model"] = "intfloat/multilingual-e5-small"
    (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(StaleIndexError, match=r"embedding model 'intfloat/multilingual-e5-small'.*run `qa index`"):
        load_index(folder)
    code, out, err = _cli("--root", str(ROOT), "--index", str(folder), "ask", "委託先は？", capsys=capsys)
    assert code == 1 and not out
    assert err.startswith("Error: the index in") and "run `qa index`" in err and err.count("\n") == 1


def test_index_older_than_the_corpus(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> None:
    """The session's index, used with a copy of the corpus that then changes: each change is named."""
    from qa.api import Assistant

    folder = _copy(index_dir, tmp_path / "idx")
    settings = Settings.load(root=corpus_copy).with_(index_dir=folder)
    Assistant.load(settings=settings)  # identical copies: up to date
    corpora = corpus_copy / "corpora"
    target = corpora / f"{MATSUDO}.txt"
    target.write_text(target.read_text(encoding="utf-8").replace("日本電気", "日本電気株式会社", 1), encoding="utf-8")
    shutil.copy2(corpora / "001_fea63e88436e34da.txt", corpora / "005_new.txt")
    (corpora / "005_new.txt").write_text((corpora / "005_new.txt").read_text(encoding="utf-8") + "\n追記\n",
                                         encoding="utf-8")
    (corpora / "002_eeb43361c0371a47.txt").unlink()
    with pytest.raises(StaleIndexError) as caught:
        Assistant.load(settings=settings)
    message = str(caught.value)
    assert "out of date" in message and "run `qa index` to update it" in message
    for what in (f"{MATSUDO} changed", "005_new is new", "002_eeb43361c0371a47 was removed"):
        assert what in message


def test_cli_ask_with_a_damaged_index(index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _copy(index_dir, tmp_path / "idx")
    path = _generation(folder) / "dense.faiss"
    path.write_bytes(path.read_bytes()[:100])
    code, out, err = _cli("--root", str(ROOT), "--index", str(folder), "ask", "委託先は？", capsys=capsys)
    assert code == 1 and not out
    assert err.startswith("Error: the index in") and "is damaged" in err and "run `qa index --full`" in err
    assert "Traceback" not in err and err.count("\n") == 1
    code, out, err = _cli("--root", str(ROOT), "--index", str(tmp_path / "none"), "ask", "委託先は？", capsys=capsys)
    assert code == 1 and err.startswith("Error: no index in") and "run `qa index`" in err


# -- a build killed halfway --------------------------------------------------------------------------------


def _wait_for_tmp(folder: Path, proc: subprocess.Popen[Any], timeout: float) -> Path | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".tmp-gen-"):
                    return Path(entry.path)
        time.sleep(0.002)
    return None


def test_a_build_killed_halfway_leaves_the_previous_index(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> None:
    """A real `qa index` process, SIGKILLed while it writes its new generation (the `.tmp-gen-*` folder)."""
    folder = _copy(index_dir, tmp_path / "idx")
    previous = _generation(folder).name
    corpora = corpus_copy / "corpora"
    target = corpora / f"{MATSUDO}.txt"
    before_change = load_index(folder).manifest.cards[MATSUDO].sha256

    killed_at = None
    for attempt in range(3):  # the window is a second or two; should the build win the race, try again
        target.write_text(target.read_text(encoding="utf-8") + f"\n追記{attempt}\n", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "--root", str(corpus_copy), "--index", str(folder), "index", "--quiet"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            killed_at = _wait_for_tmp(folder, proc, timeout=120)
            if killed_at is not None:
                proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
            proc.stderr.close()  # type: ignore[union-attr]
        if killed_at is not None:
            break
        assert proc.returncode == 0, "the build failed on its own"
        previous = _generation(folder).name  # it finished: that is now the index to keep
        before_change = load_index(folder).manifest.cards[MATSUDO].sha256
    assert killed_at is not None, "never caught the build while it wrote its generation"
    assert proc.returncode == -signal.SIGKILL

    # The previous generation is still the live one, whole and loadable; the leftover is still there.
    assert (folder / "CURRENT").read_text(encoding="utf-8").strip() == previous
    assert killed_at.exists()
    index = load_index(folder)
    assert index.folder.name == previous and len(index.cards) == 5
    assert index.manifest.cards[MATSUDO].sha256 == before_change
    assert index.stale_reasons(corpora) == [f"{MATSUDO} changed"]  # the change is not lost either
    del index  # a loaded Index holds its generation against removal; this reader is done with it

    # The next build removes the leftover and brings the index up to date.
    report = build_index(corpora, folder, root=corpus_copy)
    assert report.reembedded == [MATSUDO]
    assert not list(folder.glob(".tmp-*")) and not (folder / ".CURRENT.tmp").exists()
    assert [p.name for p in folder.glob("gen-*")] == [_generation(folder).name]
    assert load_index(folder).stale_reasons(corpora) == []


def test_leftovers_of_an_interrupted_build_are_removed(index_dir: Path, tmp_path: Path) -> None:
    """What a crash leaves at each step: a half-written .tmp folder, a renamed but never published generation,
    a half-written pointer. The live index stays usable and the next build clears them all."""
    folder = _copy(index_dir, tmp_path / "idx")
    live = _generation(folder)
    (folder / ".tmp-gen-20000101T000000-1").mkdir()
    (folder / ".tmp-gen-20000101T000000-1" / "chunks.jsonl").write_text("{half", encoding="utf-8")
    shutil.copytree(live, folder / "gen-20000101T000000-2")  # renamed, CURRENT never replaced
    (folder / ".CURRENT.tmp").write_text("gen-20000101T000000-2", encoding="utf-8")
    assert load_index(folder).folder == live
    report = build_index(ROOT / "corpora", folder, root=ROOT)
    assert report.reembedded == [] and len(report.reused) == 5
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".build.lock", "CURRENT", _generation(folder).name, f".readers-{_generation(folder).name}"]
    )


def test_an_incremental_build_writes_what_a_full_one_would(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> None:
    """Reused cards' rows are copied from the previous generation: the files must still say exactly what
    the loaded objects say, row for row, in the new order."""
    folder = _copy(index_dir, tmp_path / "idx")
    corpora = corpus_copy / "corpora"
    target = corpora / f"{MATSUDO}.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\n（別添）追記\n", encoding="utf-8")
    report = build_index(corpora, folder, root=corpus_copy)
    assert report.reembedded == [MATSUDO] and len(report.reused) == 4
    index = load_index(folder)
    gen = _generation(folder)

    def rows(name: str) -> list[Any]:
        return [json.loads(line) for line in (gen / name).read_text(encoding="utf-8").splitlines()]

    assert rows("cards.jsonl") == [c.to_dict() for c in index.cards.values()]
    assert rows("chunks.jsonl") == [c.to_dict() for c in index.chunks]
    assert rows("tokens.jsonl") == index.tokens
    assert [c.card for c in index.chunks] == [cid for cid in index.cards for _ in range(index.manifest.cards[cid].chunks)]
    fresh = load_index(index_dir)
    for cid in report.reused:
        assert index.cards[cid].to_dict() == fresh.cards[cid].to_dict()
    assert "日本電気" in index.cards[MATSUDO].to_dict().__repr__()
