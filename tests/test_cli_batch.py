"""`qa batch` safety: the input is never the output, the output appears whole or says how much was written,
user and environment errors are one line, and duplicate ids are reported.

Old failures (issue 14): `qa batch x.jsonl x.jsonl` truncated the input to 0 bytes and exited 0 (item 4);
a missing input, a folder as the output and a full disk gave tracebacks (item 5); duplicate ids passed
silently (item 12).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    {"id": "a", "question": "松戸市の住民基本台帳の委託先は？"},
    {"id": "b", "question": "生活保護関係情報を受け取る提供先はどこか"},
]


@pytest.fixture()
def cli(assistant: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """`qa …` in-process, answering with the session's Assistant (loaded once, not per call)."""
    from qa import cli as cli_module

    monkeypatch.setattr(cli_module, "_assistant", lambda args: assistant)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli_module.main(["--root", str(ROOT), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _one_line_error(code: int, err: str) -> str:
    assert code == 1, err
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- item 4: the output is not the input; written whole -------------------------------------------------


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
def test_batch_refuses_an_output_that_is_its_input(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Before: the input was truncated to 0 bytes and the command exited 0."""
    src = _write(tmp_path / "x.jsonl", QUESTIONS)
    before = src.read_bytes()
    monkeypatch.chdir(tmp_path)
    if how == "same":
        out = str(src)
    elif how == "relative":
        (tmp_path / "sub").mkdir()
        out = "sub/../x.jsonl"
    elif how == "symlink":
        (tmp_path / "link.jsonl").symlink_to(src)
        out = "link.jsonl"
    else:
        os.link(src, tmp_path / "hard.jsonl")
        out = "hard.jsonl"
    code, _, err = cli("batch", str(src), out)
    assert "is the input" in _one_line_error(code, err)
    assert src.read_bytes() == before


def test_batch_output_appears_only_when_complete(cli: Any, tmp_path: Path) -> None:
    """The answers go to a temporary file beside the output, renamed at the end: nothing else is left."""
    src = _write(tmp_path / "q.jsonl", QUESTIONS)
    dst = tmp_path / "answers.jsonl"
    dst.write_text("previous answers\n", encoding="utf-8")
    code, _, err = cli("batch", str(src), str(dst))
    assert code == 0, err
    rows = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "q.jsonl"]


def test_ctrl_c_says_how_many_questions_were_written(index_dir: Path, tmp_path: Path) -> None:
    """SIGINT halfway: exit 130, the answers so far are valid JSONL in the output, and stderr says how many.

    Before: "interrupted" only, with no word of what the output holds.
    """
    # Distinct questions (no answer comes from the query cache), so the batch is still running when signalled.
    src = _write(
        tmp_path / "q.jsonl",
        [{"id": str(n), "question": f"{QUESTIONS[n % 2]['question']}（{n}）"} for n in range(20000)],
    )
    dst = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "--root", str(ROOT), "--index", str(index_dir), "batch", str(src), str(dst)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A job started in the background by a non-interactive shell (as a CI runner may) inherits SIGINT
        # ignored, and Python then installs no Ctrl-C handler: give the child the terminal's default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    written = 0
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in tmp_path.iterdir() if p.name not in ("q.jsonl",)]
        written = sum(p.read_bytes().count(b"\n") for p in partial if p.is_file())
        if written >= 3:
            break
        time.sleep(0.2)
    assert written >= 3, "the batch never started writing"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-1000:]
    rows = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert rows and [r["id"] for r in rows] == [str(n) for n in range(len(rows))]
    assert f"interrupted: {len(rows)} of 20000 questions written to {dst}" in err, err[-1000:]
    assert "Traceback" not in err


# -- item 5: one line for user and environment errors ----------------------------------------------------


def test_missing_batch_input_is_one_line(cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("batch", str(tmp_path / "nowhere.jsonl"), str(tmp_path / "out.jsonl"))
    assert "nowhere.jsonl" in _one_line_error(code, err)
    assert not (tmp_path / "out.jsonl").exists()


def test_folder_as_batch_output_is_one_line(cli: Any, tmp_path: Path) -> None:
    src = _write(tmp_path / "q.jsonl", QUESTIONS)
    (tmp_path / "outdir").mkdir()
    code, _, err = cli("batch", str(src), str(tmp_path / "outdir"))
    assert "is a folder" in _one_line_error(code, err)
    assert list((tmp_path / "outdir").iterdir()) == []


def test_folder_as_batch_input_is_one_line(cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("batch", str(tmp_path), str(tmp_path / "out.jsonl"))
    assert "is a folder" in _one_line_error(code, err)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_full_disk_while_writing_answers_is_one_line(cli: Any, tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    src = _write(tmp_path / "q.jsonl", QUESTIONS)
    code, _, err = cli("batch", str(src), "/dev/full")
    assert "no space left" in _one_line_error(code, err).lower()


def test_full_disk_during_qa_index_is_one_line_and_keeps_the_index(
    corpus_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills while FAISS writes its index (FAISS's own C++ error text): one line, and the previous
    generation still loads. (The probe saw safetensors' `SafetensorError … No space left on device` when the
    model was saved into the generation; both kinds are read by the same rule.)

    Before: a raw traceback.
    """
    import faiss

    from qa.cli import main
    from qa.index import load_index

    assert main(["--root", str(corpus_copy), "index", "-q"]) == 0
    capsys.readouterr()
    live = (corpus_copy / "index" / "CURRENT").read_text(encoding="utf-8")

    def full_disk(*args: Any, **kwargs: Any) -> None:  # the environment: the disk, not our code
        raise RuntimeError("Error in faiss::FileIOWriter::operator() at faiss/impl/io.cpp:113: "
                           "Error 'ret == (nitems)' failed: write error in dense.faiss: 0 != 1 (No space left on device)")

    monkeypatch.setattr(faiss, "write_index", full_disk)
    (corpus_copy / "corpora" / "001_fea63e88436e34da.txt").open("a", encoding="utf-8").write("\n追記\n")
    code, err = main(["--root", str(corpus_copy), "index", "-q"]), capsys.readouterr().err
    assert "no space left" in _one_line_error(code, err).lower()
    assert "qa index" in err
    assert (corpus_copy / "index" / "CURRENT").read_text(encoding="utf-8") == live
    load_index(corpus_copy / "index")
    assert not list((corpus_copy / "index").glob(".tmp-*"))


def test_safetensors_full_disk_error_is_read_as_a_full_disk() -> None:
    """The probe's error, as safetensors raises it, is told apart as a full disk."""
    from safetensors import SafetensorError

    from qa.errors import os_reason
    from qa.build import _is_write_failure

    exc = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                          'message: "No space left on device" })')
    assert _is_write_failure(exc) and os_reason(exc) == "no space left on the disk"


def test_enospc_from_a_numpy_write_during_qa_index_is_one_line(
    corpus_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same for an OSError(ENOSPC) from the embeddings' write."""
    import errno

    import numpy as np

    from qa.cli import main

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full_disk)
    code, err = main(["--root", str(corpus_copy), "index", "-q", "--full"]), capsys.readouterr().err
    assert "no space left" in _one_line_error(code, err).lower()


# -- item 12: duplicate ids --------------------------------------------------------------------------------


def test_duplicate_ids_are_warned_and_both_answers_kept(cli: Any, tmp_path: Path) -> None:
    """Before: the second "a" passed silently."""
    rows = [QUESTIONS[0], QUESTIONS[1], {"id": "a", "question": "熊谷市の子育て支援の担当部署は？"}]
    src = _write(tmp_path / "q.jsonl", rows)
    dst = tmp_path / "out.jsonl"
    code, _, err = cli("batch", str(src), str(dst))
    assert code == 0, err
    assert f"{src}:3: duplicate id 'a' (first on line 1); both answers kept" in err
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["question"]) for r in out] == [(r["id"], r["question"]) for r in rows]
