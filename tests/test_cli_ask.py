"""`qa ask` with no question: one question per line of stdin, answered with one load of the index."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_questions_from_stdin(settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import qa.api
    from qa.cli import main

    loads: list[int] = []
    real = qa.api.Assistant.load
    monkeypatch.setattr(qa.api.Assistant, "load", classmethod(lambda cls, *a, **k: loads.append(1) or real(*a, **k)))
    monkeypatch.setattr("sys.stdin", io.StringIO("松戸市の住民基本台帳の委託先は？\n\n   \n熊谷市の子育て支援に関する事務の評価書の公表日は\n" + "x" * 2001 + "\n"))
    code = main(["--root", str(ROOT), "--index", str(settings.index_dir), "ask", "--json"])
    out, err = capsys.readouterr()
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["question"] for a in answers] == ["松戸市の住民基本台帳の委託先は？", "熊谷市の子育て支援に関する事務の評価書の公表日は"]
    assert "日本電気" in answers[0]["answer"] and "令和7年8月27日" in answers[1]["answer"]
    assert code == 1 and err.count("Error:") == 1 and "2,001" in err  # the too-long line, reported; the rest answered
    assert loads == [1]


def test_one_question_on_the_command_line(settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from qa.cli import main

    assert main(["--root", str(ROOT), "--index", str(settings.index_dir), "ask", "松戸市の住民基本台帳の委託先は？"]) == 0
    out = capsys.readouterr().out
    assert "日本電気" in out and "[1] corpora/003_5fcca4f6e38d6e1a.txt:" in out
