"""Terminal escape sequences and control characters in a report never reach the terminal.

Old failure (issue 14, item 8): `qa inspect` and `qa search` printed a report's escape sequences raw (one
set the terminal title: ESC ] 0 ; … BEL).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qa.cli import main

KUMAGAYA = "001_fea63e88436e34da"
# Set the title, clear the screen, a one-byte C1 CSI, a backspace that would overwrite a character,
# and a right-to-left override.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x08\u202e"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture()
def evil_project(corpus_copy: Path) -> Path:
    path = corpus_copy / "corpora" / f"{KUMAGAYA}.txt"
    text = path.read_text(encoding="utf-8")
    for old, new in (("③委託先名\t株式会社ジーシーシー", f"③委託先名\t株式会社{EVIL}ジーシーシー"),
                     ("委託事項1\t利用者負担額", f"委託事項1\t{EVIL}利用者負担額")):  # a value, a record name
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    assert main(["--root", str(corpus_copy), "index", "-q"]) == 0
    return corpus_copy


def _run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> str:
    code = main(["--root", str(root), *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out + err


def test_no_control_characters_reach_the_terminal(evil_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    outputs = {
        "inspect": _run(capsys, evil_project, "inspect"),
        "inspect 001": _run(capsys, evil_project, "inspect", "001"),
        "search": _run(capsys, evil_project, "search", "株式会社ジーシーシー", "--card", "001", "-k", "3"),
        "ask": _run(capsys, evil_project, "ask", "熊谷市の子育て支援の委託先名は？"),
    }
    assert "ジーシーシー" in outputs["inspect 001"]
    assert "利用者負担額決定通知書" in outputs["search"]
    for name, text in outputs.items():
        bad = sorted({f"U+{ord(ch):04X}" for ch in CONTROL.findall(text.replace("\n", "").replace("\t", ""))})
        assert not bad, f"qa {name} printed {bad}"
        assert "pwned" not in text, f"qa {name} printed the title sequence's text"


def test_json_output_keeps_the_value_but_escapes_what_a_terminal_obeys(
    evil_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json is data: the value round-trips exactly, with the dangerous characters \\u-escaped."""
    capsys.readouterr()
    out = _run(capsys, evil_project, "search", "株式会社ジーシーシー", "--card", "001", "-k", "3", "--json")
    assert not CONTROL.search(out.replace("\n", ""))
    assert any(EVIL in hit["text"] for hit in json.loads(out))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain 日本語", "plain 日本語"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("a\x1b]0;title\x07b", "ab"),
        ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
        ("tab\tand\nline", "tab\tand\nline"),
        ("x\x9b2Jy\x00z\u202e", "x2Jyz"),
    ],
)
def test_terminal_safe(raw: str, shown: str) -> None:
    from qa.cli import terminal_safe

    assert terminal_safe(raw) == shown
