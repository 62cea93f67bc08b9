"""Repeated blocks of the real reports — 提供先N/移転先N, 委託事項N, システムN, 記録項目 groups and the
change history — checked field by field against the text of the files."""

from __future__ import annotations

import re

import pytest

from qa.parsing import Card, Record
from qa.parsing.template import DATE


def _record(card: Card, kind: str, number: int, nth: int = 0) -> Record:
    found = [r for r in card.records(kind) if r.number == number]
    assert len(found) > nth, f"{card.id}: no {kind}{number}"
    return found[nth]


def _names(card: Card, kind: str) -> list[str | None]:
    return [r.name for r in card.records(kind)]


# -- 提供先 / 移転先 -----------------------------------------------------------------------------------


def test_000_provision_blocks(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card = parsed_cards["000"]
    assert _names(card, "提供先") == ["都道府県知事等", "都道府県知事等", "都道府県知事等", "独立行政法人日本学生支援機構"]
    assert _names(card, "移転先") == [
        "市民文化局市民生活部戸籍住民サービス課",
        "健康福祉局生活保護・自立支援室",
        "まちづくり局住宅政策部市営住宅管理課",
        "健康福祉局地域包括ケア推進室",
    ]
    p4 = _record(card, "提供先", 4)
    assert p4.value("法令上の根拠") == "番号法第19条第8号に基づく主務省令第2条の表の141の項"
    assert p4.value("提供先における用途") == "独立行政法人日本学生支援機構法による学資の貸与及び支給に関する事務"
    assert p4.value("提供する情報") == "児童手当関係情報"
    assert p4.value("本人の範囲") == "児童手当・特例給付を現に受給している者及び受給していた者"
    assert p4.value("時期・頻度") == "情報提供ネットワークシステムを介して特定個人情報の提供を求められた都度"
    p1 = _record(card, "提供先", 1)
    assert p1.value("法令上の根拠") == "番号法第19条第8号に基づく主務省令第2条の表の42の項"
    assert p1.value("提供する情報").startswith("児童手当法による児童手当若しくは特例給付の支給に関する情報")
    m1 = _record(card, "移転先", 1)
    assert m1.value("法令上の根拠") == "住民基本台帳法第7条第11の2号"
    assert m1.value("時期・頻度") == "開庁日の開庁時間(8:30~17:15)に資格異動が発生する都度(5分間隔)"
    # Every block has the seven fields ①…⑦ of the template.
    for record in card.records("提供先") + card.records("移転先"):
        assert [f.label[0] for f in record.fields] == list("①②③④⑤⑥⑦"), record.title


def test_001_provision_blocks_are_empty_template_blocks(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card = parsed_cards["001"]
    for record in card.records("提供先") + card.records("移転先"):
        assert record.name is None
        assert len(record.fields) == 7
        assert all(f.empty for f in record.fields), record.title
        assert record.value("法令上の根拠") is None


def test_002_has_no_provision_blocks(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    assert parsed_cards["002"].records("提供先") == []
    assert parsed_cards["002"].records("移転先") == []


def test_003_provision_blocks_of_two_files(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card = parsed_cards["003"]
    assert _names(card, "提供先") == [
        "番号法 第19条第8号に定める提供先(別紙1参照)",
        "都道府県",
        "都道府県及び地方公共団体情報システム機構",
    ]
    first = _record(card, "提供先", 1, nth=0)
    assert first.value("法令上の根拠") == "番号法 別表"
    assert first.value("時期・頻度") == "情報提供ネットワークシステムを通じて特定個人情報の提供依頼のあった都度。"
    second = _record(card, "提供先", 1, nth=1)
    assert second.value("法令上の根拠") == "住基法第30条の6(市町村長から都道府県知事への本人確認情報の通知等)"
    p2 = _record(card, "提供先", 2)
    assert p2.value("時期・頻度") == "必要に応じて随時(1年に1回程度)。"
    m1 = _record(card, "移転先", 1)
    assert m1.name.startswith("番号法第9条第1項別表に定める事務を行う部署")
    assert m1.value("移転する情報") == "氏名、生年月日、性別、住所、個人番号、異動事由、異動年月日等の住民基本台帳情報"
    assert m1.value("時期・頻度") == "住民基本台帳情報に更新があった都度。"


def test_004_block_headers_read_both_ways(parsed_cards, card_sources) -> None:  # type: ignore[no-untyped-def]
    card, source = parsed_cards["004"], card_sources["004"]
    p1 = _record(card, "提供先", 1)  # printed "都道府県知事 提供先1"
    assert p1.name == "都道府県知事"
    assert source.norm_lines[_header_line(source, "提供先1") - 1].strip() == "都道府県知事 提供先1"
    p2 = _record(card, "提供先", 2)  # printed "提供先2 市町村長"
    assert p2.name == "市町村長"
    assert _record(card, "提供先", 18).name == "独立行政法人日本学生支援機構"
    assert _record(card, "提供先", 22).name == "文部科学大臣、都道府県知事又は都道府県教育委員会"
    assert _record(card, "移転先", 1).name == "こども未来局児童家庭支援・虐待対策室"
    assert _record(card, "移転先", 29).name == "健康福祉局医療保険部医療保険課"


def _header_line(source, header: str) -> int:  # type: ignore[no-untyped-def]
    for lineno, line in enumerate(source.norm_lines, start=1):
        if re.fullmatch(rf"(\S.*\s)?{header}(\s\S.*)?", line.strip()):
            return lineno
    raise AssertionError(header)


def test_004_bare_headers_take_the_name_printed_near_them(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card = parsed_cards["004"]
    # "移転先17" alone on its line; its name follows, wrapped over two lines.
    assert _record(card, "移転先", 17).name == (
        "健康福祉局障害保健福祉部障害福祉課、健康福祉局医療保険部国民年金・福祉医療課、こども未来局児童家庭支援・虐待対策室"
    )
    # The other bare headers get the authority or department printed alone inside their block.
    assert _record(card, "提供先", 3).name == "都道府県知事"
    assert _record(card, "移転先", 9).name == "健康福祉局医療保険部国民年金・福祉医療課"
    assert all(r.name for r in card.records("提供先") + card.records("移転先"))


@pytest.mark.parametrize("number", range(21, 36))
def test_004_later_provision_blocks_are_read_whole(parsed_cards, card_sources, number: int) -> None:  # type: ignore[no-untyped-def]
    """From 提供先21 on the layout is cleaner: the law cited right under each header is the block's ①."""
    card, source = parsed_cards["004"], card_sources["004"]
    record = _record(card, "提供先", number)
    header = _header_line(source, f"提供先{number}")
    under = next(line.strip() for line in source.norm_lines[header:] if line.strip())
    assert under == f"①法令上の根拠 {record.value('法令上の根拠')}"
    assert record.value("法令上の根拠").startswith("番号法第19条第8号に基づく主務省令第2条の表")
    assert record.value("本人の範囲") == "保護を受けようとする者、受けている者及び受けていた者"
    assert record.value("時期・頻度") == "情報提供ネットワークシステムを介して特定個人情報の提供を求められた都度"
    assert record.value("提供先における用途")
    if number != 21:  # 21's ③ and ④ sit before its header, in the part printed between the blocks
        assert record.value("提供する情報") == "生活保護関係情報であって主務省令で定めるもの"


def test_004_values_printed_before_their_header_join_the_block(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card = parsed_cards["004"]
    p21 = _record(card, "提供先", 21)
    assert p21.value("提供する情報") == "生活保護関係情報であって主務省令で定めるもの"
    assert p21.get("本人の数") is not None
    assert p21.line < p21.fields[-1].line
    m21 = _record(card, "移転先", 21)
    assert m21.value("移転する情報").startswith("生活保護関係情報であって主務省令で定めるもの")
    # …and no longer clutter the block printed before them.
    p35 = _record(card, "提供先", 35)
    assert not any(f.key.startswith("移転") for f in p35.fields)


def test_004_provision_laws_of_the_early_blocks(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    card = parsed_cards["004"]
    assert _record(card, "提供先", 1).value("法令上の根拠") == "番号法第19条第8号に基づく主務省令第2条の表13の項"
    assert _record(card, "提供先", 3).value("法令上の根拠") == "番号法第19条第8号に基づく主務省令第2条の表20の項"
    assert _record(card, "提供先", 18).value("法令上の根拠") == "番号法第19条第8号に基づく主務省令第2条の表141の項"


# -- 委託事項 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "number", "name", "company"),
    [
        ("000", 1, "新福祉総合情報システム2次運用保守業務", "株式会社 アイネス"),
        ("000", 2, "申請管理システム運用保守業務委託", "株式会社 日立製作所"),
        ("001", 1, "利用者負担額決定通知書及び納入通知書の印刷及び封入封緘業務委託", "株式会社ジーシーシー"),
        ("002", 1, "子ども子育て支援システム保守", "富士通Japan株式会社"),
        ("002", 2, "庁内連携システム・宛名システムの保守", "日本電気株式会社"),  # header printed as <b>委託事項2</b>
        ("002", 3, "窓口関連委託業務", "株式会社パソナ"),
        ("002", 4, "電子申込システムの保守", "株式会社NTTデータ関西"),
        ("003", 2, "既存住基システムにおける保守業務", "日本電気(株)千葉支社"),  # the file writes ㈱
        ("003", 3, "既存住基システムにおける住民票等の発行業務", "株式会社 アイネスリレーションズ"),
        ("003", 4, "マイナンバーカードの交付にかかるコールセンター業務", "株式会社 総合キャリアオプション"),
        ("003", 5, "マイナンバーカードの交付等にかかる窓口受付業務", "(株)キャリアリンク"),
    ],
)
def test_entrustments(parsed_cards, card_sources, key: str, number: int, name: str, company: str) -> None:  # type: ignore[no-untyped-def]
    record = _record(parsed_cards[key], "委託事項", number)
    assert record.name == name
    assert record.value("委託先名") == company
    f = record.get("委託先名")
    line, quote = card_sources[key].find_quote(company, first=f.line, last=f.end_line)
    assert line == f.line
    assert quote in card_sources[key].raw_line(line)


def test_entrustment_fields(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    r = _record(parsed_cards["000"], "委託事項", 1)
    assert r.value("委託内容") == (
        "維持管理業務、アプリケーション保守業務、ソフトウェア保守業務、制度改正に伴うプログラム改修、機器更新に伴うデータ移行等"
    )
    assert r.value("再委託の許諾方法") == "委託業者から書面による申請に基づき、妥当性を考慮し書面により許諾を回答する。"
    assert r.value("再委託事項") == "運用・保守業務の一部を再委託"
    assert r.get("再委託の有無").group == "再委託"
    r = _record(parsed_cards["001"], "委託事項", 1)
    assert r.value("再委託の許諾方法") is None and r.get("再委託の許諾方法").empty
    assert r.value("再委託事項") is None
    r = _record(parsed_cards["003"], "委託事項", 2)
    assert r.value("委託先名の確認方法") == "松戸市情報公開条例に基づく契約書の開示請求により確認することができる。"
    assert r.value("再委託事項").startswith("既存住基システムにおいて委託先及び本市が技術的な理由等により必要と認めた場合")


def test_003_has_no_委託事項1(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    assert [r.number for r in parsed_cards["003"].records("委託事項")] == [2, 3, 4, 5]


def test_002_entrustment_blocks_are_not_merged(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    for record in parsed_cards["002"].records("委託事項"):
        keys = [f.key for f in record.fields]
        assert len(keys) == len(set(keys)) == 6, record.title


# -- システム ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("000", {2: "システム連携基盤", 3: "中間サーバ"}),
        (
            "001",
            {1: "子ども子育て支援システム", 2: "団体内統合宛名システム", 3: "中間サーバ", 4: "共通基盤システム(庁内連携システム)"},
        ),
        ("002", {3: "団体内統合宛名システム", 4: "中間サーバー"}),
        (
            "003",
            {
                1: "既存住民基本台帳システム(以下「既存住基システム」という。別添1参照。)",
                3: "中間サーバ",
                4: "庁内共通連携基盤システム(団体内統合宛名システム)",
                5: "コンビニ交付システム",
            },
        ),
        (
            "004",
            {
                1: "福祉総合情報システム(生活保護システム)",
                2: "システム連携基盤",
                3: "中間サーバー",
                4: "生活保護等版レセプト管理クラウド",
                5: "医療保険者等向け中間サーバー等",
            },
        ),
    ],
)
def test_systems(parsed_cards, key: str, names: dict[int, str]) -> None:  # type: ignore[no-untyped-def]
    got = {r.number: r.value("システムの名称") for r in parsed_cards[key].records("システム") if r.number in names}
    assert got == names


def test_system_functions_and_connections(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    s2 = _record(parsed_cards["000"], "システム", 2)
    assert s2.value("システムの機能").startswith("1 団体内統合宛名管理機能 既存業務システムから住登者データ")
    assert s2.get("他のシステムとの接続") is not None
    s3 = _record(parsed_cards["003"], "システム", 3)
    assert s3.value("システムの機能").startswith("中間サーバは、情報提供ネットワークシステム(インターフェイスシステム)")


# -- 記録項目 -------------------------------------------------------------------------------------------


def test_record_item_groups(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    groups = {key: [r.name for r in parsed_cards[key].records("記録項目")] for key in ("000", "001", "002")}
    assert groups == {
        "000": ["資格管理情報", "支給関係情報", "口座登録・連携ファイル関係情報", "申請管理システム関係情報"],
        "001": ["識別情報", "連絡先等情報", "業務関係情報"],
        "002": ["資格関連情報", "レセプト情報", "口座情報", "健康保険情報", "福祉世帯情報", "個人番号管理情報"],
    }


def test_record_items_one_per_field(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    ident = parsed_cards["001"].records("記録項目")[0]
    assert [f.value for f in ident.fields] == ["個人番号", "宛名番号"]  # "1.個人番号,2.宛名番号"
    contact = parsed_cards["001"].records("記録項目")[1]
    assert [f.value for f in contact.fields][:3] == ["氏名", "生年月日", "性別"]
    account = parsed_cards["002"].records("記録項目")[2]
    assert [f.value for f in account.fields] == [
        "金融機関名", "金融機関コード", "支店名", "支店コード", "口座種別", "口座名義人", "口座番号",
    ]
    first = parsed_cards["000"].records("記録項目")[0]
    assert [f.value for f in first.fields][:3] == ["認定番号", "申請年月日", "決定日"]
    assert len(first.fields) == 59
    # A bullet keeps the separators inside its parentheses.
    signature = parsed_cards["000"].records("記録項目")[3].fields[1].value
    assert signature.startswith("電子署名検証結果データ(署名検証年月日、署名検証結果、")


def test_004_record_item_groups_from_the_layout_text(parsed_cards, card_sources) -> None:  # type: ignore[no-untyped-def]
    """The PDF extraction prints "【決定関連情報】" and its items run on over wrapped lines ("保" / "護開始日")."""
    groups = parsed_cards["004"].records("記録項目")
    assert [r.name for r in groups] == [
        "決定関連情報", "医療扶助関連情報", "介護扶助関連情報", "就労自立給付金関連情報", "進学準備給付金関連情報",
        "経理関連情報", "返還金関連情報", "口座登録・連携ファイル関連情報",
    ]
    decision = groups[0]
    assert [f.value for f in decision.fields][:3] == ["氏名", "生年月日", "性別"]
    assert len(decision.fields) == 51 and decision.fields[-1].value == "保護決定履歴"
    lines = card_sources["004"].norm_lines
    for record in groups:
        assert all(f.label == "項目" for f in record.fields)
        for f in record.fields:  # each item is the text of its lines, wrapped or not
            assert f.value in "".join(line.strip() for line in lines[f.line - 1 : f.end_line])
    wrapped = next(f for f in decision.fields if f.value == "保護開始日")
    assert wrapped.end_line == wrapped.line + 1
    assert "資産保有情報(土地、家屋、車、各金融機関残高)" in [f.value for f in decision.fields]
    # The scrambled text after the list is not an item of its last group.
    assert groups[-1].end_line - groups[-1].line <= 2


def test_003_record_items_are_fields_of_the_appendix(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    part = parsed_cards["003"].sections[3]
    assert part.title == "(別添2) 特定個人情報ファイル記録項目"
    assert part.records == []
    assert len(part.fields) == 6


# -- change history ------------------------------------------------------------------------------------


def _row(record: Record) -> dict[str, str]:
    return {f.label: f.value for f in record.fields}


def test_003_first_change_row(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    first = parsed_cards["003"].records("変更箇所")[0]
    assert _row(first) == {
        "変更日": "令和3年6月14日",
        "項目": "VI-1-①実施日",
        "変更前の記載": "平成26年12月18日",
        "変更後の記載": "令和2年7月10日",
        "提出時期": "事後",
        "提出時期に係る説明": "評価の再実施",
    }
    assert first.breadcrumb == "(別添3) 変更箇所 > 変更1"


def test_003_a_row_without_date_keeps_the_date_above_and_cites_its_line(parsed_cards, card_sources) -> None:  # type: ignore[no-untyped-def]
    rows = parsed_cards["003"].records("変更箇所")
    undated = next(r for r in rows if r.value("項目") == "別紙1 提供先No.54 提供先における用途")
    date = undated.get("変更日")
    assert date.value == "令和3年7月26日"
    assert date.line < undated.line
    assert "令和3年7月26日" in card_sources["003"].raw_line(date.line)


def test_000_change_rows(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    rows = parsed_cards["000"].records("変更箇所")
    assert _row(rows[0]) == {
        "変更日": "平成28年3月28日",
        "項目": "I 基本情報(1. 特定個人情報ファイルを取り扱う事務 ③対象人数)",
        "変更前の記載": "30万人以上",
        "変更後の記載": "10万人以上30万人未満",
        "提出時期": "事後",
        "提出時期に係る説明": rows[0].value("提出時期に係る説明"),
    }
    assert rows[0].value("提出時期に係る説明").startswith("しきい値判断結果の変更に伴う変更であるため")
    company = next(r for r in rows if r.value("項目", ) and r.value("項目").endswith("委託事項1③委託先名)"))
    assert company.value("変更前の記載") == "株式会社 アイネス 首都圏営業第一部"
    assert company.value("変更後の記載") == "株式会社 アイネス"
    assert company.value("変更日") == "令和7年7月31日"


def test_002_change_row_of_a_company_name(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    rows = parsed_cards["002"].records("変更箇所")
    row = next(r for r in rows if r.value("項目") == "Ⅱ-4-委託事項1-③ 委託先名".replace("Ⅱ", "II"))
    assert (row.value("変更日"), row.value("変更前の記載"), row.value("変更後の記載")) == (
        "令和3年6月30日",
        "富士通株式会社",
        "富士通Japan株式会社",
    )


def test_001_change_rows(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    rows = parsed_cards["001"].records("変更箇所")
    assert [r.value("変更日") for r in rows] == ["令和7年5月21日"] * 3 + ["令和7年8月27日"] * 6
    assert rows[0].value("変更前の記載") == "発生なし"
    assert rows[0].value("変更後の記載") == "発生あり"


def test_004_change_records_keep_their_dates(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    rows = parsed_cards["004"].records("変更箇所")
    dates = [r.value("変更日") for r in rows if r.value("変更日")]
    assert len(dates) > 100
    assert all(DATE.fullmatch(d) for d in dates)
    assert all(r.fields for r in rows)
