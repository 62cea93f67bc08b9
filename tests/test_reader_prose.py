"""Prose units with their own headings, the passage reader, yes/no read off the statement that says it, and
field names that another field's longer name contains. Real reports, real parser, real index; the questions
are written for this test, not taken from either gold file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.catalog import catalog
from qa.chunking import chunk_card, heading_class
from qa.parsing import parse_card
from qa.question import lexical_field_scores
from qa.reading import read_source

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


def _units(name: str):  # type: ignore[no-untyped-def]
    source = read_source(next(CORPORA.glob(f"{name}_*.txt")))
    return chunk_card(parse_card(source), source)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("(4) 影響", "paren"),
        ("事案1 国民健康保険高額療養費支給申請書の紛失", "annex"),
        ("2 再発防止策", "number"),
        ("③消去方法", "circled"),
        ("令和6年4月8日", None),  # a date on its own line is a value, not a heading
        ("事務担当者が書類を放置していた。", None),  # a sentence
        ("- ・ 世帯主氏名、住所、電話番号", None),
    ],
)
def test_heading_classes(line: str, expected: str | None) -> None:
    assert heading_class(line) == expected


def test_an_annex_after_the_form_is_filed_under_its_own_headings() -> None:
    """000's 別紙 on a serious incident follows 別添2: its units are not change-history rows, and each part
    carries the incident's headings, so 「影響」 is found with the number of records lost."""
    annex = [u for u in _units("000") if 595 <= u.line <= 643]
    assert annex and all("変更箇所" not in u.section for u in annex)
    impact = next(u for u in annex if "404件" in u.text)
    assert impact.text.startswith("(4) 影響")
    assert "事案1 国民健康保険高額療養費支給申請書の紛失" in impact.section
    assert impact.line == 613 and impact.end_line >= 615


def test_a_field_name_inside_a_longer_one_does_not_count() -> None:
    """「評価実施機関における担当部署」 names the department; 評価実施機関名 (the cover) is only a part of it."""
    scores = lexical_field_scores("熊谷市の評価書に書かれた評価実施機関における担当部署を知りたい", catalog())
    assert scores.get("department", 0) > 0
    assert "evaluator" not in scores
    # Alone, the shorter name still counts.
    assert "evaluator" in lexical_field_scores("松戸市の評価書の評価実施機関はどこ", catalog())


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # 003 III 6: [○] 接続しない(入手) and [ ] 接続しない(提供) for its 住民基本台帳ファイル.
        ("松戸市の住民基本台帳ファイルについて、情報提供ネットワークシステムで他の機関から情報を入手しているか?", "いいえ"),
        ("松戸市の住民基本台帳ファイルは情報提供ネットワークシステムで他機関へ提供を行うのか?", "はい"),
        # 001 I 5 ②: 「なし(…情報提供ネットワークシステムによる情報提供は行わない)」 beside ① [実施する].
        ("熊谷市の子育て支援では情報提供ネットワークシステムを使って情報を提供していますか", "いいえ"),
    ],
)
def test_yes_no_comes_from_the_statement_that_says_it(assistant, question: str, expected: str) -> None:
    answer = assistant.ask(question)
    assert not answer.abstained
    assert answer.answer.startswith(expected), answer.answer
    source = {c.card for c in answer.citations}
    assert len(source) == 1  # one report
    for c in answer.citations:
        text = (CORPORA / Path(c.source).name).read_text(encoding="utf-8")
        assert c.quote in text  # verbatim


def test_the_passage_reader_does_not_quote_the_change_history(assistant) -> None:
    """The 別添2 rows repeat old and new text of every section; a question not about changes reads the section."""
    answer = assistant.ask("松戸市の送付先情報ファイルは、機構に渡したあと何日で消去されるのか")
    assert not answer.abstained
    assert answer.citations
    assert all("変更箇所" not in c.section for c in answer.citations), [c.section for c in answer.citations]


def test_an_annex_detail_is_answered_from_the_annex(assistant) -> None:
    answer = assistant.ask("川崎市の児童手当の評価書の別紙にある事故で、紛失したのは何世帯分の個人情報か")
    assert not answer.abstained
    assert "295世帯" in answer.answer
    assert any(613 <= c.line <= 621 for c in answer.citations)


def test_fit_refuses_an_unknown_weight_before_loading_anything(capsys) -> None:  # type: ignore[no-untyped-def]
    from qa.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["fit", "--only", "p_unit,no_such_weight", "--dry-run"])
    assert "no such weight: no_such_weight" in str(exc.value.code)


def test_a_word_of_change_about_the_current_procedure_reads_the_section(assistant) -> None:
    """「削除され」 is a word of change, but 「いつ削除されるか」 asks about today's 消去: the current text answers
    it more closely than any change row, so the answer does not come from 別添2."""
    answer = assistant.ask("松戸市の送付先情報ファイルは、機構に渡したあといつ削除されますか")
    assert not answer.abstained
    assert all("変更箇所" not in c.section for c in answer.citations)
    assert "削除" in answer.answer


def test_what_only_the_change_history_still_says_is_found_there(assistant) -> None:
    """002's cover once said its 情報政策課 obtained ISO/IEC 27001 (平成18年); only the 変更前の記載 keeps it."""
    answer = assistant.ask("豊中市の評価書では、情報政策課がISMSの認証を取得した年はいつとされていたか")
    assert answer.answer.startswith("平成18年")
    assert any("27001" in c.quote or "平成18年" in c.quote for c in answer.citations)


def test_when_a_block_was_added_is_the_earliest_row_naming_it(assistant) -> None:
    answer = assistant.ask("豊中市の評価書でシステム6が加わったのはいつ")
    assert answer.answer.startswith("令和4年6月30日")


def test_the_groups_of_record_items_are_listed(assistant) -> None:
    answer = assistant.ask("豊中市の子ども医療費の記録項目の内訳を教えて")
    for group in ("資格関連情報", "レセプト情報", "口座情報", "健康保険情報", "福祉世帯情報", "個人番号管理情報"):
        assert group in answer.answer


def test_a_yes_no_question_with_a_detail_asked_after_it_gets_both(assistant) -> None:
    answer = assistant.ask("松戸市の住基では亡くなった人の個人番号も保管しているのか。保管期間は？")
    first, _, rest = answer.answer.partition("\n")
    assert first.startswith("はい")
    assert "150年間" in rest
    marks = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", answer.answer)}
    assert marks and max(marks) <= len(answer.citations)  # the detail's marks point at its own quotes


def test_whether_work_is_outsourced_is_not_read_off_the_subcontracting_field(assistant) -> None:
    """「委託の有無」 is not 「再委託の有無」: a label that ends with the asked one names another field."""
    answer = assistant.ask("熊谷市は特定個人情報ファイルの取扱いを外部に委託していますか。何件？")
    assert answer.answer.startswith("はい")
    assert "再委託しない" not in answer.answer.split("\n")[0]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("富士通Japanが委託先になっている評価書を挙げて", {"002", "004"}),
        ("日本学生支援機構へ特定個人情報を渡している評価書は?", {"000", "004"}),
    ],
)
def test_which_reports_name_a_body_in_their_blocks(assistant, question: str, expected: set[str]) -> None:
    """Across reports, a report belongs when its blocks name the body, even if the passage its own answer
    quoted was another; words every report has (特定個人情報) do not tell reports apart."""
    answer = assistant.ask(question)
    assert {c[:3] for c in answer.cards} == expected, answer.answer


def test_a_block_called_by_its_name_is_the_one_read(assistant) -> None:
    answer = assistant.ask("熊谷市の子育て支援で、中間サーバはどんな機能を持つ？")
    assert "符号管理機能" in answer.answer
    assert "個人番号管理機能" not in answer.answer  # that is 団体内統合宛名システム's, another block


def test_a_body_removed_from_the_recipients_is_not_among_them(assistant) -> None:
    """004's 社会福祉協議会 was a 提供先 until a change removed it: sharing 福祉 with another block's name is
    not being that block."""
    answer = assistant.ask("生活保護の評価書の提供先に、いまも社会福祉協議会は入っていますか")
    assert answer.answer.startswith("いいえ"), answer.answer


def test_how_often_reads_the_blocks_one_field_of_that_kind(assistant) -> None:
    """No field is named, but the question asks how often: the block's one frequency field (時期・頻度) answers."""
    answer = assistant.ask("児童手当の評価書で戸籍住民サービス課へはどれくらいの間隔で移転しているか")
    assert "5分間隔" in answer.answer
    assert any(c.line == 148 for c in answer.citations)


def test_an_annex_heading_can_be_the_answer_and_is_cited_at_its_own_line(assistant) -> None:  # type: ignore[no-untyped-def]
    """What an incident was is said by its heading (「事案1 …の紛失」), which stands above the passages' lines:
    the reader weighs the headings a prose unit stands under beside its sentences, and cites one where it is."""
    answer = assistant.ask("川崎市児童手当の評価書に載っている個人情報の重大事故は、どんな事故でしたか")
    heading = "事案1 国民健康保険高額療養費支給申請書の紛失"
    cited = [c for c in answer.citations if c.quote == heading]
    assert cited, answer.answer
    lines = (CORPORA.parent / cited[0].source).read_text(encoding="utf-8").split("\n")
    assert lines[cited[0].line - 1].strip() == heading
    # A form section's title is never read as such a heading.
    assert all(c.quote != "7. 特定個人情報の保管・消去" for c in answer.citations)


@pytest.mark.parametrize(("name", "group", "items"), [("000", "資格管理情報", 59), ("004", "決定関連情報", 51)])
def test_a_long_group_of_record_items_is_a_few_units_of_whole_items(name: str, group: str, items: int) -> None:
    """One unit per item made 51 units of 004's 決定関連情報 («記録項目 決定関連情報 / 項目: 住民区分»), which
    crowded the group headings of every 記録項目 question out of the top 10."""
    units = [u for u in _units(name) if u.section.endswith(group)]
    body = [u for u in units if "項目: " in u.text]
    assert 2 <= len(body) <= 8
    assert sum(u.text.count("項目: ") for u in body) == items  # every item once, none cut
    assert all(u.text.startswith(f"記録項目 {group}\n") for u in body)  # each names its group
    assert all(b.line <= a.line for a, b in zip(body[1:], body))  # in the order printed
