"""Choice fields: the selected option is read from the form's bracket text and circle marks, not from
the converters' unreliable `checked` attributes; empty template fields are recognised as empty."""

from __future__ import annotations

import pytest

from qa.parsing import Card, Field
from qa.parsing.html import read_choice


def _field(card: Card, label: str, *, section: str | None = None, record: str | None = None, nth: int = 0) -> Field:
    found = []
    for owner, f in card.fields():
        where = getattr(owner, "breadcrumb", "")
        if label not in f.key:
            continue
        if section is not None and section not in where:
            continue
        if record is not None and getattr(owner, "title", "").split(" ")[0] != record:
            continue
        found.append(f)
    assert len(found) > nth, f"{card.id}: no {label} in {section or record}"
    return found[nth]


@pytest.mark.parametrize(
    ("key", "label", "where", "selected"),
    [
        # 000: label⇥value rows, bracket text before <選択肢>
        ("000", "委託の有無", {"section": "II 特定個人情報ファイルの概要"}, ["委託する"]),
        ("000", "対象となる本人の数", {"section": "II 特定個人情報ファイルの概要 > 2. 基本情報"}, ["10万人以上100万人未満"]),
        ("000", "記録される項目", {}, ["100項目以上"]),
        ("000", "使用者数", {}, ["100人以上500人未満"]),  # "<input/> 100人以上500人未満 [] … <選択肢>"
        ("000", "再委託の有無", {"record": "委託事項1"}, ["再委託する"]),
        ("000", "委託先における取扱者数", {"record": "委託事項2"}, ["10人以上50人未満"]),
        ("000", "提供方法", {"record": "提供先1"}, ["情報提供ネットワークシステム"]),  # [<input/>] vs []
        ("000", "移転方法", {"record": "移転先1"}, ["庁内連携システム"]),  # a radio among checkboxes
        ("000", "実施の有無", {"section": "8. 監査"}, ["自己点検", "外部監査"]),
        ("000", "重大事故が発生したか", {}, ["発生あり"]),
        ("000", "しきい値判断結果", {}, ["基礎項目評価及び重点項目評価の実施が義務付けられる"]),
        # 001: HTML rows with broken brackets and ＜選択肢＞
        ("001", "提供・移転の有無", {}, ["行っていない"]),
        ("001", "対象人数", {}, ["1,000人以上1万人未満"]),
        ("001", "対象となる本人の数", {"section": "2. 基本情報"}, ["1万人未満"]),
        ("001", "使用者数", {}, ["10人以上50人未満"]),  # "<input/> 10人以上50人未満] <選択肢>"
        ("001", "再委託の有無", {"record": "委託事項1"}, ["再委託しない"]),
        ("001", "委託先における取扱者数", {"record": "委託事項1"}, ["10人未満"]),
        ("001", "リスクへの対策は十分か", {"section": "III リスク対策 > 2."}, ["十分である"]),
        ("001", "他のシステムとの接続", {"record": "システム1"}, ["庁内連携システム", "既存住民基本台帳システム", "宛名システム等"]),
        ("001", "再委託先による特定個人情報ファイルの適切な取扱いの担保", {}, ["再委託していない"]),
        # 002: markdown + TSV with double tabs, "[ … ]" with spaces
        ("002", "委託の有無", {}, ["委託する"]),  # "<input/> 委託する [ ] <選択肢>"
        ("002", "対象となる本人の数", {}, ["10万人以上100万人未満"]),
        ("002", "再委託の有無", {"record": "委託事項1"}, ["再委託する"]),
        ("002", "再委託の有無", {"record": "委託事項2"}, ["再委託する"]),
        ("002", "再委託の有無", {"record": "委託事項3"}, ["再委託しない"]),
        ("002", "再委託の有無", {"record": "委託事項4"}, ["再委託しない"]),
        ("002", "従業者に対する教育・啓発", {"section": "9."}, ["十分に行っている"]),
        ("002", "重大事故が発生したか", {}, ["発生なし"]),
        # 003: pipe tables, checked="" mostly reliable, some rows shifted
        ("003", "対象人数", {}, ["30万人以上"]),
        ("003", "再委託の有無", {"record": "委託事項2"}, ["再委託する"]),
        ("003", "再委託の有無", {"record": "委託事項3"}, ["再委託しない"]),
        ("003", "再委託の有無", {"record": "委託事項4"}, ["再委託しない"]),
        ("003", "再委託の有無", {"record": "委託事項5"}, ["再委託しない"]),
        ("003", "提供・移転の有無", {"section": "(1) 住民基本台帳ファイル"}, ["提供を行っている (80) 件", "移転を行っている (69) 件"]),
        ("003", "提供・移転の有無", {"section": "(2) 本人確認情報ファイル"}, ["提供を行っている (2) 件"]),
        ("003", "主な記録項目", {"section": "(2) 本人確認情報ファイル"}, ["個人番号", "4情報(氏名、性別、生年月日、住所)", "その他住民票関係情報"]),
        ("003", "入手元", {"section": "II 特定個人情報ファイルの概要 > (1)"}, [
            "行政機関・独立行政法人等 (地方公共団体情報システム機構)", "地方公共団体・地方独立行政法人 (市区町村)",
        ]),
        ("003", "死者の個人番号", {"section": "III 特定個人情報ファイルの取扱いプロセスにおけるリスク対策 > (1)"}, ["保管している"]),
        ("003", "死者の個人番号", {"section": "III 特定個人情報ファイルの取扱いプロセスにおけるリスク対策 > (3)"}, ["保管していない"]),
        ("003", "手数料等", {}, ["無料 (手数料額、納付方法:)"]),  # "[無料]" names the option it begins
        ("003", "しきい値判断結果", {}, ["基礎項目評価及び全項目評価の実施が義務付けられる"]),
        # 004: PDF text, "[ ○ ]" detached from its option list
        ("004", "提供方法", {"record": "提供先21"}, ["情報提供ネットワークシステム"]),
        ("004", "本人の数", {"record": "提供先22"}, ["1万人以上10万人未満"]),
        ("004", "移転方法", {"record": "移転先21"}, ["庁内連携システム"]),
    ],
)
def test_selected_option(parsed_cards, key: str, label: str, where: dict, selected: list[str]) -> None:  # type: ignore[no-untyped-def]
    f = _field(parsed_cards[key], label, **where)
    assert f.selected == selected
    assert not f.empty


def test_003_shifted_checkboxes_are_not_believed(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    """委託事項3 of 003: the converter ticked 「再委託しない」 in the rows of ②, 対象となる本人の数 and ③."""
    card = parsed_cards["003"]
    assert _field(card, "取扱いを委託する特定個人情報ファイルの範囲", record="委託事項3").selected == ["特定個人情報ファイルの一部"]
    assert _field(card, "対象となる本人の数", record="委託事項3").selected == ["10万人以上100万人未満"]
    assert _field(card, "委託先における取扱者数", record="委託事項3").selected == ["10人以上50人未満"]
    assert _field(card, "委託先への特定個人情報ファイルの提供方法", record="委託事項3").selected == ["その他 (既存住基システム端末)"]


def test_002_audit_follows_the_change_history(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    """002's change history unticks 外部監査 (「[○]外部監査 → [ ]外部監査」); its 内部監査 box is checked."""
    selected = _field(parsed_cards["002"], "実施の有無", section="8. 監査").selected
    assert "内部監査" in selected and "外部監査" not in selected


def test_options_keep_their_digits_and_drop_counts(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    f = _field(parsed_cards["000"], "対象となる本人の数", section="2. 基本情報")
    assert f.options == ["1万人未満", "1万人以上10万人未満", "10万人以上100万人未満", "100万人以上1,000万人未満", "1,000万人以上"]
    f = _field(parsed_cards["000"], "委託の有無")
    assert f.options == ["委託する", "委託しない"]  # not "委託しない (2) 件"
    f = _field(parsed_cards["003"], "法令上の根拠", section="6. 情報提供ネットワークシステムによる情報連携")
    assert f.options == ["実施する", "実施しない", "未定"]  # the list ends where the next paragraph starts


@pytest.mark.parametrize(
    ("key", "label", "where"),
    [
        ("001", "提供する情報の対象となる本人の数", {"record": "提供先1"}),  # "[] <選択肢> 1) …"
        ("001", "提供方法", {"record": "提供先1"}),  # "[] 情報提供ネットワークシステム [] 専用線 …"
        ("001", "再委託の許諾方法", {"record": "委託事項1"}),
        ("001", "法令上の根拠", {"record": "移転先1"}),
        ("002", "リスクへの対策は十分か", {"section": "III リスク対策 > 4.", "nth": 1}),  # "[ ] &lt;選択肢&gt; …"
        ("003", "リスクへの対策は十分か", {"section": "(1) 住民基本台帳ファイル > 6."}),  # "[] | <選択肢> …"
        ("000", "実施日", {"section": "V 評価実施手続 > 1. 基礎項目評価"}),
        ("000", "法令による特別の手続", {}),  # "—"
        ("001", "法令による特別の手続", {}),  # "-"
    ],
)
def test_empty_template_fields(parsed_cards, key: str, label: str, where: dict) -> None:  # type: ignore[no-untyped-def]
    f = _field(parsed_cards[key], label, **where)
    assert f.empty
    assert not f.selected


def test_a_choice_that_cannot_be_read_is_none_not_guessed(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    # 000 ①入手元: only bare, unchecked boxes — the file does not say which sources apply.
    f = _field(parsed_cards["000"], "入手元")
    assert f.selected is None
    assert not f.empty
    assert len(f.options) == 6


def test_every_selected_option_is_text_of_its_field(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    for key, card in parsed_cards.items():
        for _, f in card.fields():
            for option in f.selected or []:
                assert option.replace(" ", "") in f.value.replace(" ", "").replace("\n", ""), (key, f.label, option)


# -- the reader on its own ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "selected", "options"),
    [
        ("[委託する] <選択肢> 1) 委託する 2) 委託しない (3) 件", ["委託する"], ["委託する", "委託しない"]),
        ("[ 10人以上50人未満 ] <選択肢> 1) 10人未満 2) 10人以上50人未満", ["10人以上50人未満"], ["10人未満", "10人以上50人未満"]),
        ("<p>[十分である]</p> <p><選択肢></p> <p>1) 特に力を入れている 2) 十分である</p>", ["十分である"], ["特に力を入れている", "十分である"]),
        ("[] <選択肢> 1) 行っている 2) 行っていない", [], ["行っている", "行っていない"]),
        ("[] A [○] B [] C", ["B"], ["A", "B", "C"]),
        ("[ ○ ] 情報提供ネットワークシステム [", ["情報提供ネットワークシステム"], ["情報提供ネットワークシステム"]),
        ('[<input type="checkbox"/>] A [] B [<input checked="" type="checkbox"/>] C', ["A", "C"], ["A", "B", "C"]),
        ('[<input type="radio"/>] A [<input type="checkbox"/>] B', ["A"], ["A", "B"]),
        ('<input type="checkbox"/> A <input checked="" type="checkbox"/> B', ["B"], ["A", "B"]),
        ('<input type="checkbox"/> A <input type="checkbox"/> B', None, ["A", "B"]),
        ("[] A [] B", [], ["A", "B"]),
    ],
)
def test_read_choice(value: str, selected: list[str] | None, options: list[str]) -> None:
    choice = read_choice(value)
    assert choice is not None
    assert choice.selected == selected
    assert choice.options == options


@pytest.mark.parametrize("value", ["児童手当関係情報", "番号法第19条第8号 (省令第2条)", "", "[注記] のみ"])
def test_read_choice_of_plain_values_is_none(value: str) -> None:
    assert read_choice(value) is None
