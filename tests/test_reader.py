"""The reader generalises: every line reachable, places by romanised names, no borrowing from other cities,
and the catalog's fields reached by paraphrases (written for this test, not taken from either gold file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.catalog import catalog, load_catalog
from qa.chunking import chunk_card, has_content
from qa.parsing import parse_card
from qa.reading import normalize, read_source

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
REPORTS = sorted(CORPORA.glob("*.txt"))


def _uncovered(path: Path) -> list[int]:
    source = read_source(path)
    units = chunk_card(parse_card(source), source)
    covered: set[int] = set()
    for u in units:
        covered.update(range(u.line, u.end_line + 1))
    return [n for n in range(1, source.line_count + 1) if has_content(source.norm_lines[n - 1]) and n not in covered]


@pytest.mark.parametrize("path", REPORTS, ids=[p.name[:3] for p in REPORTS])
def test_every_line_with_content_is_in_a_unit(path: Path) -> None:
    assert _uncovered(path) == []


def test_text_after_the_last_section_is_reachable(tmp_path: Path) -> None:
    """Lines after a report's last recognised section used to be in no chunk (000's 別紙 incident, appended text)."""
    report = tmp_path / "001_copy.txt"
    shutil.copy2(CORPORA / "001_fea63e88436e34da.txt", report)
    with report.open("a", encoding="utf-8") as f:
        f.write("\n追記事項\n令和8年4月1日に窓口を熊谷市役所本庁舎2階の新しい相談室へ移設する予定である。\n")
    assert _uncovered(report) == []
    source = read_source(report)
    units = chunk_card(parse_card(source), source)
    last = source.line_count - 1
    assert any(u.line <= last <= u.end_line and "相談室" in u.text for u in units)


def test_units_keep_the_verbatim_source_lines() -> None:
    source = read_source(CORPORA / "003_5fcca4f6e38d6e1a.txt")
    units = chunk_card(parse_card(source), source)
    for u in units[:300]:
        assert u.verbatim == "\n".join(source.lines[u.line - 1 : u.end_line])


def test_the_000_incident_annex_is_indexed() -> None:
    """Lines 594–643 of 000 (the 別紙 on a serious incident) were in no chunk."""
    source = read_source(CORPORA / "000_8d285adb8fa87899.txt")
    units = chunk_card(parse_card(source), source)
    lines = {n for u in units for n in range(u.line, u.end_line + 1)}
    assert all(n in lines for n in range(594, 644) if has_content(source.norm_lines[n - 1]))


# -- the catalog ----------------------------------------------------------------------------------------

def test_catalog_entries_match_the_reports() -> None:
    """Every field label, block kind and place of the catalog occurs in at least one of the five reports."""
    cat = load_catalog()
    text = normalize("\n".join(p.read_text(encoding="utf-8-sig") for p in REPORTS)).replace(" ", "")
    missing = [f.id for f in cat.fields if not f.meta and not any(x.replace(" ", "") in text for x in f.labels)]
    assert missing == []
    assert [r.kind for r in cat.records if r.kind not in text] == []
    assert [p.name for p in cat.places if p.name not in text] == []
    assert len({f.id for f in cat.fields}) == len(cat.fields)


def test_the_parser_reads_its_labels_from_the_catalog() -> None:
    from qa.parsing import template

    assert template.KNOWN_LABELS == catalog().form_labels
    assert "委託先名" in template.KNOWN_LABELS


# -- places ---------------------------------------------------------------------------------------------

ROMANISED = [
    ("Who can I contact about Toyonaka's report?", "002_eeb43361c0371a47"),
    ("Which department in Kumagaya is in charge of the childcare support assessment?", "001_fea63e88436e34da"),
    ("When did Matsudo start using the resident register file?", "003_5fcca4f6e38d6e1a"),
    ("Who are the contractors in Kawasaki's child allowance report?", "000_8d285adb8fa87899"),
    ("How many staff use Kawasaki's public assistance file?", "004_f28069411e69241a"),
]


@pytest.mark.parametrize("question,card", ROMANISED)
def test_a_romanised_place_answers_from_its_own_report(assistant, question: str, card: str) -> None:
    answer = assistant.ask(question)
    assert answer.cards == [card], (question, answer.answer)
    assert all(c.card == card for c in answer.citations)


@pytest.mark.parametrize(
    "question,place",
    [
        ("名古屋市の住民基本台帳の評価書で委託先はどこですか", "名古屋市"),
        ("What does Nagoya outsource in its resident register work?", "Nagoya"),
        ("Who should I call about Sapporo City's child allowance report?", "Sapporo"),
    ],
)
def test_a_city_not_in_the_corpus_has_no_report(assistant, question: str, place: str) -> None:
    answer = assistant.ask(question)
    assert answer.abstained and place in answer.answer and not answer.citations


# -- paraphrases of catalog fields --------------------------------------------------------------------

PARAPHRASES = [
    ("熊谷市の子育て支援の評価書には何番という番号が振られている？", "report_number"),
    ("松戸市の住基の評価書は、どこの機関が評価を実施したことになっていますか", "evaluator"),
    ("豊中市の子ども医療費で、このデータは何のために利用されているのか", "purpose"),
    ("児童手当のファイルは川崎市の中で何人くらいの職員が扱うのか", "user_count"),
    ("松戸市は住民票のデータをどこから取得しているの？", "source"),
    ("熊谷市の子育て支援で、情報をどうやって集めているのか", "collection_method"),
    ("豊中市の子ども医療費のデータはどのくらいの期間保存されることになっている？", "retention"),
    ("川崎市の生活保護で、データはどこに保管されているの？", "storage_place"),
    ("松戸市の住民基本台帳で、不要になったデータはどうやって消すの？", "erasure"),
    ("川崎市の児童手当で、外注している会社はどこ", "contractor"),
    ("豊中市の子ども医療費の委託先は、さらに別の会社に仕事を回している？", "subcontracting"),
    ("熊谷市の子育て支援で、自分の個人情報の開示を求めたいときはどこに申し出る？", "disclosure_office"),
    ("松戸市の住基の評価書について質問があるときの窓口は？", "contact"),
    ("川崎市の生活保護の評価書では、パブリックコメントはいつ行われた？", "consultation_date"),
    ("熊谷市の子育て支援で、最近3年で大きな情報漏えい事故はあった？", "incident"),
    ("豊中市の子ども医療費のデータは誰の情報を含むのか", "people_scope"),
    ("松戸市の住基で、データを使い始めたのはいつ", "use_start"),
    ("川崎市の児童手当の評価は市のどの課が担当しているのか", "department"),
    ("熊谷市の子育て支援のファイルには、どんな項目が記録されている？", "record_items"),
    ("川崎市の生活保護の評価書で、しきい値判断の結果はどうなっている？", "threshold_result"),
]


@pytest.mark.parametrize("question,field_id", PARAPHRASES)
def test_a_paraphrase_reaches_its_catalog_field(assistant, question: str, field_id: str) -> None:
    q, _vector = assistant.searcher.understand(question)
    top = [m.spec.id for m in q.fields[:2]]
    assert field_id in top, (question, [(m.spec.id, round(m.score, 2)) for m in q.fields[:4]])
