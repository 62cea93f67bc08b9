"""Cards of the five real reports: metadata, the section tree with its breadcrumbs, record counts, and
line ranges that point at the text they came from. Every expected value was read off the files."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from qa.parsing import Card, Section
from qa.parsing.html import strip_html
from qa.reading import SourceText

METADATA = {
    "000": dict(
        kind="重点項目評価書",
        number="27",
        title="児童手当法による児童手当又は特例給付の支給に関する事務 重点項目評価書",
        evaluator="神奈川県川崎市長",
        municipality="川崎市",
        published="令和7年7月31日",
        affair="児童手当法による児童手当又は特例給付の支給に関する事務",
    ),
    "001": dict(
        kind="重点項目評価書",
        number="15",
        title="子育て支援に関する事務 重点項目評価書",
        evaluator="熊谷市長",
        municipality="熊谷市",
        published="令和7年8月27日",
        affair="子育て支援に関する事務",
    ),
    "002": dict(
        kind="重点項目評価書",
        number="45",
        title="子ども医療費の助成に関する事務 重点項目評価書",
        evaluator="豊中市長",
        municipality="豊中市",
        published="令和5年6月30日",
        affair="子ども医療費の助成に関する事務",
    ),
    # The 公表日 line of 003 holds "[平成30年5月 様式4]", the form's version: no publication date.
    "003": dict(
        kind="全項目評価書",
        number="1",
        title="松戸市住民基本台帳に関する事務 全項目評価書",
        evaluator="松戸市長",
        municipality="松戸市",
        published=None,
        affair="住民基本台帳に関する事務",
    ),
    # 004 has no cover page: no number, no evaluator block, no 公表日. Its own declaration names 川崎市.
    "004": dict(
        kind="重点項目評価書",
        number=None,
        title="生活保護の決定及び実施、就労自立給付金の支給等に関する事務 重点項目評価書",
        evaluator=None,
        municipality="川崎市",
        published=None,
        affair="生活保護の決定及び実施、就労自立給付金の支給等に関する事務",
    ),
}

# Blocks as printed in each report (counted, not taken from the reports' own counts).
RECORD_COUNTS = {
    "000": {"システム": 2, "委託事項": 2, "提供先": 4, "移転先": 4, "記録項目": 4, "変更箇所": 138},
    "001": {"システム": 4, "委託事項": 1, "提供先": 1, "移転先": 1, "記録項目": 3, "変更箇所": 9},
    "002": {"システム": 2, "委託事項": 4, "記録項目": 6, "変更箇所": 23},
    "003": {"システム": 5, "委託事項": 4, "提供先": 3, "移転先": 1, "変更箇所": 103},
    "004": {"システム": 5, "委託事項": 4, "提供先": 35, "移転先": 29, "記録項目": 8},
}

CARD_KEYS = sorted(METADATA)


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("|", "")


def _span(source: SourceText, first: int, last: int) -> str:
    """Lines [first, last] of the file in matching form, with and without markup (values are stripped)."""
    lines = source.norm_lines[first - 1 : last]
    return _squeeze("".join(strip_html(line) for line in lines)) + "\0" + _squeeze("".join(lines))


@pytest.mark.parametrize("key", CARD_KEYS)
def test_metadata(parsed_cards, key: str) -> None:  # type: ignore[no-untyped-def]
    card: Card = parsed_cards[key]
    got = {k: v for k, v in card.metadata().items() if k not in ("id", "source")}
    assert got == METADATA[key]
    assert card.id == card.source_path.stem
    assert card.source == f"corpora/{card.source_path.name}"


@pytest.mark.parametrize("key", CARD_KEYS)
def test_record_counts(parsed_cards, key: str) -> None:  # type: ignore[no-untyped-def]
    card: Card = parsed_cards[key]
    counts = dict(Counter(r.kind for r in card.records()))
    expected = dict(RECORD_COUNTS[key])
    if key == "004":  # 004's (別添2) is torn apart: only check there are many change records
        assert counts.pop("変更箇所") > 300
    assert counts == expected


@pytest.mark.parametrize("key", CARD_KEYS)
def test_blocks_are_numbered_as_printed(parsed_cards, key: str) -> None:  # type: ignore[no-untyped-def]
    card: Card = parsed_cards[key]
    numbers = {kind: sorted(r.number for r in card.records(kind)) for kind in ("提供先", "移転先", "委託事項")}
    expected = {
        "000": {"提供先": [1, 2, 3, 4], "移転先": [1, 2, 3, 4], "委託事項": [1, 2]},
        "001": {"提供先": [1], "移転先": [1], "委託事項": [1]},
        "002": {"提供先": [], "移転先": [], "委託事項": [1, 2, 3, 4]},
        # 003 has no 委託事項1; its 提供先 come from two files: (1) 提供先1, (2) 提供先1 and 提供先2.
        "003": {"提供先": [1, 1, 2], "移転先": [1], "委託事項": [2, 3, 4, 5]},
        "004": {"提供先": list(range(1, 36)), "移転先": list(range(1, 30)), "委託事項": [1, 2, 3, 4]},
    }[key]
    assert numbers == expected


def test_the_kinds_of_report(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    assert [parsed_cards[k].kind for k in CARD_KEYS] == ["重点項目評価書"] * 3 + ["全項目評価書", "重点項目評価書"]


def test_card_labels_keep_the_two_kawasaki_cards_apart(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    labels = {parsed_cards[k].label for k in CARD_KEYS}
    assert len(labels) == 5
    assert parsed_cards["000"].label.startswith("川崎市") and parsed_cards["004"].label.startswith("川崎市")


# -- section tree ------------------------------------------------------------------------------------


def _parts(card: Card) -> list[str]:
    return [s.title for s in card.sections]


def test_parts_of_a_重点項目評価書(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    expected = [
        "I 基本情報",
        "II 特定個人情報ファイルの概要",
        "(別添1) 特定個人情報ファイル記録項目",
        "III リスク対策",
        "IV 開示請求、問合せ",
        "V 評価実施手続",
        "(別添2) 変更箇所",
    ]
    for key in ("000", "001", "002"):
        assert _parts(parsed_cards[key]) == expected, key


def test_parts_of_the_全項目評価書_003(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    assert _parts(parsed_cards["003"]) == [
        "I 基本情報",
        "(別添1) 事務の内容",
        "II 特定個人情報ファイルの概要",
        "(別添2) 特定個人情報ファイル記録項目",
        "III 特定個人情報ファイルの取扱いプロセスにおけるリスク対策",
        "IV その他のリスク対策",
        "V 開示請求、問合せ",
        "VI 評価実施手続",
        "(別添3) 変更箇所",
    ]


def test_parts_of_004_are_found_although_printed_out_of_order(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    parts = set(_parts(parsed_cards["004"]))
    assert {
        "I 基本情報",
        "II 特定個人情報ファイルの概要",
        "(別添1) 特定個人情報ファイル記録項目",
        "III リスク対策",
        "IV 開示請求、問合せ",
        "V 評価実施手続",
        "(別添2) 変更箇所",
    } <= parts


def test_003_keeps_its_per_file_level(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card: Card = parsed_cards["003"]
    part = card.sections[2]
    assert [s.title for s in part.children] == ["(1) 住民基本台帳ファイル", "(2) 本人確認情報ファイル", "(3)送付先情報ファイル"]
    first = part.children[0]
    assert [s.title for s in first.children][:3] == ["1. 特定個人情報ファイル名", "2. 基本情報", "3. 特定個人情報の入手・使用"]
    name = first.children[0]
    assert name.breadcrumb == "II 特定個人情報ファイルの概要 > (1) 住民基本台帳ファイル > 1. 特定個人情報ファイル名"
    assert [f.value for f in name.fields] == ["(1) 住民基本台帳ファイル"]
    iii = card.sections[4]
    assert [s.title for s in iii.children] == ["(1) 住民基本台帳ファイル", "(2) 本人確認情報ファイル", "(3)送付先情報ファイル"]


@pytest.mark.parametrize(
    ("key", "kind", "number", "breadcrumb"),
    [
        ("000", "提供先", 2, "II 特定個人情報ファイルの概要 > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 提供先2"),
        ("000", "委託事項", 1, "II 特定個人情報ファイルの概要 > 4. 特定個人情報ファイルの取扱いの委託 > 委託事項1"),
        ("000", "システム", 2, "I 基本情報 > 2. 特定個人情報ファイルを取り扱う事務において使用するシステム > システム2"),
        ("001", "移転先", 1, "II 特定個人情報ファイルの概要 > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 移転先1"),
        ("002", "委託事項", 3, "II 特定個人情報ファイルの概要 > 4. 特定個人情報ファイルの取扱いの委託 > 委託事項3"),
        (
            "003",
            "委託事項",
            2,
            "II 特定個人情報ファイルの概要 > (1) 住民基本台帳ファイル > 4. 特定個人情報ファイルの取扱いの委託 > 委託事項2",
        ),
        (
            "003",
            "移転先",
            1,
            "II 特定個人情報ファイルの概要 > (1) 住民基本台帳ファイル > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 移転先1",
        ),
        ("004", "提供先", 21, "II 特定個人情報ファイルの概要 > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 提供先21"),
        ("004", "委託事項", 4, "II 特定個人情報ファイルの概要 > 4. 特定個人情報ファイルの取扱いの委託 > 委託事項4"),
    ],
)
def test_breadcrumbs(parsed_cards, key: str, kind: str, number: int, breadcrumb: str) -> None:  # type: ignore[no-untyped-def]
    records = [r for r in parsed_cards[key].records(kind) if r.number == number]
    assert records, (key, kind, number)
    assert records[0].breadcrumb == breadcrumb


def test_breadcrumbs_of_003_name_the_file_of_each_block(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    crumbs = [r.breadcrumb for r in parsed_cards["003"].records("提供先")]
    assert crumbs == [
        "II 特定個人情報ファイルの概要 > (1) 住民基本台帳ファイル > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 提供先1",
        "II 特定個人情報ファイルの概要 > (2) 本人確認情報ファイル > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 提供先1",
        "II 特定個人情報ファイルの概要 > (2) 本人確認情報ファイル > 5. 特定個人情報の提供・移転(委託に伴うものを除く。) > 提供先2",
    ]


def test_breadcrumbs_use_ascii_roman_numerals(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    for card in parsed_cards.values():
        for section in card.walk():
            assert not re.search("[Ⅰ-Ⅻ]", section.breadcrumb), section.breadcrumb


def test_002_lacks_the_sections_its_file_lacks(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card: Card = parsed_cards["002"]
    ii = [s.title for s in card.sections[1].children]
    assert ii == [
        "1. 特定個人情報ファイル名",
        "2. 基本情報",
        "3. 特定個人情報の入手・使用",  # printed as <b>3. …</b>
        "4. 特定個人情報ファイルの取扱いの委託",
    ]
    assert card.find_section("提供・移転(委託に伴うものを除く。)") is None


def test_000_starts_at_システム2_without_inventing_i1(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    i = parsed_cards["000"].sections[0]
    assert [s.title for s in i.children][0] == "2. 特定個人情報ファイルを取り扱う事務において使用するシステム"
    assert [r.number for r in i.children[0].records] == [2, 3]


def test_003_別添1_holds_the_description_of_the_work(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    part = parsed_cards["003"].sections[1]
    assert [s.title for s in part.children] == ["(1) 住民基本台帳ファイルを取り扱う事務の内容"]
    values = [f.value for f in part.children[0].fields]
    assert any(v.startswith("① 住民からの住民異動届に対し") for v in values)
    # "8. 他の評価実施機関" keeps only its own value.
    other = parsed_cards["003"].find_section("他の評価実施機関")
    assert [f.value for f in other.fields] == ["—"]


# -- line ranges ---------------------------------------------------------------------------------------


def _check_ranges(card: Card, source: SourceText) -> list[tuple]:
    problems: list[tuple] = []

    def visit(section: Section, parent: Section | None) -> None:
        if not 1 <= section.line <= section.end_line <= source.line_count:
            problems.append(("section range", section.breadcrumb, section.line, section.end_line))
        if parent is not None and not parent.line <= section.line <= section.end_line <= parent.end_line:
            problems.append(("section outside parent", section.breadcrumb))
        for f in section.fields:
            if not section.line <= f.line <= f.end_line <= section.end_line:
                problems.append(("field outside section", section.breadcrumb, f.label, f.line))
        for record in section.records:
            if record.path[:-1] != section.path:
                problems.append(("record path", record.breadcrumb))
            if not section.line <= record.line <= record.end_line <= section.end_line:
                problems.append(("record outside section", record.breadcrumb, record.line, record.end_line))
            if record.name and _squeeze(record.name)[:20] not in _span(source, record.line, record.end_line):
                problems.append(("record name", record.breadcrumb, record.name))
            for f in record.fields:
                inherited_date = record.kind == "変更箇所" and f.label == "変更日"
                if not inherited_date and not record.line <= f.line <= f.end_line <= record.end_line:
                    problems.append(("field outside record", record.breadcrumb, f.label, f.line))
        for child in section.children:
            visit(child, section)

    for part in card.sections:
        visit(part, None)
    for owner, f in card.fields():
        if not f.value.strip():
            continue
        span = _span(source, f.line, f.end_line)
        for piece in f.value.split("\n"):
            piece = _squeeze(piece)
            if piece[:15] not in span or piece[-15:] not in span:
                problems.append(("value not in its lines", getattr(owner, "breadcrumb", ""), f.label, f.line, piece[:30]))
    return problems


@pytest.mark.parametrize("key", CARD_KEYS)
def test_every_line_range_holds_its_text(parsed_cards, card_sources, key: str) -> None:  # type: ignore[no-untyped-def]
    problems = _check_ranges(parsed_cards[key], card_sources[key])
    assert problems == []


def test_a_record_line_points_at_its_header(parsed_cards, card_sources) -> None:  # type: ignore[no-untyped-def]
    source = card_sources["000"]
    record = parsed_cards["000"].records("委託事項")[0]
    assert source.raw_line(record.line) == "委託事項1\t新福祉総合情報システム2次運用保守業務\t"
    f = record.get("委託先名")
    assert source.raw_line(f.line) == "③委託先名\t株式会社 アイネス\t"


def test_every_field_and_section_of_a_card_is_reachable(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    for key, card in parsed_cards.items():
        sections = list(card.walk())
        assert sections, key
        assert len({id(s) for s in sections}) == len(sections)
        assert sum(1 for _ in card.fields()) > 100, key


def test_a_layout_field_printed_before_its_own_heading_is_filed_under_it(parsed_cards, card_sources) -> None:  # type: ignore[no-untyped-def]
    """004's text prints 「法令上の根拠」 of 4. 個人番号の利用 between the heading 3. 特定個人情報ファイル名 and its own
    heading; the template places that label only in 個人番号の利用 (or 情報連携), so it is filed there."""
    card = parsed_cards["004"]
    homes = {s.breadcrumb: s for s in card.walk()}
    basis = [(crumb, f) for crumb, s in homes.items() for f in s.fields
             if crumb.startswith("I ") and f.label.endswith("法令上の根拠") and "番号法第9条" in f.value.replace(" ", "")]
    assert basis, "the legal basis of the use of My Number is read"
    assert all("個人番号の利用" in crumb for crumb, _ in basis), [crumb for crumb, _ in basis]
    crumb, f = basis[0]
    section = homes[crumb]
    assert section.line <= f.line <= f.end_line <= section.end_line
    assert "法令上の根拠" in card_sources["004"].raw_line(f.line)
    assert not any(f.label.endswith("法令上の根拠") for f in homes["I 基本情報 > 3. 特定個人情報ファイル名"].fields)
    # Two places away: the fields of 5. 情報連携 printed after the heading 7. 他の評価実施機関.
    linkage = [crumb for crumb, s in homes.items() for f in s.fields
               if crumb.startswith("I ") and f.label.endswith("法令上の根拠") and "情報照会" in f.value]
    assert linkage and all("情報連携" in crumb for crumb in linkage), linkage


def test_table_reports_keep_every_field_where_it_was_printed(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    """Re-homing is for layout extractions only: in a table report a label stands in its own section."""
    for key in ("000", "001", "002", "003"):
        card = parsed_cards[key]
        assert card.layout == "table"
        for s in card.walk():
            for f in s.fields:
                if f.label.endswith("法令上の根拠") and s.path and s.path[0].startswith("I "):
                    assert any(w in s.title for w in ("個人番号の利用", "情報連携", "情報提供ネットワーク")), (key, s.breadcrumb)
