"""Which PDF library reads the national form best: pdfplumber (pdfminer.six) vs pypdfium2, side by side.

Both feed the same cell reconstruction (qa.pdf_extract.layout_page: pdfplumber's ruling-line table finder on
the library's edges, checkbox squares, running text), so the comparison is of what each library gives:
characters with positions and ruling lines. A third column, pdfplumber's own extract_text() without the
table rebuilding, shows what a plain text dump gives the parser.

The PDFs are drawn by tests/pdf_forms.py from the parsed cards of the real reports. Scored per report:
- rows: share of the table rows drawn that come out as the same cells (whitespace ignored), in order;
- cells: the same over single cells;
- fields / records: what the parser reads from the text, against the text version of the report;
- time: extraction wall time (median of 3 runs).

    .venv/bin/python benchmarks/pdf_extract.py            # 001 002 004
    .venv/bin/python benchmarks/pdf_extract.py 000 003

Last measured (2 shared cores; rows / cells / seconds):
    report  pdfplumber           pypdfium2            plain dump
    000     0.989 0.996  5.3 s   0.972 0.990  2.6 s   0.286 0.105
    001     1.000 1.000  2.6 s   1.000 1.000  1.1 s   0.498 0.334
    002     0.993 0.996  1.6 s   0.976 0.986  0.9 s   0.590 0.342
    003     0.992 0.997  7.7 s   0.901 0.958  3.9 s   0.167 0.054
    004     0.983 0.992  7.1 s   0.993 0.997  4.3 s   0.198 0.079
pdfplumber is the reader: the more accurate on four of five (pypdfium2 loses characters of the
non-embedded CID fonts, e.g. 003, and needs hand-written path and glyph-box handling), about twice as slow.
"""

from __future__ import annotations

import ctypes
import difflib
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pdf_forms import FormLayout, write_form_pdf  # noqa: E402

from qa.parsing import Card, parse_card, parse_file  # noqa: E402
from qa.pdf_extract import (  # noqa: E402
    PageInput,
    _is_checkbox,
    drop_furniture,
    layout_page,
    make_glyph,
    pages_text,
    plumber_input,
)
from qa.pdf_extract import _join_split_rows as join_split_rows  # noqa: E402
from qa.reading import SourceText  # noqa: E402

LAYOUTS = {"000": "text", "001": "drawn", "002": "glyph", "003": "drawn", "004": "text"}


def _finish(pages: list) -> str:
    drop_furniture(pages)
    join_split_rows(pages)
    return pages_text(pages)


def read_pdfplumber(path: Path) -> str:
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        return _finish([layout_page(plumber_input(p, i)) for i, p in enumerate(pdf.pages, 1)])


def read_plain_dump(path: Path) -> str:
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        return "\n".join("\f\n" + (p.extract_text() or "") for p in pdf.pages)


def _pdfium_page(page, number: int) -> PageInput:  # noqa: ANN001 - a pypdfium2 page
    import pypdfium2.raw as c

    width, height = page.get_size()
    text = page.get_textpage()
    glyphs = []
    for i in range(text.count_chars()):
        # The loose box spans the glyph's advance (what spacing needs); its height is the font's, so the
        # line is placed by the origin instead (PDFium's tight box of a CID glyph is often flat).
        left, _, right, _ = text.get_charbox(i, loose=True)
        size = c.FPDFText_GetFontSize(text.raw, i)
        ox, oy = ctypes.c_double(), ctypes.c_double()
        c.FPDFText_GetCharOrigin(text.raw, i, ox, oy)
        top = height - oy.value - 0.88 * size
        g = make_glyph(text.get_text_range(i, 1), left, right, top, top + size, size)
        if g is not None:
            glyphs.append(g)
    edges: list[dict] = []
    boxes = []
    images = 0
    for obj in page.get_objects(max_depth=4):
        if obj.type == c.FPDF_PAGEOBJ_IMAGE:
            images += 1
        if obj.type != c.FPDF_PAGEOBJ_PATH:
            continue
        matrix = obj.get_matrix()
        points: list[tuple[int, float, float, bool]] = []
        for j in range(c.FPDFPath_CountSegments(obj.raw)):
            seg = c.FPDFPath_GetPathSegment(obj.raw, j)
            x, y = ctypes.c_float(), ctypes.c_float()
            c.FPDFPathSegment_GetPoint(seg, x, y)
            px, py = matrix.on_point(x.value, y.value)
            points.append((c.FPDFPathSegment_GetType(seg), px, height - py, bool(c.FPDFPathSegment_GetClose(seg))))
        segments = []
        start = prev = None
        for kind, x, y, close in points:
            if kind == c.FPDF_SEGMENT_MOVETO:
                start = prev = (x, y)
                continue
            if prev is not None and kind == c.FPDF_SEGMENT_LINETO and prev != (x, y):
                segments.append((prev, (x, y)))
            prev = (x, y)
            if close and start is not None and prev != start:
                segments.append((prev, start))
        if len(segments) == 4:
            xs = [p[0] for s in segments for p in s]
            ys = [p[1] for s in segments for p in s]
            box = {"object_type": "rect", "x0": min(xs), "x1": max(xs), "top": min(ys), "bottom": max(ys)}
            if _is_checkbox(box):
                boxes.append((box["x0"], box["top"], box["x1"], box["bottom"]))
                continue
        for (x0, y0), (x1, y1) in segments:
            if abs(y0 - y1) < 0.5 and abs(x1 - x0) >= 1:
                edges.append(_edge("h", min(x0, x1), max(x0, x1), y0, y0))
            elif abs(x0 - x1) < 0.5 and abs(y1 - y0) >= 1:
                edges.append(_edge("v", x0, x0, min(y0, y1), max(y0, y1)))
    return PageInput(number, width, height, glyphs, edges, boxes, images)


def _edge(orientation: str, x0: float, x1: float, top: float, bottom: float) -> dict:
    return {"object_type": "line", "orientation": orientation, "x0": x0, "x1": x1, "top": top, "bottom": bottom,
            "width": x1 - x0, "height": bottom - top}


def read_pypdfium2(path: Path) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        return _finish([layout_page(_pdfium_page(pdf[i], i + 1)) for i in range(len(pdf))])
    finally:
        pdf.close()


def _norm(cell: str) -> str:
    cell = re.sub(r"\[\s*○\s*\]", "[○]", cell)
    cell = re.sub(r"\[\s*\]", "[ ]", cell)
    return re.sub(r"\s+", "", cell)


def _trimmed(row: tuple[str, ...]) -> tuple[str, ...]:
    """A row without its trailing empty cells (an empty last cell is drawn, but a trailing tab is not text)."""
    cells = list(row)
    while len(cells) > 1 and not cells[-1]:
        cells.pop()
    return tuple(cells)


def score(drawn: list[list[str]], text: str) -> tuple[float, float]:
    got = [tuple(_norm(c) for c in line.split("\t")) for line in text.split("\n") if line.strip()]
    want = [tuple(_norm(c) for c in row) for row in drawn]
    got, want = [_trimmed(row) for row in got], [_trimmed(row) for row in want]
    rows = difflib.SequenceMatcher(None, want, got, autojunk=False)
    row_hits = sum(b.size for b in rows.get_matching_blocks())
    flat_want = [c for row in want for c in row if c]
    flat_got = [c for row in got for c in row if c]
    cells = difflib.SequenceMatcher(None, flat_want, flat_got, autojunk=False)
    cell_hits = sum(b.size for b in cells.get_matching_blocks())
    return row_hits / max(len(want), 1), cell_hits / max(len(flat_want), 1)


def counts(card: Card) -> tuple[int, dict[str, int]]:
    return sum(1 for _ in card.fields()), dict(Counter(r.kind for r in card.records()))


def main(names: list[str]) -> None:
    readers: dict[str, Callable[[Path], str]] = {
        "pdfplumber": read_pdfplumber,
        "pypdfium2": read_pypdfium2,
        "plain dump": read_plain_dump,
    }
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'report':7} {'reader':11} {'time s':>7} {'rows':>6} {'cells':>6} {'fields':>13}  records (pdf / text)")
        for name in names:
            source = next((ROOT / "corpora").glob(f"{name}_*.txt"))
            card = parse_file(source)
            pdf = Path(tmp) / f"{name}.pdf"
            layout = write_form_pdf(card, pdf, FormLayout(checkbox=LAYOUTS.get(name, "drawn"),
                                                          template_order=name == "004"))
            want_fields, want_records = counts(card)
            for label, reader in readers.items():
                times, text = [], ""
                for _ in range(3):
                    start = time.perf_counter()
                    text = reader(pdf)
                    times.append(time.perf_counter() - start)
                rows, cells = score(layout.drawn_rows, text)
                out = Path(tmp) / f"{name}.{label.replace(' ', '_')}.pdf.txt"
                src = SourceText(path=out, raw=text, encoding="utf_8", sha256="")
                try:
                    got_fields, got_records = counts(parse_card(src))
                except Exception as exc:  # noqa: BLE001 - a benchmark reports what failed
                    got_fields, got_records = 0, {"error": type(exc).__name__}
                kinds = sorted(set(want_records) | set(got_records))
                rec = " ".join(f"{k}={got_records.get(k, 0)}/{want_records.get(k, 0)}" for k in kinds)
                print(f"{name:7} {label:11} {statistics.median(times):7.2f} {rows:6.3f} {cells:6.3f} "
                      f"{got_fields:>6}/{want_fields:<6}  {rec}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["001", "002", "004"])
