"""Files as they arrive in practice: other encodings and line ends, cut-off, empty or binary files, and
folders that mix good and bad ones. A bad file is skipped with a reason naming it; it never stops the rest."""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from pathlib import Path

import pytest

import qa.parsing
from qa.errors import CorpusFileError
from qa.parsing import Card, load_corpus, parse_file

CARD_KEYS = ["000", "001", "002", "003", "004"]
# Characters of the UTF-8 originals that a Japanese legacy encoding has under another code point, as a
# real conversion would map them; the stray Thai/Korean noise of 002/003 becomes "?".
LEGACY_EQUIVALENTS = {"—": "―"}


def _shape(card: Card) -> tuple[dict, dict, list]:
    metadata = {k: v for k, v in card.metadata().items() if k not in ("id", "source")}
    counts = dict(Counter(r.kind for r in card.records()))
    lines = [(r.kind, r.number, r.line, r.end_line) for r in card.records() if r.kind != "変更箇所"]
    return metadata, counts, lines


def _legacy_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    for a, b in LEGACY_EQUIVALENTS.items():
        text = text.replace(a, b)
    return text


@pytest.fixture(scope="module")
def shapes(parsed_cards) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    return {key: _shape(card) for key, card in parsed_cards.items()}


# -- encodings and line ends ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", CARD_KEYS)
@pytest.mark.parametrize("encoding", ["cp932", "euc_jis_2004"])
def test_legacy_encoded_copy_parses_like_the_original(
    tmp_path: Path, card_files, shapes, key: str, encoding: str  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / card_files[key].name
    path.write_bytes(_legacy_text(card_files[key]).encode(encoding, errors="replace"))
    card = parse_file(path)
    assert _shape(card) == shapes[key]


def test_cp932_copy_quotes_the_decoded_text(tmp_path: Path, card_files) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "004.txt"
    path.write_bytes(_legacy_text(card_files["004"]).encode("cp932"))
    source = qa.parsing.read_source(path)
    assert source.encoding == "cp932"
    line, quote = source.find_quote("番号法第19条第8号", first=150)
    assert quote == "番号法第１９条第８号"


@pytest.mark.parametrize("key", CARD_KEYS)
@pytest.mark.parametrize("variant", ["bom+crlf", "cr"])
def test_bom_and_line_end_variants_parse_like_the_original(
    tmp_path: Path, card_files, shapes, key: str, variant: str  # type: ignore[no-untyped-def]
) -> None:
    text = card_files[key].read_text(encoding="utf-8")
    path = tmp_path / card_files[key].name
    if variant == "bom+crlf":
        path.write_bytes(text.replace("\n", "\r\n").encode("utf-8-sig"))
    else:
        path.write_bytes(text.replace("\n", "\r").encode("utf-8"))
    source = qa.parsing.read_source(path)
    assert source.encoding == ("utf_8_sig" if variant == "bom+crlf" else "utf_8")
    card = parse_file(path)
    assert _shape(card) == shapes[key]  # same records at the same line numbers


# -- cut-off reports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", CARD_KEYS)
def test_a_report_cut_in_half_is_a_partial_card(tmp_path: Path, card_files, parsed_cards, key: str) -> None:  # type: ignore[no-untyped-def]
    data = card_files[key].read_bytes()
    path = tmp_path / card_files[key].name
    path.write_bytes(data[: len(data) // 2 + 1])  # likely inside a multi-byte character
    card = parse_file(path)
    full = parsed_cards[key]
    assert card.title == full.title and card.number == full.number
    assert 0 < len(card.records()) < len(full.records())
    lines = path.read_bytes().count(b"\n") + 1
    assert all(r.end_line <= lines for r in card.records())
    assert not full.warnings
    if not any("変更箇所" in s.title for s in card.sections):
        assert card.warnings and "cut short" in card.warnings[0]


@pytest.mark.parametrize("key", CARD_KEYS)
def test_a_report_cut_before_its_change_history_says_it_may_be_incomplete(
    tmp_path: Path, card_files, key: str  # type: ignore[no-untyped-def]
) -> None:
    data = card_files[key].read_bytes()
    path = tmp_path / card_files[key].name
    path.write_bytes(data[: len(data) // 4])
    card = parse_file(path)
    assert card.warnings == ["no (別添) 変更箇所 section: the file may be incomplete (cut short)"]


@pytest.mark.parametrize("key", CARD_KEYS)
@pytest.mark.parametrize("fraction", [0.15, 0.7])
def test_a_report_cut_anywhere_parses_or_is_skipped_with_a_reason(
    tmp_path: Path, card_files, key: str, fraction: float  # type: ignore[no-untyped-def]
) -> None:
    lines = card_files[key].read_text(encoding="utf-8").split("\n")
    path = tmp_path / "cut.txt"
    path.write_text("\n".join(lines[: int(len(lines) * fraction)]), encoding="utf-8")
    try:
        card = parse_file(path)
    except CorpusFileError as exc:
        assert "cut.txt" in str(exc) and "評価書" in str(exc)
    else:
        assert any(True for _ in card.fields())


def test_only_the_cover_page_left_is_skipped_with_a_clear_reason(tmp_path: Path, card_files) -> None:  # type: ignore[no-untyped-def]
    lines = card_files["000"].read_text(encoding="utf-8").split("\n")
    path = tmp_path / "cover.txt"
    path.write_text("\n".join(lines[:20]), encoding="utf-8")
    with pytest.raises(CorpusFileError, match="cover.txt: no section of the national template"):
        parse_file(path)


def test_scrambled_reports_never_crash_the_parser(tmp_path: Path, card_files) -> None:  # type: ignore[no-untyped-def]
    """Dropped, shuffled and corrupted lines: the parser returns a card or a CorpusFileError, nothing else."""
    rng = random.Random(20240601)
    junk = ["|", "\t", "<", ">", "[", "]", "○", "①", "提供先", "<input checked/>", "<選択肢>", "1)", "(1)", "II "]
    for key in CARD_KEYS:
        lines = card_files[key].read_text(encoding="utf-8").split("\n")
        for trial in range(3):
            mutated = list(lines)
            if trial % 3 == 0:
                mutated = [line for line in mutated if rng.random() > 0.3]
            elif trial % 3 == 1:
                i = rng.randrange(len(mutated))
                segment = mutated[i : i + 150]
                rng.shuffle(segment)
                mutated[i : i + 150] = segment
            else:
                for _ in range(40):
                    i = rng.randrange(len(mutated))
                    k = rng.randrange(len(mutated[i]) + 1)
                    mutated[i] = mutated[i][:k] + rng.choice(junk) + mutated[i][k:]
            path = tmp_path / f"{key}_{trial}.txt"
            path.write_text("\n".join(mutated), encoding="utf-8")
            try:
                parse_file(path)
            except CorpusFileError:
                pass


# -- unreadable files --------------------------------------------------------------------------------------

BAD_FILES = {
    "empty.txt": b"",
    "blank.txt": b"  \r\n\n\t \n",
    "random.txt": bytes(random.Random(7).randrange(256) for _ in range(4096)) + b"\x00",
    "image.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00",
    "notes.md": "# 会議メモ\n\n来週の予定を確認する。\n".encode(),
}
REASONS = {
    "empty.txt": "empty",
    "blank.txt": "empty",
    "random.txt": "binary",
    "image.txt": "binary",
    "notes.md": "not a 評価書",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_raises_a_corpus_file_error_naming_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    with pytest.raises(CorpusFileError) as info:
        parse_file(path)
    assert str(info.value).startswith(f"{name}: ")
    assert REASONS[name] in info.value.why
    assert info.value.path == path


def test_a_folder_mixing_good_and_bad_files(tmp_path: Path, card_files, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    for key in ("001", "003"):
        (tmp_path / card_files[key].name).write_bytes(card_files[key].read_bytes())
    (tmp_path / "002_cp932.txt").write_bytes(_legacy_text(card_files["002"]).encode("cp932", errors="replace"))
    for name, data in BAD_FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder.txt").mkdir()  # not a file: not listed
    (tmp_path / "README.pdf").write_bytes(b"%PDF-1.4")  # not a report suffix: not listed
    os.symlink(tmp_path / "gone.txt", tmp_path / "dangling.txt")
    with caplog.at_level(logging.WARNING, logger="qa.parsing"):
        corpus = load_corpus(tmp_path)
    assert sorted(c.id for c in corpus.cards) == ["001_fea63e88436e34da", "002_cp932", "003_5fcca4f6e38d6e1a"]
    skipped = sorted(exc.path.name for exc in corpus.skipped)
    assert skipped == sorted([*BAD_FILES, "dangling.txt"])
    for exc in corpus.skipped:
        assert str(exc).startswith(f"{exc.path.name}: ")
        assert any(exc.path.name in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert corpus.get("002").municipality == "豊中市"


def test_a_parser_error_on_one_file_does_not_stop_the_others(
    tmp_path: Path, card_files, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    for key in ("001", "002"):
        (tmp_path / card_files[key].name).write_bytes(card_files[key].read_bytes())
    real = qa.parsing.parse_card

    def flaky(source, *args, **kwargs):  # type: ignore[no-untyped-def]
        if source.path.name.startswith("001"):
            raise RuntimeError("unexpected layout")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(qa.parsing, "parse_card", flaky)
    with caplog.at_level(logging.WARNING, logger="qa.parsing"):
        corpus = load_corpus(tmp_path)
    assert [c.id for c in corpus.cards] == ["002_eeb43361c0371a47"]
    assert len(corpus.skipped) == 1
    assert "001_fea63e88436e34da.txt: could not be parsed (RuntimeError: unexpected layout)" in str(corpus.skipped[0])
    assert "001_fea63e88436e34da.txt" in caplog.text


def test_load_corpus_with_explicit_paths_reports_missing_ones(tmp_path: Path, card_files) -> None:  # type: ignore[no-untyped-def]
    corpus = load_corpus(tmp_path, paths=[card_files["001"], tmp_path / "missing.txt", tmp_path])
    assert [c.id for c in corpus.cards] == ["001_fea63e88436e34da"]
    assert [e.path.name for e in corpus.skipped] == ["missing.txt", tmp_path.name]
    assert all("cannot be read" in e.why for e in corpus.skipped)


def test_corpus_get_by_prefix_and_unknown_ids(parsed_cards) -> None:  # type: ignore[no-untyped-def]
    from qa.errors import CardNotFoundError
    from qa.parsing import Corpus

    corpus = Corpus(cards=list(parsed_cards.values()))
    assert corpus.get("004").id == "004_f28069411e69241a"
    assert corpus.get("004_f28069411e69241a").id == "004_f28069411e69241a"
    with pytest.raises(CardNotFoundError, match="no single card matches '9'"):
        corpus.get("9")
    with pytest.raises(CardNotFoundError):
        corpus.get("00")  # ambiguous
