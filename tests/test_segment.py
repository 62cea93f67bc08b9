"""Sudachi segmentation against the real sudachidict-core dictionary."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from qa.segment import Segmenter, _pieces, default_segmenter, dictionary_version, sentences


@pytest.fixture(scope="module")
def seg() -> Segmenter:
    return Segmenter()


def test_compound_and_its_mode_a_units(seg: Segmenter) -> None:
    # Mode C cuts 生活保護関係情報 as 生活保護|関係|情報; mode A splits 生活保護 further.
    assert seg.tokens("生活保護関係情報") == ["生活保護", "生活", "保護", "関係", "情報"]
    assert seg.compound_tokens("生活保護関係情報") == [
        ("生活保護", ("生活", "保護")),
        ("関係", ()),
        ("情報", ()),
    ]
    toks = seg.tokens("特定個人情報ファイル")
    assert toks[:4] == ["特定個人情報", "特定", "個人", "情報"]


def test_normalized_forms(seg: Segmenter) -> None:
    assert "取り扱い" in seg.tokens("取扱い")
    assert "為る" in seg.tokens("提供する")


def test_punctuation_and_spaces_dropped(seg: Segmenter) -> None:
    assert seg.tokens("「提供」、。！？（）・…　 \n※") == ["提供"]
    assert seg.tokens("。、「」") == []


def test_nfkc_numbers_and_ascii(seg: Segmenter) -> None:
    toks = seg.tokens("第２５条（ＩＴ）")
    assert "25" in toks and "２５" not in toks
    assert "it" in toks  # ASCII is lower-cased


def test_empty(seg: Segmenter) -> None:
    assert seg.tokens("") == []
    assert seg.tokens("   \n\t　") == []
    assert seg.compound_tokens("") == []
    assert seg.surface_tokens("") == []


def test_long_input(seg: Segmenter) -> None:
    unit = "特定個人情報ファイルを取り扱う事務において、生活保護関係情報を提供する。"
    text = (unit * 3000)[:100_000]
    toks = seg.tokens(text)
    assert len(toks) > 10_000 and "生活保護" in toks
    # No full stop or newline at all: the text is cut by characters instead.
    flat = ("生活保護関係情報" * 13_000)[:100_000]
    assert seg.tokens(flat).count("生活保護") > 10_000


def test_pieces_cover_text_under_limit() -> None:
    text = "あ" * 30_000 + "。" + "情報を提供する。\n" * 5_000
    pieces = _pieces(text, limit=16_000)
    assert "".join(p for _, p in pieces) == text
    assert all(text[o : o + len(p)] == p for o, p in pieces)
    assert all(len(p.encode("utf-8")) <= 16_000 for _, p in pieces)


def test_surface_tokens_offsets(seg: Segmenter) -> None:
    toks = seg.surface_tokens("２５条、第１項（ＩＴ）")
    assert [t.normalized for t in toks] == ["25", "条", "第", "1", "項", "it"]
    text = "25条、第1項(IT)"  # the NFKC text the offsets index
    assert all(text[t.start : t.end] == t.surface for t in toks)
    raw = "①生活保護関係情報を提供する。" * 5000
    long_toks = seg.surface_tokens(raw, normalize=False)
    assert all(raw[t.start : t.end] == t.surface for t in long_toks)


def test_thread_safety(seg: Segmenter) -> None:
    unit = "特定個人情報ファイルを取り扱う事務、生活保護関係情報を提供する。"
    texts = [f"第{i}条 {unit}" * (1 + i % 7) for i in range(200)]
    expected = [Segmenter().tokens(t) for t in texts]
    shared = Segmenter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(shared.tokens, texts))
    assert got == expected


def test_sentences_keep_delimiters_and_text() -> None:
    text = "はい。「そう。」と言った！次？\n\n見出し\n最後"
    parts = sentences(text)
    assert parts == ["はい。", "「そう。」", "と言った！", "次？\n\n", "見出し\n", "最後"]
    assert "".join(parts) == text
    assert sentences("") == []


def test_dictionary_version_and_default() -> None:
    assert dictionary_version() not in ("", "unknown")
    assert default_segmenter() is default_segmenter()


def test_reading(seg: Segmenter) -> None:
    assert seg.reading("横浜") == "ヨコハマ"
    assert seg.reading("相模原、") == "サガミハラ"
    assert seg.reading("") == ""
