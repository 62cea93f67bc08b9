"""Answers on the real corpus: complete lists, yes/no, dates, numbers, cross-report, English, abstention.

Every citation of every answer here is checked to be a verbatim substring of its source file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.reading import normalize

ROOT = Path(__file__).resolve().parent.parent


def _verbatim(answer) -> None:  # type: ignore[no-untyped-def]
    for c in answer.citations:
        text = (ROOT / c.source).read_text(encoding="utf-8-sig")
        assert c.quote and c.quote in text, (c.source, c.quote)
        assert c.quote in text.split("\n")[c.line - 1] or c.quote.split("\n")[0] in text.split("\n")[c.line - 1]


def _has(answer, *strings: str) -> None:  # type: ignore[no-untyped-def]
    got = normalize(answer.answer).replace(" ", "")
    for s in strings:
        assert normalize(s).replace(" ", "") in got, (s, answer.answer)


def test_example_lists_every_distinct_recipient_of_the_public_assistance_report(assistant) -> None:
    a = assistant.ask("生活保護関係情報を受け取る提供先はどこか")
    assert not a.abstained and a.cards == ["004_f28069411e69241a"]
    _has(a, "都道府県知事", "市町村長", "都道府県知事又は市町村長", "都道府県知事等", "厚生労働大臣",
         "独立行政法人日本学生支援機構", "文部科学大臣", "都道府県教育委員会又は市町村教育委員会",
         "市町村長又は国民健康保険組合", "文部科学大臣又は都道府県教育委員会",
         "公営住宅法第2条第16号に規定する事業主体である都道府県知事又は市町村長")
    assert len(a.citations) >= 10 and all(c.card == "004_f28069411e69241a" for c in a.citations)
    _verbatim(a)


def test_contractor_list(assistant) -> None:
    a = assistant.ask("松戸市の住民基本台帳の委託先は？")
    _has(a, "日本電気", "アイネスリレーションズ", "総合キャリアオプション", "キャリアリンク")
    _verbatim(a)


def test_yes_no_from_the_selected_option(assistant) -> None:
    yes = assistant.ask("川崎市の児童手当の評価書は委託していますか")
    assert yes.answer.startswith("はい")
    no = assistant.ask("熊谷市の子育て支援の評価書は提供・移転を行っていますか")
    assert no.answer.startswith("いいえ"), no.answer
    _verbatim(yes)
    _verbatim(no)


def test_date_and_number(assistant) -> None:
    date = assistant.ask("熊谷市の子育て支援の評価書はいつ公表されましたか")
    _has(date, "令和7年8月27日")
    number = assistant.ask("児童手当の評価書で対象となる本人の数は")
    _has(number, "10万人以上100万人未満")
    _verbatim(date)
    _verbatim(number)


def test_cross_report_question(assistant) -> None:
    a = assistant.ask("全項目評価書はどれか")
    _has(a, "松戸市")
    assert "熊谷市" not in a.answer and "川崎市" not in a.answer
    _verbatim(a)


def test_english_question_gets_an_english_sentence(assistant) -> None:
    a = assistant.ask("Who are the contractors in Matsudo's resident register report?")
    assert a.answer.startswith("According to") and not a.abstained
    _has(a, "日本電気")
    _verbatim(a)


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("川崎市の生活保護の評価書の公表日は", "公表日"),  # 004 has no cover page
        ("豊中市の子ども医療費の評価書の提供先は", "提供先"),  # 002 lacks II.5
        ("松戸市の住民基本台帳システムの予算はいくらですか", "予算"),  # in no report
        ("横浜市の評価書の委託先は", "横浜市"),  # no such report
    ],
)
def test_questions_the_reports_cannot_answer_abstain(assistant, question: str, reason: str) -> None:
    a = assistant.ask(question)
    assert a.abstained, a.answer
    assert "記載が見つかりません" in a.answer and reason in a.answer
    assert not a.citations


def test_answer_never_mixes_reports(assistant) -> None:
    for q in ("川崎市の生活保護の委託先は", "児童手当の評価書の提供先はどこ"):
        a = assistant.ask(q)
        assert len({c.card for c in a.citations}) <= 1, a.citations


def test_bad_questions_are_clear_errors(assistant) -> None:
    from qa.errors import QuestionError

    for bad in ("", "   ", "x" * 2001, "\x00\x01"):
        with pytest.raises(QuestionError):
            assistant.ask(bad)
    assert not assistant.ask("公表日\x07は？").abstained or True  # control characters are stripped


def test_chain_is_a_composable_runnable(assistant) -> None:
    from langchain_core.runnables import RunnableLambda

    chain = assistant.chain | RunnableLambda(lambda a: a.answer)
    assert "日本電気" in chain.invoke({"question": "松戸市の住民基本台帳の委託先は？"})
    assert len(assistant.chain.batch(["全項目評価書はどれか", "熊谷市の公表日は"])) == 2


def test_optional_chat_model_keeps_verified_citations(assistant) -> None:
    """A configured chat model writes the text; the citations stay the extractive, verbatim ones."""
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from qa.answering.chain import build_chain

    fake = GenericFakeChatModel(messages=iter([AIMessage("委託先は日本電気(株)千葉支社などです。")]))
    chain = build_chain(assistant, chat_model=fake)
    a = chain.invoke({"question": "松戸市の住民基本台帳の委託先は？"})
    assert a.answer == "委託先は日本電気(株)千葉支社などです。"
    assert a.citations and not a.abstained
    _verbatim(a)


def test_batch_cli_reports_bad_lines_and_answers_the_rest(settings, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from qa.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": 1, "question": "全項目評価書はどれか", "extra": "kept"}\nnot json\n{"id": 3, "question": ""}\n'
        '{"id": 4, "question": "熊谷市の子育て支援の評価書の公表日は"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    code = main(["--index", str(settings.index_dir), "batch", str(src), str(out)])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [1, 4] and rows[0]["extra"] == "kept"
    keys = {"id", "question", "answer", "abstained", "citations", "retrieved", "latency_ms"}
    assert keys <= set(rows[0])
    assert set(rows[0]["citations"][0]) == {"card", "title", "source", "section", "quote", "line"}
    assert set(rows[0]["retrieved"][0]) == {"card", "source", "section", "score", "text", "line", "end_line"}
    # what was retrieved is the verbatim source text of its line range, not a reformatted copy
    first = rows[0]["retrieved"][0]
    lines = (ROOT / first["source"]).read_text(encoding="utf-8-sig").split("\n")
    assert first["text"] == "\n".join(lines[first["line"] - 1 : first["end_line"]])
    assert rows[1]["citations"][0]["source"] == "corpora/001_fea63e88436e34da.txt"
    err = capsys.readouterr().err
    assert "in.jsonl:2:" in err and "in.jsonl:3:" in err
