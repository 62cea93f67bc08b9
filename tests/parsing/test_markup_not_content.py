"""Script, style and comment markup in a report is not content: not a value, not a name, not a quote.

Old failure (issue 14, item 10): a `<script>` in the 提供先1 cell of 000 made "window.__xss=1 都道府県知事等"
the recipient's name, listed in the answer, with a quote cut out of the script (「window.__x」; in the
probe 「indow.__xss=…」, a piece of the script) instead of the recipient the cell names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.parsing.html import read_choice, strip_html
from qa.reading import SourceText

KAWASAKI = "000_8d285adb8fa87899"
SCRIPT = "<script>window.__xss=1</script>"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (f"{SCRIPT}都道府県知事等", "都道府県知事等"),
        ("<style>p { color: red }</style><p>市町村長</p>", "市町村長"),
        ("<!-- 提供先: 秘密 -->地方公共団体情報システム機構", "地方公共団体情報システム機構"),
        ('<SCRIPT type="text/javascript">\nalert("x")\n</SCRIPT>\n都道府県', "都道府県"),
        ("都道府県<script>never closed", "都道府県"),
    ],
)
def test_strip_html_drops_code_and_comments(value: str, text: str) -> None:
    assert strip_html(value) == text


def test_a_script_is_not_a_choice() -> None:
    choice = read_choice(f"[委託する] <選択肢> 1) 委託する {SCRIPT}2) 委託しない")
    assert choice is not None and choice.selected == ["委託する"]
    assert all("xss" not in o for o in choice.options)


def test_no_quote_is_cut_from_inside_a_script(tmp_path: Path) -> None:
    """The same words inside a script (half-width) and after it (full-width): the quote is the one after."""
    raw = "提供先1\t<script>var to = 'JLIS';</script>ＪＬＩＳ\n"
    source = SourceText(path=tmp_path / "x.txt", raw=raw, encoding="utf_8", sha256="")
    assert source.find_quote("JLIS") == (1, "ＪＬＩＳ")
    assert source.find_quote("var to") is None  # only ever inside the script


def test_recipient_next_to_a_script_cell_is_named_and_quoted_exactly(
    corpus_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qa.api import Assistant
    from qa.config import Settings
    from qa.build import build_index

    path = corpus_copy / "corpora" / f"{KAWASAKI}.txt"
    text = path.read_text(encoding="utf-8")
    assert "提供先1\t都道府県知事等" in text
    path.write_text(text.replace("提供先1\t都道府県知事等", f"提供先1\t{SCRIPT}都道府県知事等"), encoding="utf-8")
    for other in path.parent.iterdir():  # this report alone: the others do not bear on it, and cost a build
        if other != path:
            other.unlink()
    settings = Settings.load(root=corpus_copy)
    build_index(settings.corpus_dir, settings.index_dir, root=corpus_copy)
    assistant = Assistant.load(settings=settings)
    card = assistant.cards[KAWASAKI]
    names = [r.name for r in card.records() if r.kind == "提供先"]
    assert "都道府県知事等" in names and not any("xss" in (n or "") for n in names)
    answer = assistant.ask("川崎市の児童手当の提供先は？")
    assert "xss" not in answer.answer and "window" not in answer.answer
    source = assistant.source(KAWASAKI)
    for c in answer.citations:
        assert c.quote in source.lines[c.line - 1]
        assert "window" not in c.quote and "script" not in c.quote
    first = [c for c in answer.citations if c.section.endswith("提供先1")]
    assert first and first[0].quote == "都道府県知事等"
