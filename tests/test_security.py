"""Security properties: no unpickling of data read from disk, a server bound to loopback unless told,
and no way to make the tool read a file outside the corpus folder (links, card ids, a tampered index)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.errors import CardNotFoundError, CorruptIndexError
from qa.build import build_index
from qa.index import load_index

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qa"
KUMAGAYA = "001_fea63e88436e34da"

# -- no pickle ---------------------------------------------------------------------------------------------

UNSAFE = [
    (re.compile(r"\bpickle\.loads?\b|\bcPickle\b|\bdill\.loads?\b|\bcloudpickle\b|\bjoblib\.load\b"), "unpickling"),
    (re.compile(r"\bshelve\.open\b|\bmarshal\.loads?\b|read_pickle\b"), "pickle-based storage"),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy/bm25s object arrays"),
    (re.compile(r"allow_dangerous_deserialization"), "LangChain's pickle-backed stores"),
    (re.compile(r"yaml\.load\((?![^)]*SafeLoader)|yaml\.unsafe_load"), "unsafe YAML"),
]


def _python_files() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py")) + [ROOT / "app.py"]
    assert len(files) > 10
    return files


def test_no_unpickling_in_the_package() -> None:
    found = []
    for path in _python_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern, what in UNSAFE:
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {what}: {line.strip()}")
    assert not found, "\n".join(found)


def test_torch_load_only_with_weights_only() -> None:
    found = []
    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\btorch\.load\(", text):
            call = text[match.start() : text.find(")", match.start()) + 1]
            if "weights_only=True" not in call:
                found.append(f"{path.relative_to(ROOT)}: {call}")
    assert not found, found


def test_every_numpy_load_refuses_pickles() -> None:
    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\b(np|numpy)\.load\(|BM25\.load\(", text):
            call = text[match.start() : text.find("\n", match.start())]
            assert "allow_pickle=False" in call, f"{path.relative_to(ROOT)}: {call}"


def test_the_saved_index_has_no_pickles(index_dir: Path) -> None:
    """Every file of a generation is JSON, .npy of numbers, FAISS or safetensors: none starts as a pickle."""
    gen = index_dir / (index_dir / "CURRENT").read_text().strip()
    files = [p for p in gen.rglob("*") if p.is_file()]
    assert files
    for path in files:
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), path
        assert path.suffix in (".json", ".jsonl", ".npy", ".faiss", ".safetensors", ".txt", ""), path


# -- the app binds to loopback ---------------------------------------------------------------------------


def test_serve_defaults_to_loopback(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    import inspect

    from qa import webapp

    assert inspect.signature(webapp.serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(webapp.launch).parameters["host"].default == "127.0.0.1"
    seen: dict[str, Any] = {}

    class FakeDemo:
        qa_loader = type("Loader", (), {"start": lambda self: None})()

    monkeypatch.setattr(webapp, "build_app", lambda *a, **kw: FakeDemo())
    monkeypatch.setattr(webapp, "launch", lambda demo, host, port, **kw: seen.update(host=host, port=port, **kw))
    monkeypatch.delenv("QA_AUTH", raising=False)
    webapp.serve(settings, block=False, quiet=True)
    assert seen["host"] == "127.0.0.1" and seen["auth"] is None


def _listening_addresses(port: int) -> set[str]:
    """Local addresses listening on `port` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_a_launched_app_listens_on_loopback_only(app_assistant: Any, free_port: Any) -> None:
    from qa.webapp import build_app, launch

    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp")
    demo = build_app(app_assistant)
    port = free_port()
    launch(demo, port=port, block=False, quiet=True)  # the default host
    try:
        addresses = _listening_addresses(port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1 in /proc's little-endian hex
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        demo.close()


# -- nothing outside the corpus folder is read ------------------------------------------------------------


@pytest.fixture()
def project(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> tuple[Settings, Path]:
    """A copy of the project and of the session's index (its card sources are relative: corpora/…)."""
    folder = tmp_path / "idx"
    shutil.copytree(index_dir, folder, ignore=shutil.ignore_patterns(".build.lock", "_models"))
    return Settings.load(root=corpus_copy).with_(index_dir=folder), folder


def test_source_refuses_a_tampered_path(project: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """cards.jsonl rewritten (checksums too) to name ../../etc/passwd: refused before anything is opened."""
    import qa.api
    from qa.api import Assistant

    settings, folder = project
    gen = folder / (folder / "CURRENT").read_text().strip()
    rows = [json.loads(line) for line in (gen / "cards.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        if row["id"] == KUMAGAYA:
            row["source"] = "../../../../../../etc/passwd"
    data = ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()
    (gen / "cards.jsonl").write_bytes(data)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["cards.jsonl"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (gen / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")

    opened: list[Path] = []
    real = qa.api.read_source
    monkeypatch.setattr(qa.api, "read_source", lambda path: opened.append(Path(path)) or real(path))
    assistant = Assistant.load(settings=settings)
    with pytest.raises(CorruptIndexError, match=r"not a file of the corpus folder.*run `qa index --full`"):
        assistant.source(KUMAGAYA)
    with pytest.raises(CorruptIndexError):
        assistant.ask("熊谷市の子育て支援の評価書の公表日は")
    assert all(p.is_relative_to(settings.corpus_dir.resolve()) for p in opened), opened
    assert assistant.source("003_5fcca4f6e38d6e1a").lines  # the other cards are unaffected


@pytest.mark.parametrize("source", ["/etc/passwd", "corpora/../pyproject.toml", "corpora/../../outside.txt"])
def test_source_only_reads_the_corpus_folder(project: tuple[Settings, Path], source: str) -> None:
    from qa.api import Assistant

    settings, folder = project
    index = load_index(folder)
    index.cards[KUMAGAYA].source = source
    with pytest.raises(CorruptIndexError, match="not a file of the corpus folder"):
        Assistant(settings, index).source(KUMAGAYA)


def test_source_refuses_a_corpus_file_replaced_by_a_link_out(project: tuple[Settings, Path], tmp_path: Path) -> None:
    """Same bytes (so the checksum matches), but now behind a link leading out of the corpus folder."""
    from qa.api import Assistant

    settings, folder = project
    path = settings.corpus_dir / f"{KUMAGAYA}.txt"
    outside = tmp_path / "elsewhere.txt"
    shutil.move(path, outside)
    path.symlink_to(outside)
    assistant = Assistant(settings, load_index(folder))
    with pytest.raises(CorruptIndexError, match="not a file of the corpus folder"):
        assistant.source(KUMAGAYA)
    assert load_index(folder).stale_reasons(settings.corpus_dir) == [f"{KUMAGAYA} changed"]


def test_source_of_an_unknown_card(assistant: Any) -> None:
    for bad in ("../../etc/passwd", "", "nope"):
        with pytest.raises(CardNotFoundError):
            assistant.source(bad)


def test_build_refuses_links_out(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> None:
    corpora = corpus_copy / "corpora"
    (corpora / "zz_passwd.txt").symlink_to("/etc/passwd")
    folder = tmp_path / "idx"
    shutil.copytree(index_dir, folder, ignore=shutil.ignore_patterns(".build.lock", "_models"))
    report = build_index(corpora, folder, root=corpus_copy)
    assert report.cards == 5 and report.reembedded == []
    assert report.skipped == [f"zz_passwd.txt: a link to /etc/passwd, outside the corpus folder {corpora}; refused"]
    assert load_index(folder).stale_reasons(corpora) == []


@pytest.mark.parametrize("spec", ["../../etc/passwd", "/etc/passwd", "../corpora/003_5fcca4f6e38d6e1a"])
def test_card_ids_are_not_paths(spec: str, capsys: pytest.CaptureFixture[str], settings: Any) -> None:
    from qa.cli import main

    code = main(["--root", str(ROOT), "inspect", spec])
    out, err = capsys.readouterr()
    assert code == 1 and err.startswith("Error: no single card matches") and not out
    code = main(["--root", str(ROOT), "--index", str(settings.index_dir), "search", "委託先", "--card", spec])
    out, err = capsys.readouterr()
    assert code == 1 and err.startswith("Error: no card matches") and not out
