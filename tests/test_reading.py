"""Reading report files: encodings detected from the content, line ends, and the normalised view that
maps back to raw text so a citation is always a verbatim substring of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import CorpusFileError
from qa.reading import SourceText, normalize, normalize_with_map, read_source

SAMPLE = "特定個人情報保護評価書(重点項目評価書)\n評価書番号\t評価書名\n15\t子育て支援に関する事務 重点項目評価書\n①事務の名称\t子育て支援に関する事務\n"


def _source(raw: str) -> SourceText:
    return SourceText(path=Path("x.txt"), raw=raw, encoding="utf_8", sha256="0")


# -- normalisation ------------------------------------------------------------------------------------


def test_normalize_folds_full_width_and_keeps_circled_numbers() -> None:
    assert normalize("番号法第１９条第８号") == "番号法第19条第8号"
    assert normalize("Ⅱ　特定個人情報ファイルの概要") == "II 特定個人情報ファイルの概要"
    assert normalize("①法令上の根拠") == "①法令上の根拠"
    assert normalize("⑳") == "⑳"
    assert normalize("日本電気㈱千葉支社") == "日本電気(株)千葉支社"
    assert normalize("システム2～5") == normalize("システム2〜5") == "システム2~5"


def test_normalize_composes_half_width_voiced_kana() -> None:
    assert normalize("ﾃﾞｰﾀ") == "データ"
    out, back = normalize_with_map("ｶﾞ")
    assert out == "ガ" and back == [0]


def test_normalize_with_map_points_every_character_into_the_raw_text() -> None:
    raw = "（別添１）　㈱ＡＢＣ"
    norm, back = normalize_with_map(raw)
    assert norm == normalize(raw)
    assert len(back) == len(norm)
    assert all(0 <= i < len(raw) for i in back)


# -- verbatim quotes ----------------------------------------------------------------------------------


def test_find_quote_returns_raw_full_width_text_of_004(card_sources) -> None:  # type: ignore[no-untyped-def]
    source = card_sources["004"]
    # Line 156 writes the law in full-width digits; the needle is in normalised (half-width) form.
    found = source.find_quote("番号法第19条第8号", first=150)
    assert found is not None
    line, quote = found
    assert quote == "番号法第１９条第８号"
    assert quote in source.raw_line(line)
    # The same needle earlier in the file meets a line that mixes both widths; the quote follows the file.
    line, quote = source.find_quote("番号法第19条第8号")
    assert quote == "番号法第19条第８号" and quote in source.raw_line(line)


@pytest.mark.parametrize(
    ("needle", "full_width"),
    [
        ("番号法第19条第8号に基づく主務省令第2条の表158の項", True),
        ("II 特定個人情報ファイルの概要", True),
        ("生活保護法(昭和25年法律第144号)に基づき", True),
        ("提供先21 都道府県知事", False),
    ],
)
def test_find_quote_is_verbatim_for_normalised_needles_of_004(card_sources, needle: str, full_width: bool) -> None:  # type: ignore[no-untyped-def]
    source = card_sources["004"]
    found = source.find_quote(needle)
    assert found is not None, needle
    line, quote = found
    assert quote in source.raw_line(line)
    assert normalize(quote) == normalize(needle)
    assert (quote != needle) is full_width  # full-width digits, spaces, brackets or roman numerals in the file


def test_find_quote_cuts_the_circled_company_mark_of_003(card_sources) -> None:  # type: ignore[no-untyped-def]
    source = card_sources["003"]
    found = source.find_quote("日本電気(株)千葉支社")
    assert found is not None
    assert found[1] == "日本電気㈱千葉支社"


def test_find_quote_searches_only_the_given_lines(card_sources) -> None:  # type: ignore[no-untyped-def]
    source = card_sources["000"]
    line, _ = source.find_quote("株式会社 アイネス")
    assert source.find_quote("株式会社 アイネス", first=line + 1, last=line + 5) is None
    assert source.find_quote("株式会社 アイネス", first=line, last=line) == (line, "株式会社 アイネス")
    assert source.find_quote("   ") is None
    assert source.find_quote("この文はどこにもない") is None


def test_raw_span_clamps_out_of_range_offsets() -> None:
    source = _source("ＡＢＣ\n")
    assert source.raw_span(1, 0, 99) == "ＡＢＣ"
    assert source.raw_span(1, 5, 9) == ""
    assert source.raw_span(1, 2, 1) == ""


# -- line ends and encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_numbers_do_not_depend_on_line_ends(tmp_path: Path, newline: str) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(SAMPLE.replace("\n", newline).encode("utf-8"))
    source = read_source(path)
    assert source.lines[:4] == SAMPLE.split("\n")[:4]
    assert source.raw_line(4) == "①事務の名称\t子育て支援に関する事務"
    assert source.find_quote("子育て支援に関する事務", first=4) == (4, "子育て支援に関する事務")


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf_8"),
        ("utf-8-sig", "utf_8_sig"),
        ("cp932", "cp932"),
        ("shift_jis", None),
        ("euc_jp", None),
        ("euc_jis_2004", None),
        ("utf-16", "utf_16"),
    ],
)
def test_encoding_is_detected_from_the_content(tmp_path: Path, encoding: str, expected: str | None) -> None:
    text = SAMPLE.replace("①", "1.") if encoding in ("shift_jis", "euc_jp") else SAMPLE
    path = tmp_path / "report.dat"  # the name says nothing about the encoding
    path.write_bytes(text.encode(encoding))
    source = read_source(path)
    assert source.raw == text
    assert not source.raw.startswith("\ufeff")
    if expected is not None:
        assert source.encoding == expected


def test_a_multibyte_character_cut_at_the_end_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_bytes(SAMPLE.rstrip("\n").encode("utf-8")[:-1])  # last 務 loses one of its three bytes
    source = read_source(path)
    assert source.encoding == "utf_8"
    assert source.raw == SAMPLE.rstrip("\n")[:-1]


def test_a_cp932_file_with_a_stray_byte_is_still_read(tmp_path: Path) -> None:
    text = SAMPLE * 40
    data = bytearray(text.encode("cp932"))
    data[200:200] = b"\x81"  # half of a double-byte character
    path = tmp_path / "stray.txt"
    path.write_bytes(bytes(data))
    source = read_source(path)
    assert "子育て支援に関する事務" in source.raw
    assert source.raw.count("\ufffd") <= 1


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b" \n\t\r\n  \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "binary"),
        (bytes(range(256)) * 4, "binary"),
    ],
)
def test_unreadable_files_raise_a_corpus_file_error_naming_them(tmp_path: Path, data: bytes, why: str) -> None:
    path = tmp_path / "bad file.txt"
    path.write_bytes(data)
    with pytest.raises(CorpusFileError) as info:
        read_source(path)
    assert info.value.path == path
    assert "bad file.txt" in str(info.value)
    assert why in str(info.value)


def test_a_missing_file_or_a_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(CorpusFileError, match="cannot be read"):
        read_source(tmp_path / "nowhere.txt")
    with pytest.raises(CorpusFileError, match="cannot be read"):
        read_source(tmp_path)


def test_sha256_is_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "r.txt"
    path.write_bytes(SAMPLE.encode("cp932"))
    assert read_source(path).sha256 == hashlib.sha256(SAMPLE.encode("cp932")).hexdigest()


def test_a_utf8_file_with_a_stray_byte_is_not_taken_for_a_legacy_encoding(tmp_path: Path, card_files) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(card_files["001"].read_bytes())
    middle = data.index("熊谷市長".encode())
    data[middle:middle] = b"\xff"
    path = tmp_path / "stray.txt"
    path.write_bytes(bytes(data))
    source = read_source(path)
    assert source.encoding == "utf_8"
    assert source.raw.count("\ufffd") == 1
    assert "\ufffd熊谷市長" in source.raw
