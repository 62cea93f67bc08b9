"""Adding a report to the corpus folder: checked first, then copied under its own (sanitised) name.

    from qa.ingest import add_report
    path = add_report(Path("~/Downloads/report.html"), settings.corpus_dir)   # then `qa index` (or api.build)

Used by `qa add FILE...` and by the web app's upload. A file that is not a readable report (empty, binary,
too big, not text in a known encoding, no section of the national template) raises CorpusFileError with a
Japanese message, and nothing is written: the corpus folder only ever gains complete, parseable reports.

The format is chosen by the file's suffix (READERS): each reader checks the upload and returns the name
and bytes to store. A PDF reader plugs in as one more entry (".pdf": read_pdf) without touching the rest.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from qa.errors import CorpusFileError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_NAME_CHARS = 120
# A name keeps letters of any script, digits, and - _ . ( ); anything else (slashes, spaces, quotes,
# control characters, shell and HTML punctuation) becomes "_".
_UNSAFE = re.compile(r"[^\w\-.()（）]")

# suffix -> reader(src, name) -> (name to store, bytes to store). Raises CorpusFileError.
Reader = Callable[[Path, str], tuple[str, bytes]]


def _read_text_report(src: Path, name: str) -> tuple[str, bytes]:
    """A text report (plain, Markdown, TSV, HTML): stored byte for byte once it reads and parses."""
    from qa.parsing import parse_card
    from qa.reading import read_source

    data = src.read_bytes()
    if not data.strip():
        raise CorpusFileError(name, "空のファイルです（中身がありません）。評価書のテキストを含むファイルを選んでください。")
    if b"\x00" in data[:65536]:
        raise CorpusFileError(
            name, "テキストではないファイル（バイナリ）です。テキスト・HTML・Markdown・TSV 形式の評価書を選んでください。"
        )
    try:
        source = read_source(src)
    except CorpusFileError as exc:
        raise CorpusFileError(
            name, f"テキストとして読めませんでした（UTF-8・Shift_JIS・EUC-JP のいずれでもありません）。詳細: {exc.why}"
        ) from exc
    try:
        parse_card(source, card_id=Path(name).stem)
    except CorpusFileError as exc:
        raise CorpusFileError(
            name, f"特定個人情報保護評価書として読み取れませんでした（様式の節が見つかりません）。詳細: {exc.why}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a parser failure on an odd file is a refusal, not a crash
        raise CorpusFileError(
            name, f"評価書として読み取れませんでした（{type(exc).__name__}）。ファイルの形式を確認してください。"
        ) from exc
    return name, data


READERS: dict[str, Reader] = {
    ".txt": _read_text_report,
    ".md": _read_text_report,
    ".tsv": _read_text_report,
    ".html": _read_text_report,
    ".htm": _read_text_report,
}


PDF = ".pdf"


def accepted_suffixes() -> list[str]:
    """What an upload may end with (for the file picker and the messages)."""
    return sorted([*READERS, PDF])


def safe_name(name: str) -> str:
    """The file name to store: no folders, no hidden or odd characters, at most MAX_NAME_CHARS; or an error."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    base = _UNSAFE.sub("_", base).lstrip("._-")
    stem, suffix = os.path.splitext(base)
    suffix = suffix.lower()
    stem = re.sub(r"_{2,}", "_", stem)[: MAX_NAME_CHARS - len(suffix)].rstrip("._-")
    if not stem:
        raise CorpusFileError(name or "(名前なし)", "ファイル名が使えません。英数字や日本語の名前を付けてください。")
    return stem + suffix


def add_report(src: Path, corpus_dir: Path, name: str | None = None) -> Path:
    """Copy the report `src` into `corpus_dir` as `name` (default: its own name, sanitised); the new path.

    The same file already there (same name, same bytes) is not an error: its path is returned. Refused,
    with nothing written: an unknown suffix, a file over MAX_UPLOAD_BYTES, an empty/binary/unreadable
    file, a name already used by a different file or by another report's id, a copy of a report already
    in the folder under another name.
    """
    src = Path(src)
    corpus_dir = Path(corpus_dir)
    stored = safe_name(name or src.name)
    suffix = Path(stored).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None and suffix != PDF:
        kinds = "・".join(accepted_suffixes())
        raise CorpusFileError(stored, f"この形式（{suffix or '拡張子なし'}）は追加できません。追加できる形式: {kinds}")
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise CorpusFileError(stored, f"ファイルを読めませんでした（{exc.strerror or exc}）。") from exc
    if size > MAX_UPLOAD_BYTES:
        raise CorpusFileError(
            stored, f"ファイルが大きすぎます（{size / 1e6:.1f} MB）。{MAX_UPLOAD_BYTES // (1024 * 1024)} MB までの評価書を追加できます。"
        )
    if size == 0:
        raise CorpusFileError(stored, "空のファイルです（0 バイト）。評価書のテキストを含むファイルを選んでください。")
    if not corpus_dir.is_dir():
        raise CorpusFileError(stored, f"評価書のフォルダ {corpus_dir} がありません。")
    if suffix == PDF:
        # The PDF is kept beside its extracted text (NAME.pdf + NAME.pdf.txt); quotes are cut from the text.
        from qa.pdf_extract import ingest_pdf

        return ingest_pdf(src, corpus_dir, Path(stored).stem)
    assert reader is not None
    stored, data = reader(src, stored)
    return _store(corpus_dir, stored, data)


def _store(corpus_dir: Path, name: str, data: bytes) -> Path:
    """Write `data` as corpus_dir/name without ever replacing a file, whole or not at all."""
    from qa.parsing import corpus_files

    dest = corpus_dir / name
    digest = hashlib.sha256(data).hexdigest()
    if dest.exists() or dest.is_symlink():
        if dest.is_file() and not dest.is_symlink() and _sha256(dest) == digest:
            return dest
        raise CorpusFileError(
            name, "同じ名前の別のファイルが既にあります。上書きはしません。別の名前を付けて追加してください。"
        )
    stem = dest.stem
    for other in corpus_files(corpus_dir):
        if other.stem == stem:
            raise CorpusFileError(
                name, f"同じ名前（拡張子だけ違う）の評価書 {other.name} が既にあります。別の名前を付けて追加してください。"
            )
        if other.is_file() and not other.is_symlink() and other.stat().st_size == len(data) and _sha256(other) == digest:
            raise CorpusFileError(name, f"同じ内容の評価書が {other.name} として既にあります。")
    # A hidden temporary name (not a corpus suffix, so no build picks it up), then a hard link: link()
    # fails if the name was taken meanwhile, where rename() would silently replace it.
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=corpus_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, dest)
        except FileExistsError as exc:
            raise CorpusFileError(name, "同じ名前のファイルが今追加されました。別の名前を付けてください。") from exc
        except OSError:  # a file system without hard links: exclusive create instead
            with open(dest, "xb") as f:
                f.write(data)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def remove_report(path: Path, corpus_dir: Path) -> None:
    """Undo an add: delete `path`, which must be a file directly inside `corpus_dir`."""
    path = Path(path)
    if path.parent.resolve() != Path(corpus_dir).resolve():
        raise CorpusFileError(path, f"{corpus_dir} のファイルではないため削除しません。")
    path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
