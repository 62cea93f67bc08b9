"""Adding a report (qa.ingest.add_report and `qa add`): a good report is copied and indexed; a bad one
gets a Japanese message and leaves the corpus folder exactly as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.errors import CorpusFileError
from qa.ingest import MAX_UPLOAD_BYTES, add_report, safe_name

ROOT = Path(__file__).resolve().parent.parent
MATSUDO = ROOT / "corpora" / "003_5fcca4f6e38d6e1a.txt"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpora"
    folder.mkdir()
    shutil.copy2(ROOT / "corpora" / "002_eeb43361c0371a47.txt", folder)
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_report_is_copied_under_its_own_name(corpus: Path, tmp_path: Path) -> None:
    src = tmp_path / "松戸市 住民基本台帳.txt"
    shutil.copy2(MATSUDO, src)
    path = add_report(src, corpus)
    assert path == corpus / "松戸市_住民基本台帳.txt"
    assert path.read_bytes() == MATSUDO.read_bytes()
    assert listing(corpus) == ["002_eeb43361c0371a47.txt", "松戸市_住民基本台帳.txt"]  # no temporary left
    assert add_report(src, corpus) == path  # the same file again: nothing to do


@pytest.mark.parametrize(
    "name, expected",
    [("../../etc/passwd.txt", "passwd.txt"), ("C:\\Users\\x\\report.HTML", "report.html"), (".hidden.md", "hidden.md"),
     ("a<script>b.txt", "a_script_b.txt"), ("ｒｅｐｏｒｔ　１.txt", "report_1.txt"), ("x\x00y\n.tsv", "xy.tsv")],
)
def test_names_are_sanitised(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_a_different_file_is_never_overwritten(corpus: Path, tmp_path: Path) -> None:
    src = tmp_path / "002_eeb43361c0371a47.txt"
    shutil.copy2(MATSUDO, src)
    before = (corpus / src.name).read_bytes()
    with pytest.raises(CorpusFileError, match="同じ名前の別のファイル"):
        add_report(src, corpus)
    assert (corpus / src.name).read_bytes() == before and len(listing(corpus)) == 1


def test_a_copy_under_another_name_or_suffix_is_refused(corpus: Path, tmp_path: Path) -> None:
    src = tmp_path / "copy.txt"
    shutil.copy2(corpus / "002_eeb43361c0371a47.txt", src)
    with pytest.raises(CorpusFileError, match="同じ内容の評価書"):
        add_report(src, corpus)
    shutil.copy2(MATSUDO, src)
    with pytest.raises(CorpusFileError, match="拡張子だけ違う"):
        add_report(src, corpus, name="002_eeb43361c0371a47.md")
    assert listing(corpus) == ["002_eeb43361c0371a47.txt"]


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b" \n\t\n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 40)
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    prose = tmp_path / "notes.md"
    prose.write_text("# 買い物メモ\n\n牛乳、卵、パン。\n" * 5, encoding="utf-8")
    pdf = tmp_path / "report.docx"
    pdf.write_bytes(b"%PDF-1.4\n")
    return {
        "empty": (empty, "空のファイル"),
        "blank": (blank, "空のファイル"),
        "binary": (binary, "バイナリ"),
        "too big": (big, "大きすぎます"),
        "not a report": (prose, "評価書として読み取れませんでした"),
        "unknown kind": (pdf, "この形式"),  # a Word file: not a format reports are read from
    }


@pytest.mark.parametrize("case", ["empty", "blank", "binary", "too big", "not a report", "unknown kind"])
def test_a_bad_file_is_refused_in_japanese_and_changes_nothing(corpus: Path, tmp_path: Path, case: str) -> None:
    src, why = bad_files(tmp_path)[case]
    with pytest.raises(CorpusFileError, match=why) as info:
        add_report(src, corpus)
    assert str(info.value).startswith(src.name)
    assert listing(corpus) == ["002_eeb43361c0371a47.txt"]


def test_qa_add_copies_and_indexes(corpus_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qa.api import Assistant
    from qa.cli import main

    corpora = corpus_copy / "corpora"
    moved = tmp_path / "matsudo.txt"
    shutil.move(corpora / MATSUDO.name, moved)
    index = tmp_path / "idx"
    assert main(["--root", str(corpus_copy), "--index", str(index), "index", "-q"]) == 0
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01" * 100)
    code = main(["--root", str(corpus_copy), "--index", str(index), "add", "-q", str(moved), str(bad)])
    out, err = capsys.readouterr()
    assert code == 1  # one of the two failed, and said so
    assert "bad.txt: テキストではないファイル（バイナリ）" in err
    assert "re-embedded: matsudo" in out
    assert not (corpora / "bad.txt").exists()
    assistant = Assistant.load(index, root=corpus_copy)
    answer = assistant.ask("松戸市の住民基本台帳の委託先は？")
    assert "日本電気" in answer.answer and answer.citations[0].source == "corpora/matsudo.txt"


def test_a_damaged_pdf_upload_is_refused_and_changes_nothing(corpus: Path, tmp_path: Path) -> None:
    """A .pdf goes to the PDF reader; a damaged one is refused with a clear message, nothing written."""
    src = tmp_path / "broken.pdf"
    src.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n")
    before = sorted(p.name for p in corpus.iterdir())
    with pytest.raises(CorpusFileError):
        add_report(src, corpus)
    assert sorted(p.name for p in corpus.iterdir()) == before
