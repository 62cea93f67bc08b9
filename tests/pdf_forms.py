"""Test fixture: draw a parsed Card as a PDF laid out like the national form, with a real PDF writer.

reportlab with its built-in Japanese CID fonts (HeiseiKakuGo-W5, HeiseiMin-W3): a cover (評価書番号/評価書名,
the declaration, 評価実施機関名, 公表日), part headings, one bordered label/value table per numbered section
that crosses page breaks (long cells split inside the row), group labels merged over several rows (再委託,
リスク…), 提供先/移転先/委託事項/システム blocks, checkboxes drawn as squares with ○ ("drawn"), as □/■
glyphs ("glyph") or as the form's "[ ○ ]" text ("text"), the (別添2) 変更箇所 table, a header and a page
number on every page. The content is the Card's, so a test round-trips real report data.

`write_form_pdf` returns the rows it drew (cells as text), which benchmarks use to score cell reconstruction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from qa.parsing import Card, Field, Record, Section
from qa.parsing import template as tpl

GOTHIC, MINCHO = "HeiseiKakuGo-W5", "HeiseiMin-W3"
_WIDTH = A4[0] - 2 * 40
_COLS = (62.0, 118.0, _WIDTH - 180.0)
_CHANGE_COLS = (60.0, 85.0, 110.0, 110.0, 60.0, _WIDTH - 425.0)
_MARK = re.compile(r"\[\s*○?\s*\]")
_NUMBERED_OPTION = re.compile(r"(?<!\S)1\)\s*\S")


def _register_fonts() -> None:
    for name in (GOTHIC, MINCHO):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(name))


@dataclass
class FormLayout:
    checkbox: str = "drawn"  # "drawn" squares, "glyph" □/■, or "text" "[ ○ ]"
    template_order: bool = False  # blocks by number and fields by circled number, as the form prints them
    font: str = GOTHIC
    drawn_rows: list[list[str]] = field(default_factory=list)

    def style(self, size: float = 8.0, leading: float = 10.5) -> ParagraphStyle:
        return ParagraphStyle("cell", fontName=self.font, fontSize=size, leading=leading, wordWrap="CJK")


class CheckList(Flowable):
    """Options of a checkbox field, each behind a square drawn as a path (○ inside when chosen)."""

    def __init__(self, options: list[tuple[bool, str]], font: str, size: float = 8.0) -> None:
        super().__init__()
        self.options, self.font, self.size = options, font, size
        self.placed: list[list[tuple[float, bool, str]]] = []

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.placed, line, x = [], [], 0.0
        box = self.size + 1
        for checked, text in self.options:
            text_w = pdfmetrics.stringWidth(text, self.font, self.size)
            width = box + 3 + text_w + 10
            if line and x + width > avail_width:
                self.placed.append(line)
                line, x = [], 0.0
            line.append((x, checked, text))
            x += width
        if line:
            self.placed.append(line)
        self.width = avail_width
        self.height = len(self.placed) * (self.size + 5)
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        step = self.size + 5
        box = self.size + 1
        for i, line in enumerate(self.placed):
            y = self.height - (i + 1) * step + 2
            for x, checked, text in line:
                canvas.setLineWidth(0.6)
                canvas.rect(x, y - 1, box, box, stroke=1, fill=0)
                canvas.setFont(self.font, self.size)
                if checked:
                    canvas.drawCentredString(x + box / 2, y + 0.8, "○")
                canvas.drawString(x + box + 3, y + 0.8, text)


def _paragraph(text: str, layout: FormLayout, size: float = 8.0) -> Paragraph:
    lines = [escape(line) for line in text.split("\n")]
    return Paragraph("<br/>".join(lines) or "", layout.style(size))


def _is_checklist(f: Field) -> bool:
    return bool(f.options) and not _NUMBERED_OPTION.search(f.value) and bool(_MARK.search(f.value) or f.selected)


def _value_cell(f: Field, layout: FormLayout) -> tuple[object, str]:
    """The value as drawn, and as text (for scoring): checklists get boxes, the rest is the value's text."""
    if not _is_checklist(f):
        return _paragraph(f.value, layout), f.value
    chosen = set(f.selected or [])
    options = [(o in chosen, o) for o in f.options]
    text = " ".join(("[○] " if c else "[ ] ") + o for c, o in options)
    if layout.checkbox == "drawn":
        return CheckList(options, layout.font), text
    marks = {"glyph": ("■", "□"), "text": ("[ ○ ]", "[ ]")}[layout.checkbox]
    drawn = "  ".join(f"{marks[0] if c else marks[1]} {o}" for c, o in options)
    return _paragraph(drawn, layout), text


def _circled(label: str) -> int:
    m = re.match(r"^\s*([①-⑳])", label)
    return ord(m.group(1)) - 0x245F if m else 99


def _events(section: Section, layout: FormLayout) -> Iterator[tuple[int, str, object]]:
    """(line, kind, node) of a numbered section's content, in the order the table draws it."""
    records = list(section.records)
    if layout.template_order:
        kinds = list(dict.fromkeys(r.kind for r in records))
        records.sort(key=lambda r: (kinds.index(r.kind), r.number or 0, r.line))
        for f in sorted(section.fields, key=lambda f: f.line):
            yield f.line, "field", f
        for r in records:
            yield r.line, "record", r
        return
    events: list[tuple[int, str, object]] = [(f.line, "field", f) for f in section.fields]
    events += [(r.line, "record", r) for r in records]
    yield from sorted(events, key=lambda e: e[0])


class _SectionTable:
    """Rows of one numbered section: a 3-column grid (group, label, value) with spans and merged groups."""

    def __init__(self, layout: FormLayout) -> None:
        self.layout = layout
        self.data: list[list[object]] = []
        self.style: list[tuple] = [
            ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]
        self.group: tuple[str, int] | None = None

    def _close_group(self) -> None:
        if self.group is not None:
            start = self.group[1]
            end = len(self.data) - 1
            if end > start:
                self.style.append(("SPAN", (0, start), (0, end)))
            self.group = None

    def heading(self, text: str, value: Field | None = None) -> None:
        self._close_group()
        row = len(self.data)
        if value is None:
            self.data.append([_paragraph(text, self.layout), "", ""])
            self.style.append(("SPAN", (0, row), (2, row)))
            self.layout.drawn_rows.append([text])
        else:
            cell, drawn = _value_cell(value, self.layout)
            self.data.append([_paragraph(text, self.layout), "", cell])
            self.style.append(("SPAN", (0, row), (1, row)))
            self.layout.drawn_rows.append([text, drawn])
        self.style.append(("BACKGROUND", (0, row), (2, row), colors.Color(0.88, 0.92, 0.97)))

    def field(self, f: Field, container_title: str) -> None:
        row = len(self.data)
        cell, drawn = _value_cell(f, self.layout)
        if f.label == container_title:  # a paragraph of the section itself: one full-width cell
            self._close_group()
            self.data.append([cell, "", ""])
            self.style.append(("SPAN", (0, row), (2, row)))
            self.layout.drawn_rows.append([drawn])
            return
        if f.group and f.group != f.label:
            if self.group is None or self.group[0] != f.group:
                self._close_group()
                self.group = (f.group, row)
                self.data.append([_paragraph(f.group, self.layout), _paragraph(f.label, self.layout), cell])
                self.layout.drawn_rows.append([f.group, f.label, drawn])
            else:
                self.data.append(["", _paragraph(f.label, self.layout), cell])
                self.layout.drawn_rows.append(["", f.label, drawn])
            return
        self._close_group()
        self.data.append([_paragraph(f.label, self.layout), "", cell])
        self.style.append(("SPAN", (0, row), (1, row)))
        self.layout.drawn_rows.append([f.label, drawn])

    def flowable(self) -> Table:
        self._close_group()
        return Table(self.data, colWidths=_COLS, style=TableStyle(self.style), splitInRow=1, hAlign="LEFT")


def _record_fields(r: Record, layout: FormLayout) -> list[Field]:
    if layout.template_order:
        return sorted(r.fields, key=lambda f: (_circled(f.label), f.line))
    return sorted(r.fields, key=lambda f: f.line)


def _section_table(section: Section, layout: FormLayout, with_heading: bool = True) -> Table | None:
    table = _SectionTable(layout)
    events = list(_events(section, layout))
    head = next((e[2] for e in events if e[1] == "field" and e[2].line == section.line), None)
    if with_heading:
        table.heading(section.title, head if isinstance(head, Field) else None)
    else:
        head = None
    for _, kind, node in events:
        if node is head:
            continue
        if kind == "field":
            assert isinstance(node, Field)
            table.field(node, section.title)
            continue
        assert isinstance(node, Record)
        name = node.name or ""
        if node.kind == "記録項目":
            table.heading(f"【{name}】" if name else "・")
            for f in node.fields:
                table.field(Field(label="項目", value="・" + f.value, line=f.line, end_line=f.line), "項目")
            continue
        head_field = Field(label="", value=name, line=node.line, end_line=node.line) if name else None
        table.heading(f"{node.kind}{node.number}", head_field)
        for f in _record_fields(node, layout):
            table.field(f, node.title)
    return table.flowable() if table.data else None


def _change_table(part: Section, layout: FormLayout) -> Table:
    data: list[list[object]] = [[_paragraph(c, layout, 7) for c in tpl.CHANGE_COLUMNS]]
    layout.drawn_rows.append(list(tpl.CHANGE_COLUMNS))
    for r in part.records:
        values = {f.label: f for f in r.fields}
        cells = []
        for label in tpl.CHANGE_COLUMNS:
            f = values.get(label)
            own = f is not None and (label != tpl.CHANGE_COLUMNS[0] or f.line == r.line)
            cells.append(f.value if own and f else "")
        loose = [f.value for f in r.fields if f.label not in tpl.CHANGE_COLUMNS]
        if loose:  # a change row whose columns the text version could not tell apart (004): in order
            cells[1:] = [*loose[:4], " ".join(loose[4:])]
        data.append([_paragraph(c, layout, 7) for c in cells])
        while cells and not cells[-1]:
            cells.pop()
        layout.drawn_rows.append(cells)
    style = [("GRID", (0, 0), (-1, -1), 0.6, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    return Table(data, colWidths=_CHANGE_COLS, style=TableStyle(style), splitInRow=1, repeatRows=0, hAlign="LEFT")


def _cover(card: Card, layout: FormLayout) -> list[Flowable]:
    story: list[Flowable] = []
    kind = card.kind or ""
    if card.number or card.published:
        story.append(_paragraph(f"特定個人情報保護評価書({kind})", layout, 14))
        story.append(Spacer(1, 12))
        rows = [["評価書番号", "評価書名"], [card.number or "", card.title or ""]]
        story.append(_grid(rows, layout, (90.0, _WIDTH - 90.0)))
    else:
        story.append(_paragraph(card.title or "", layout, 12))
    story.append(Spacer(1, 12))
    story.append(_paragraph("個人のプライバシー等の権利利益の保護の宣言", layout, 11))
    story.append(Spacer(1, 6))
    affair = card.affair or ""
    story.append(
        _paragraph(
            f"{card.municipality}は、{affair}における特定個人情報ファイルの取扱いにあたり、特定個人情報ファイルの"
            "取扱いが個人のプライバシー等の権利利益に影響を及ぼしかねないことを認識し、特定個人情報の漏えいその他の"
            "事態を発生させるリスクを軽減させるために適切な措置を講じ、もって個人のプライバシー等の権利利益の保護に"
            "取り組んでいることを宣言する。",
            layout,
            9,
        )
    )
    story.append(Spacer(1, 12))
    meta = [[label, value] for label, value in (("評価実施機関名", card.evaluator), ("公表日", card.published)) if value]
    if meta:
        story.append(_grid(meta, layout, (120.0, _WIDTH - 120.0)))
    if card.number or card.published:
        story.append(Spacer(1, 12))
        story.append(_paragraph("項目一覧", layout, 11))
        for part in card.sections:
            story.append(_paragraph(part.title, layout, 9))
    return story


def _grid(rows: list[list[str]], layout: FormLayout, widths: tuple[float, ...]) -> Table:
    layout.drawn_rows.extend([list(r) for r in rows])
    data = [[_paragraph(c, layout) for c in r] for r in rows]
    return Table(data, colWidths=widths, style=[("GRID", (0, 0), (-1, -1), 0.6, colors.black)], hAlign="LEFT")


def write_form_pdf(card: Card, path: Path, layout: FormLayout | None = None) -> FormLayout:
    """Draw `card` into `path`; the returned layout holds the rows drawn, in order."""
    _register_fonts()
    layout = layout or FormLayout()
    story = _cover(card, layout)
    for part in card.sections:
        story.append(Spacer(1, 14))
        story.append(_paragraph(part.title, layout, 12))
        story.append(Spacer(1, 6))
        if "変更箇所" in part.title:
            story.append(_change_table(part, layout))
            continue
        if part.fields or part.records:
            loose = Section(title=part.title, path=part.path, line=part.line, end_line=part.line,
                            fields=part.fields, records=part.records)
            table = _section_table(loose, layout, with_heading=False)
            if table is not None:
                story.append(table)
        for section in part.children:
            for flowable in _nested_tables(section, layout):
                story.append(flowable)
    header = f"特定個人情報保護評価書({card.kind or ''})"

    def furniture(canvas, doc) -> None:  # noqa: ANN001 - reportlab's callback signature
        canvas.saveState()
        canvas.setFont(layout.font, 7.5)
        canvas.drawString(40, A4[1] - 28, header)
        canvas.drawCentredString(A4[0] / 2, 22, f"- {doc.page} -")
        canvas.restoreState()

    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=40, rightMargin=40, topMargin=46, bottomMargin=42,
                            title=card.title or card.id)
    doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return layout


def _nested_tables(section: Section, layout: FormLayout) -> Iterator[Flowable]:
    yield Spacer(1, 8)
    table = _section_table(section, layout)
    if table is not None:
        yield table
    for child in section.children:
        yield from _nested_tables(child, layout)
