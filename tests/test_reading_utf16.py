"""UTF-16 without a byte-order mark is read as text, by its pattern of NUL bytes, not refused as binary.

Old failure (issue 14, item 7): a report saved as UTF-16 without BOM was skipped as "binary file, not text".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import CorpusFileError
from qa.reading import read_source

ROOT = Path(__file__).resolve().parent.parent
MATSUDO = ROOT / "corpora" / "003_5fcca4f6e38d6e1a.txt"  # markdown tables: much ASCII among the kanji


@pytest.mark.parametrize("codec", ["utf_16_le", "utf_16_be"])
def test_utf16_without_bom_is_read(tmp_path: Path, codec: str) -> None:
    original = read_source(MATSUDO)
    path = tmp_path / "003_utf16.txt"
    data = original.raw.encode(codec)
    assert not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    path.write_bytes(data)
    source = read_source(path)
    assert source.encoding == codec
    assert source.lines == original.lines


def test_utf16_without_bom_cut_mid_character_is_read(tmp_path: Path) -> None:
    original = read_source(MATSUDO)
    path = tmp_path / "cut.txt"
    path.write_bytes(original.raw.encode("utf_16_le")[:-1])  # an odd byte count: the last character cut
    assert read_source(path).raw == original.raw[:-1]


def test_a_japanese_only_utf16_file_is_read(tmp_path: Path) -> None:
    """Kanji and kana only: no NUL byte at all in UTF-16, but every other byte in the CJK/kana rows."""
    text = "特定個人情報保護評価書\n" + "熊谷市子育て支援に関する事務　全項目評価書\n" * 20
    path = tmp_path / "kana.txt"
    path.write_bytes(text.encode("utf_16_le"))
    assert read_source(path).raw == text


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" * 50,
        bytes(range(256)) * 64,
        b"\x00" * 4096,
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(200)) * 20,
    ],
)
def test_binary_files_are_still_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(data)
    with pytest.raises(CorpusFileError, match="binary|not text|empty"):
        read_source(path)
