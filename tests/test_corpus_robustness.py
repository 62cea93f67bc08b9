"""Odd corpus folders: empty, binary, truncated, CP932 and EUC-JP files, duplicates, links leading out, and a
file replaced while the index is being built. Each is skipped with a warning naming it, or indexed; no
other card is lost.

Builds start from a copy of the session's index (the five real cards are reused, not re-embedded), on a
copy of the project (`corpus_copy`); the project's own index/ is never touched.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import StaleIndexError
from qa.build import build_index
from qa.index import load_index
from qa.parsing import load_corpus

REAL = [
    "000_8d285adb8fa87899",
    "001_fea63e88436e34da",
    "002_eeb43361c0371a47",
    "003_5fcca4f6e38d6e1a",
    "004_f28069411e69241a",
]
KUMAGAYA = "001_fea63e88436e34da"  # encodes losslessly in CP932 and EUC-JIS-2004
TOYONAKA = "002_eeb43361c0371a47"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_index(index_dir: Path, dst: Path) -> Path:
    shutil.copytree(index_dir, dst, ignore=shutil.ignore_patterns(".build.lock", "_models"))
    return dst


@pytest.fixture()
def project(corpus_copy: Path, index_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(project root with corpora/, index folder holding a copy of the session's index of those corpora)."""
    return corpus_copy, _copy_index(index_dir, tmp_path / "idx")


def _add_odd_files(corpora: Path, outside: Path) -> dict[str, str]:
    """Write the odd files; return file name → what the build must do with it."""
    kumagaya = (corpora / f"{KUMAGAYA}.txt").read_text(encoding="utf-8")
    toyonaka = (corpora / f"{TOYONAKA}.txt").read_bytes()
    (corpora / "900_empty.txt").write_bytes(b"")
    (corpora / "901_blank.txt").write_bytes(b" \r\n\t\n  \n")
    (corpora / "901_wide_blank.txt").write_text("\u3000\u3000\n\u3000\n", encoding="utf-8")
    (corpora / "902_binary.txt").write_bytes(bytes(range(256)) * 64)
    (corpora / "903_image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200, 256)) * 40)
    (corpora / "904_duplicate.txt").write_bytes(toyonaka)  # same bytes as 002 under another name
    (corpora / "905_cp932.txt").write_bytes(kumagaya.encode("cp932"))  # Shift_JIS (Windows) copy of 001
    (corpora / "906_eucjp.txt").write_bytes(kumagaya.encode("euc_jis_2004"))  # EUC-JP copy of 001
    cut = int(len(toyonaka) * 0.6)
    while toyonaka[cut] & 0xC0 == 0x80 or toyonaka[cut] < 0x80:  # inside a multi-byte character
        cut += 1
    (corpora / "907_truncated.txt").write_bytes(toyonaka[: cut + 1])
    (corpora / "908_notes.md").write_text("# メモ\n\nこれは評価書ではありません。打合せのメモです。\n", encoding="utf-8")
    outside.write_text(kumagaya, encoding="utf-8")  # a real report, but outside the corpus folder
    (corpora / "909_link_out.txt").symlink_to(outside)
    (corpora / "910_link_in.txt").symlink_to(corpora / f"{KUMAGAYA}.txt")  # inside: allowed, a duplicate
    return {
        "900_empty.txt": "empty",
        "901_blank.txt": "empty",
        "901_wide_blank.txt": "no text",
        "902_binary.txt": "binary",
        "903_image.txt": "binary",
        "904_duplicate.txt": f"same content as {TOYONAKA}.txt",
        "908_notes.md": "not a 評価書",
        "909_link_out.txt": "outside the corpus folder",
        "910_link_in.txt": f"same content as {KUMAGAYA}.txt",
        "905_cp932.txt": "indexed",
        "906_eucjp.txt": "indexed",
        "907_truncated.txt": "indexed",
    }


def test_odd_files_are_skipped_by_name_or_indexed(project: tuple[Path, Path], tmp_path: Path) -> None:
    root, folder = project
    corpora = root / "corpora"
    (tmp_path / "outside").mkdir()
    expected = _add_odd_files(corpora, tmp_path / "outside" / "report.txt")

    report = build_index(corpora, folder, root=root)

    # The five real cards are all there, reused; the readable odd files are cards of their own.
    index = load_index(folder)
    indexed = {name for name, what in expected.items() if what == "indexed"}
    assert set(index.cards) == set(REAL) | {Path(n).stem for n in indexed}
    assert sorted(report.reused) == REAL
    assert sorted(report.reembedded) == sorted(Path(n).stem for n in indexed)
    for name, what in expected.items():
        if what == "indexed":
            continue
        lines = [s for s in report.skipped if s.startswith(f"{name}:")]
        assert len(lines) == 1, (name, report.skipped)
        assert what in lines[0], (name, lines[0])
    assert len(report.skipped) == len(expected) - len(indexed)
    assert index.manifest.skipped == report.skipped

    # CP932 and EUC-JP copies of 熊谷市's report are read as such, and quoted verbatim from their bytes.
    settings = Settings.load(root=root).with_(index_dir=folder)
    from qa.api import Assistant

    assistant = Assistant(settings, index)
    original = assistant.source(KUMAGAYA)
    for cid, encoding in (("905_cp932", "cp932"), ("906_eucjp", "euc_j")):
        card = index.cards[cid]
        assert card.municipality == "熊谷市" and card.published == index.cards[KUMAGAYA].published
        source = assistant.source(cid)
        assert source.encoding.startswith(encoding) and source.lines == original.lines
    assert any("cut short" in w for w in index.cards["907_truncated"].warnings)
    answer = assistant.ask("公表日は？", cards=["905_cp932"])
    assert "令和7年8月27日" in answer.answer and answer.citations[0].card == "905_cp932"

    # The index matches the folder: skipped files are known, so nothing is "new".
    assert index.stale_reasons(corpora) == []
    # Fixing a skipped file makes the index stale, so that the next `qa index` picks it up.
    shutil.copy2(corpora / f"{TOYONAKA}.txt", corpora / "900_empty.txt")
    (corpora / "900_empty.txt").write_text(
        (corpora / "900_empty.txt").read_text(encoding="utf-8") + "\n追記\n", encoding="utf-8"
    )
    assert index.stale_reasons(corpora) == ["900_empty changed since it was skipped"]
    again = build_index(corpora, folder, root=root)
    assert again.reembedded == ["900_empty"] and "900_empty" in load_index(folder).cards


def test_links_out_of_the_corpus_folder_are_refused_when_parsing(corpus_copy: Path, tmp_path: Path) -> None:
    corpora = corpus_copy / "corpora"
    secret = tmp_path / "secret.txt"
    shutil.copy2(corpora / f"{KUMAGAYA}.txt", secret)
    (corpora / "zz_link.txt").symlink_to(secret)
    (corpora / "zz_passwd.txt").symlink_to("/etc/passwd")
    (corpora / "zz_dangling.txt").symlink_to(tmp_path / "missing.txt")
    corpus = load_corpus(corpora, root=corpus_copy)
    assert sorted(c.id for c in corpus.cards) == REAL
    why = {e.path.name: e.why for e in corpus.skipped}
    assert set(why) == {"zz_link.txt", "zz_passwd.txt", "zz_dangling.txt"}
    assert all("outside the corpus folder" in w and "refused" in w for w in why.values())


def test_a_file_replaced_while_indexing(project: tuple[Path, Path]) -> None:
    """Rewritten after it was read: indexed as read, then reported stale. Rewritten before it was read:
    indexed as rewritten. Removed before it was read: skipped by name. The build completes either way."""
    root, folder = project
    corpora = root / "corpora"
    after = corpora / f"{KUMAGAYA}.txt"  # read early (changed, so parsed and embedded again)
    before = corpora / "004_f28069411e69241a.txt"  # read last
    removed = corpora / "003_5fcca4f6e38d6e1a.txt"
    after.write_text(after.read_text(encoding="utf-8") + "\n（追記）版1\n", encoding="utf-8")
    read_version = _sha(after)
    fired: set[str] = set()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "reading" and done == 1 and "early" not in fired:
            fired.add("early")
            before.write_text(before.read_text(encoding="utf-8") + "\n（追記）読む前に変更\n", encoding="utf-8")
            removed.unlink()
        if stage == "embedding" and "late" not in fired:
            fired.add("late")
            after.write_text(after.read_text(encoding="utf-8") + "（追記）版2\n", encoding="utf-8")

    report = build_index(corpora, folder, root=root, progress=progress)
    assert fired == {"early", "late"}
    assert [s.split(":")[0] for s in report.skipped] == [removed.name]

    index = load_index(folder)  # consistent and loadable
    assert index.manifest.cards[KUMAGAYA].sha256 == read_version  # what was read, not what is there now
    assert index.manifest.cards[before.stem].sha256 == _sha(before)
    assert index.stale_reasons(corpora) == [f"{KUMAGAYA} changed"]

    # Quotes are never taken from the rewritten file; the message says what to run.
    from qa.api import Assistant

    assistant = Assistant(Settings.load(root=root).with_(index_dir=folder), index)
    with pytest.raises(StaleIndexError, match="qa index"):
        assistant.source(KUMAGAYA)
    with pytest.raises(StaleIndexError, match="qa index"):
        Assistant.load(settings=Settings.load(root=root).with_(index_dir=folder))

    # The next build picks the change up, and only that card is embedded again.
    again = build_index(corpora, folder, root=root)
    assert again.reembedded == [KUMAGAYA]
    assert load_index(folder).stale_reasons(corpora) == []
