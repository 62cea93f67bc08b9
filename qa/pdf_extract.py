"""A report's PDF → text the structured parser reads: table cells rebuilt as label⇥value rows, in reading order.

Every 評価書 is published as a PDF of the national form: bordered tables of label and value cells, blocks
(提供先N, 委託事項N) whose rows cross page breaks, checkboxes. A plain text dump scrambles that (004 shows how).
pdfplumber (over pdfminer.six) gives each character with its position and the form's ruling lines, so:

- each table's cells are found from its ruling lines (pdfplumber's table finder), and a row is written as its
  cells joined by tabs; a cell merged over several rows (a group label: 再委託, リスク1) leaves an empty first cell
  in the rows below, and a row that the page break split is joined back to its first half;
- text outside the tables (part headings, the declaration) is written line by line, wrapped lines joined;
- a checkbox drawn as a small square is written `[○]` when a mark is inside it, else `[ ]`; □/■ glyphs likewise;
- a header or footer that repeats in the margin of most pages (title, "- 3 -") is page furniture and dropped;
- each page starts with a line holding a form feed (the pdftotext convention), which every parser skips as
  blank and `page_of` counts, so a citation can give its page.

The text is stored beside the PDF and is the source that quotes are cut from, so citations stay verbatim.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusFileError
from qa.reading import MAX_FILE_BYTES, SourceText

PAGE_BREAK = "\f"
PDF_SUFFIX = ".pdf"
TEXT_SUFFIX = ".pdf.txt"
# A checkbox square is a small stroked rectangle; a mark inside it (○, ✓, ×, ●) means chosen.
_BOX_MIN, _BOX_MAX = 4.0, 16.0
_CHECK_MARKS = set("○◯●✓✔×✕xX〇")
_GLYPH_BOXES = {"□": "[ ]", "☐": "[ ]", "■": "[○]", "☑": "[○]", "☒": "[○]", "▣": "[○]"}
# pdfminer's Adobe-Japan1 table turns the em dash of a PDF without a ToUnicode map (a non-embedded CID font)
# into a lone combining overlay, which no report means.
_CID_FIXES = {"\u0336": "\u2014"}
_MARGIN = 0.08  # header/footer band: this share of the page height at the top and at the bottom
_LIST_ITEM = re.compile(r"^(\d{1,2}\)|\(\d{1,2}\)|\d{1,2}\.\s|[・※【◆○●■□①-⑳<＜\[])")
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
MIN_TEXT_CHARS = 20


@dataclass(frozen=True)
class Glyph:
    """One character (or checkbox token) where the page shows it; `top` grows downwards."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float


@dataclass
class Cell:
    text: str
    open_end: bool = False  # the last line ran to the right edge: a continuation joins it without a space


@dataclass
class Item:
    """A line of the page in reading order: a table row (cells) or a line of running text."""

    top: float
    cells: list[Cell]
    columns: tuple[float, ...] = ()  # the cells' left edges, for a table row
    x0: float = 0.0
    x1: float = 0.0
    size: float = 0.0
    open_top: bool = False  # a table row whose top rule is missing: the rest of a row the page break split
    open_bottom: bool = False  # a table row whose bottom rule is missing: it goes on on the next page

    @property
    def is_row(self) -> bool:
        return bool(self.columns)

    def text(self) -> str:
        return "\t".join(c.text.replace("\t", " ") for c in self.cells)


@dataclass
class Page:
    number: int
    width: float
    height: float
    items: list[Item] = field(default_factory=list)
    glyph_count: int = 0
    image_count: int = 0


# -- lines of glyphs -------------------------------------------------------------------------------------------


def _lines(glyphs: Iterable[Glyph]) -> list[list[Glyph]]:
    """Glyphs grouped into lines (by vertical overlap), each sorted left to right, lines top to bottom."""
    lines: list[list[Glyph]] = []
    for g in sorted(glyphs, key=lambda g: (round(g.top, 1), g.x0)):
        if lines:
            last = lines[-1]
            ref = last[0]
            middle = (g.top + g.bottom) / 2
            if ref.top - 0.5 <= middle <= ref.bottom + 0.5 or abs(g.top - ref.top) < 0.35 * ref.size:
                last.append(g)
                continue
        lines.append([g])
    for line in lines:
        line.sort(key=lambda g: g.x0)
    return lines


def _line_text(line: Sequence[Glyph]) -> str:
    """The glyphs of one line as text: a gap wider than a fifth of the font size is a space."""
    out: list[str] = []
    prev: Glyph | None = None
    for g in line:
        if prev is not None and g.x0 - prev.x1 > 0.2 * min(g.size, prev.size) and out and out[-1] != " ":
            out.append(" ")
        out.append(g.text)
        prev = g
    return "".join(out).strip()


def _joiner(left: str, right: str) -> str:
    """What joins a wrapped line to the next: nothing inside Japanese text, a space between Latin words."""
    if not left or not right:
        return ""
    if _CJK.match(left[-1]) or _CJK.match(right[0]):
        return ""
    return " "


def _block_text(glyphs: list[Glyph], left_edge: float, right_edge: float) -> Cell:
    """The text of a cell: wrapped lines joined, paragraphs separated by a space.

    A line wrapped when it ends within two characters of the cell's inner right edge (the cell's edge less
    the padding its text keeps on the left), unless the next line starts a list item ("2) ", "・", "①").
    """
    lines = [line for line in _lines(glyphs) if _line_text(line)]
    if lines:
        padding = max(0.0, min(line[0].x0 for line in lines) - left_edge)
        right_edge -= padding
        # Lines that all stop at one x wrapped there (text set narrower than the cell the rules draw).
        ends = sorted(line[-1].x1 for line in lines[:-1])
        if len(ends) >= 2 and ends[-1] - ends[-2] < 0.5 * lines[0][-1].size:
            right_edge = min(right_edge, ends[-1])
    text, open_end = "", False
    for line in lines:
        piece = _line_text(line)
        if text:
            text += _joiner(text, piece) if open_end and not _LIST_ITEM.match(piece) else " "
        text += piece
        size = max(g.size for g in line)
        open_end = right_edge - line[-1].x1 < 2.0 * size
    return Cell(re.sub(r" {2,}", " ", text), open_end)


# -- one page --------------------------------------------------------------------------------------------------


def _is_checkbox(obj: dict) -> bool:
    w, h = obj["x1"] - obj["x0"], obj["bottom"] - obj["top"]
    return obj.get("object_type") == "rect" and _BOX_MIN <= w <= _BOX_MAX and abs(w - h) <= 1.5


def _inside(g: Glyph, box: tuple[float, float, float, float]) -> bool:
    x0, top, x1, bottom = box
    cx, cy = (g.x0 + g.x1) / 2, (g.top + g.bottom) / 2
    return x0 <= cx <= x1 and top <= cy <= bottom


Box = tuple[float, float, float, float]  # x0, top, x1, bottom


@dataclass
class PageInput:
    """What a PDF library gives for one page: characters, ruling lines (as pdfplumber's edge dicts:
    x0, x1, top, bottom, width, height, orientation, object_type) and checkbox squares."""

    number: int
    width: float
    height: float
    glyphs: list[Glyph]
    edges: list[dict]
    checkboxes: list[Box] = field(default_factory=list)
    image_count: int = 0


def make_glyph(text: str, x0: float, x1: float, top: float, bottom: float, size: float) -> Glyph | None:
    """A character as the page shows it; a □/■ glyph becomes the `[ ]`/`[○]` mark the parser reads."""
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        return None
    text = _CID_FIXES.get(text, text)
    return Glyph(_GLYPH_BOXES.get(text, text), x0, x1, top, bottom, size or 8.0)


def plumber_input(page, number: int) -> PageInput:  # noqa: ANN001 - a pdfplumber page
    """One page through pdfplumber (pdfminer.six): its characters, ruling lines and checkbox squares."""
    glyphs = []
    for ch in page.chars:
        g = make_glyph(ch["text"], ch["x0"], ch["x1"], ch["top"], ch["bottom"], float(ch.get("size") or 0))
        if g is not None:
            glyphs.append(g)
    boxes = [(r["x0"], r["top"], r["x1"], r["bottom"]) for r in page.rects if _is_checkbox(r) and r.get("stroke")]
    edges = page.filter(lambda obj: not _is_checkbox(obj)).edges
    return PageInput(number, float(page.width), float(page.height), glyphs, list(edges), boxes, len(page.images))


def with_checkboxes(glyphs: list[Glyph], boxes: list[Box]) -> list[Glyph]:
    """Glyphs with each drawn checkbox square as one `[○]` (a mark inside it) or `[ ]` token."""
    if not boxes:
        return glyphs
    kept, tokens = [], []
    marked: set[int] = set()
    for g in glyphs:
        hit = next((i for i, b in enumerate(boxes) if _inside(g, b)), None)
        if hit is None:
            kept.append(g)
        elif g.text in _CHECK_MARKS:
            marked.add(hit)
    for i, (x0, top, x1, bottom) in enumerate(boxes):
        tokens.append(Glyph("[○]" if i in marked else "[ ]", x0, x1, top, bottom, bottom - top))
    return kept + tokens


def find_tables(edges: list[dict]) -> list[list[Box]]:
    """Cells of each table the ruling lines draw (pdfplumber's "lines" strategy, on any library's edges)."""
    from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges
    from pdfplumber.utils import filter_edges

    if not edges:
        return []
    merged = merge_edges(edges, snap_x_tolerance=3, snap_y_tolerance=3, join_x_tolerance=3, join_y_tolerance=3)
    merged = filter_edges(merged, min_length=3)
    cells = intersections_to_cells(edges_to_intersections(merged, 3, 3))
    return [[tuple(c) for c in table] for table in cells_to_tables(cells)]


def _table_items(cells: list[Box], glyphs: list[Glyph], opened: list[dict]) -> tuple[list[Item], set[int]]:
    """Rows of one table as items; also the ids of the glyphs the table used."""
    used: set[int] = set()
    texts: dict[tuple, Cell] = {}
    for cell in cells:
        inner = [g for g in glyphs if _inside(g, cell)]
        used.update(id(g) for g in inner)
        texts[cell] = _block_text(inner, cell[0], cell[2])
    tops = sorted({round(c[1], 1) for c in cells})
    items = []
    for top in tops:
        starting = sorted((c for c in cells if round(c[1], 1) == top), key=lambda c: c[0])
        # A cell merged over rows above this one (a group label) stands as an empty cell at its column.
        spanning = [c for c in cells if round(c[1], 1) < top < round(c[3], 1) - 0.5]
        row = [(c[0], texts[c]) for c in starting] + [(c[0], Cell("")) for c in spanning]
        row.sort(key=lambda pair: pair[0])
        while len(row) > 1 and not row[-1][1].text and row[-1][0] in [c[0] for c in spanning]:
            row.pop()
        bottom = max(c[3] for c in starting)
        item = Item(top=top, cells=[c for _, c in row], columns=tuple(round(x, 0) for x, _ in row))
        item.open_top = any(abs(e["top"] - top) < 1.5 for e in opened)
        item.open_bottom = any(abs(e["top"] - bottom) < 1.5 for e in opened)
        items.append(item)
    return items, used


def _text_items(glyphs: list[Glyph], right_edge: float) -> list[Item]:
    """Running text outside the tables: one item per paragraph (wrapped lines joined)."""
    items: list[Item] = []
    last_top = 0.0
    for line in _lines(glyphs):
        text = _line_text(line)
        if not text:
            continue
        size = statistics.median(g.size for g in line)
        x0, x1 = line[0].x0, line[-1].x1
        prev = items[-1] if items else None
        joined = (
            prev is not None
            and prev.cells[0].open_end
            and abs(prev.size - size) < 0.5
            and line[0].top - last_top < 2 * size
            and abs(x0 - prev.x0) < 2 * size
            and not _LIST_ITEM.match(text)
        )
        last_top = line[0].top
        if prev is not None and joined:
            cell = prev.cells[0]
            cell.text += _joiner(cell.text, text) + text
            cell.open_end = right_edge - x1 < 2.2 * size
            prev.x1 = x1
            continue
        open_end = right_edge - x1 < 2.2 * size
        items.append(Item(top=line[0].top, cells=[Cell(text, open_end)], x0=x0, x1=x1, size=size))
    return items


def _open_ends(edges: list[dict]) -> list[dict]:
    """Closing lines for cells the page break left open (their vertical rules end where no horizontal one is).

    A row split across pages is drawn without its bottom rule on the first page and without its top rule on
    the next; without them the table finder would lose both halves.
    """
    vertical = [e for e in edges if e["orientation"] == "v"]
    horizontal = [e for e in edges if e["orientation"] == "h"]
    ends: dict[float, list[float]] = {}
    for v in vertical:
        for y in (v["top"], v["bottom"]):
            closed = any(abs(h["top"] - y) < 1.5 and h["x0"] - 1.5 <= v["x0"] <= h["x1"] + 1.5 for h in horizontal)
            if not closed:
                ends.setdefault(round(y, 1), []).append(v["x0"])
    lines = []
    for y, xs in ends.items():
        if len(xs) >= 2:
            x0, x1 = min(xs), max(xs)
            lines.append({"object_type": "line", "x0": x0, "x1": x1, "top": y, "bottom": y, "width": x1 - x0,
                          "height": 0.0, "orientation": "h"})
    return lines


def layout_page(page: PageInput) -> Page:
    """One page in reading order: table rows (cells rebuilt from the ruling lines) and running text."""
    glyphs = with_checkboxes(page.glyphs, page.checkboxes)
    result = Page(number=page.number, width=page.width, height=page.height)
    result.glyph_count = len(glyphs)
    result.image_count = page.image_count
    opened = _open_ends(page.edges)
    items: list[Item] = []
    used: set[int] = set()
    for cells in find_tables(page.edges + opened):
        rows, inner = _table_items(cells, glyphs, opened)
        items += rows
        used |= inner
    loose = [g for g in glyphs if id(g) not in used]
    # Running text wraps at the page's right margin, taken as wide as the left one.
    right = page.width - min((g.x0 for g in loose), default=0.0)
    items += _text_items(loose, right)
    items.sort(key=lambda it: it.top)
    result.items = items
    return result


# -- the document ----------------------------------------------------------------------------------------------


def _furniture_key(item: Item) -> tuple[str, int]:
    """The text with its numbers blanked, and where it stands: a header repeats both (a cover title does not)."""
    return re.sub(r"\d+", "#", item.text()).replace(" ", ""), round(item.top / 4)


def drop_furniture(pages: list[Page]) -> None:
    """Remove running text in the top/bottom margin that repeats on most pages (header, page number)."""
    if len(pages) < 2:
        return
    counts: Counter[tuple[str, int]] = Counter()
    for page in pages:
        keys = {_furniture_key(it) for it in page.items if not it.is_row and _in_margin(it, page)}
        counts.update(keys)
    repeated = {k for k, n in counts.items() if n >= max(2, len(pages) // 2)}
    for page in pages:
        page.items = [
            it for it in page.items if it.is_row or not _in_margin(it, page) or _furniture_key(it) not in repeated
        ]


def _in_margin(item: Item, page: Page) -> bool:
    return item.top < page.height * _MARGIN or item.top > page.height * (1 - _MARGIN)


def _join_split_rows(pages: list[Page]) -> None:
    """A row the page break split: open at the bottom of one page, open at the top of the next, same columns."""
    for before, after in zip(pages, pages[1:]):
        if not before.items or not after.items:
            continue
        last, first = before.items[-1], after.items[0]
        if not (last.is_row and first.is_row and last.open_bottom and first.open_top):
            continue
        if len(last.cells) != len(first.cells) or any(abs(a - b) > 3 for a, b in zip(last.columns, first.columns)):
            continue
        for mine, more in zip(last.cells, first.cells):
            if more.text:
                join = _joiner(mine.text, more.text) if mine.open_end else " "
                mine.text = (mine.text + join + more.text).strip() if mine.text else more.text
                mine.open_end = more.open_end
        after.items.pop(0)


def pages_text(pages: list[Page]) -> str:
    out: list[str] = []
    for page in pages:
        out.append(PAGE_BREAK)
        out.extend(item.text() for item in page.items if item.text().strip())
    return "\n".join(out) + "\n"


def read_pdf_pages(path: Path, data: bytes) -> list[Page]:
    """The pages of a PDF (its bytes) as items; CorpusFileError for a damaged, encrypted or image-only PDF."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = [layout_page(plumber_input(page, i)) for i, page in enumerate(pdf.pages, start=1)]
    except CorpusFileError:
        raise
    except Exception as exc:  # pdfminer raises many unrelated types for a broken file; pdfplumber wraps them
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc.__context__ or exc
        if isinstance(cause, (PDFPasswordIncorrect, PDFEncryptionError)):
            why = "PDFが暗号化されています / the PDF is encrypted: save it without a password"
            raise CorpusFileError(path, why) from exc
        raise CorpusFileError(path, _damaged(f"{type(cause).__name__}: {cause}")) from exc
    if not pages:
        raise CorpusFileError(path, _damaged("no pages"))
    chars = sum(p.glyph_count for p in pages)
    images = sum(p.image_count for p in pages)
    if chars < MIN_TEXT_CHARS and not images:
        raise CorpusFileError(path, _damaged(f"{len(pages)} page(s) with {chars} character(s) and no image: empty"))
    if chars < MIN_TEXT_CHARS:
        raise CorpusFileError(
            path,
            "PDFに文字情報がありません（画像だけのスキャンPDF）。OCRには対応していません。文字を含むPDFか、テキスト版を"
            f"追加してください / the PDF has no text layer ({images} image(s), {chars} character(s): a scan?); "
            "OCR is not supported: add a PDF with text, or the text version",
        )
    return pages


def _damaged(why: str) -> str:
    return f"PDFが壊れていて読めません / the PDF is damaged and cannot be read ({why[:200]})"


def _pdf_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorpusFileError(path, f"PDFが大きすぎます / {size} bytes is over the {MAX_FILE_BYTES} byte limit")
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusFileError(path, f"読み込めません / cannot be read ({exc.strerror or exc})") from exc
    if not data.lstrip()[:5] == b"%PDF-":
        raise CorpusFileError(path, "PDFではありません / not a PDF (it does not start with %PDF-)")
    if b"%%EOF" not in data[-2048:]:
        raise CorpusFileError(path, _damaged("truncated: no %%EOF at the end of the file"))
    return data


def extract_pdf(path: Path) -> str:
    """The text of a report's PDF: a form feed line per page, table rows as tab-separated cells."""
    return _extract(Path(path))[1]


def _extract(path: Path) -> tuple[bytes, str]:
    """The PDF's bytes and their text: what is copied is what was read."""
    data = _pdf_bytes(path)
    pages = read_pdf_pages(path, data)
    drop_furniture(pages)
    _join_split_rows(pages)
    return data, pages_text(pages)


def page_of(source_text: SourceText | str, line: int) -> int | None:
    """The PDF page of a 1-based line of an extracted text, or None for a text without page breaks."""
    lines = source_text.lines if isinstance(source_text, SourceText) else source_text.split("\n")
    breaks = sum(1 for text in lines[: max(line, 0)] if text.strip(" ") == PAGE_BREAK)
    return breaks or None


# -- into the corpus -------------------------------------------------------------------------------------------


def _stem(pdf: Path, name: str | None) -> str:
    stem = (name or pdf.name).strip()
    for suffix in (TEXT_SUFFIX, PDF_SUFFIX):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    if not stem or stem.startswith(".") or "/" in stem or "\\" in stem or "\x00" in stem:
        raise CorpusFileError(pdf, f"{name!r} cannot be a report name: no folder, no leading dot")
    return stem


def ingest_pdf(pdf: Path, corpus_dir: Path, name: str | None = None) -> Path:
    """Copy a report's PDF into `corpus_dir` and write its extracted text beside it (NAME.pdf, NAME.pdf.txt).

    Returns the text file, which the index reads (the .pdf is kept for people; the index ignores it).
    Nothing is written when the PDF is damaged, has no text layer or is not a 評価書 (CorpusFileError).
    """
    from qa.parsing import parse_card

    pdf, corpus_dir = Path(pdf), Path(corpus_dir)
    stem = _stem(pdf, name)
    target_pdf, target_text = corpus_dir / f"{stem}{PDF_SUFFIX}", corpus_dir / f"{stem}{TEXT_SUFFIX}"
    for target in (target_pdf, target_text):
        if target.exists() or target.is_symlink():
            raise CorpusFileError(pdf, f"{target.name} already exists in {corpus_dir}: choose another name")
    data, text = _extract(pdf)
    encoded = text.encode("utf-8")
    source = SourceText(path=target_text, raw=text, encoding="utf_8", sha256=hashlib.sha256(encoded).hexdigest())
    parse_card(source)  # raises CorpusFileError when the PDF is not a report of the national form
    if not corpus_dir.is_dir():
        raise CorpusFileError(pdf, f"the corpus folder {corpus_dir} does not exist")
    _write_atomic(target_pdf, data)
    try:
        _write_atomic(target_text, encoded)
    except BaseException:
        target_pdf.unlink(missing_ok=True)
        raise
    return target_text


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CorpusFileError(target, f"cannot be written ({exc.strerror or exc})") from exc
