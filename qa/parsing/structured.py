"""Parse the table-like formats (label⇥value rows, markdown pipe tables, markdown headings) into a Card.

All three reduce to rows of cells with a line number; one builder then follows the national template:
part headings (I…VI, 別添N) → numbered sections (1. …) → per-file level ((1) …ファイル, 全項目評価書)
→ repeated blocks (提供先N, 移転先N, 委託事項N, システムN) → label/value fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.parsing import template as tpl
from qa.parsing.card import Card, Field, Record, Section, label_key
from qa.parsing.html import read_choice, strip_html
from qa.reading import SourceText

_SEPARATOR = re.compile(r"^\|?[\s:|-]*-{3,}[\s:|-]*$")
_DASHES = re.compile(r"^-+$")


@dataclass
class Row:
    line: int
    cells: list[str]  # positional, normalised, markup kept; trailing empties removed
    heading: bool = False
    trailing_empty: bool = False  # "label⇥" — a label waiting for its value

    @property
    def filled(self) -> list[str]:
        return [c for c in self.cells if c]


def rows_of(source: SourceText) -> list[Row]:
    rows: list[Row] = []
    for i, line in enumerate(source.norm_lines, start=1):
        text = line.strip("\ufeff")
        if not text.strip():
            continue
        stripped = text.strip()
        if stripped.startswith("|"):
            if _SEPARATOR.match(stripped):
                continue
            cells = [c.strip() for c in stripped.strip("|").split("|")]
        elif "\t" in text:
            cells = [c.strip() for c in text.split("\t")]
        else:
            heading = stripped.startswith("#")
            rows.append(Row(i, [stripped.lstrip("#").strip()], heading=heading))
            continue
        if all(_DASHES.match(c) or not c for c in cells):
            continue
        trailing = len(cells) > 1 and not cells[-1]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append(Row(i, cells, trailing_empty=trailing))
    return rows


def _label_like(text: str) -> bool:
    if not text or len(text) > 45 or text[0] in "[<(" or "<" in text or "。" in text:
        return False
    return not re.match(r"^\d+\)", text)


def make_field(label: str, raw_value: str, line: int, group: str | None = None) -> Field:
    choice = read_choice(raw_value)
    value = strip_html(raw_value)
    return Field(
        label=label.strip(),
        value=value,
        line=line,
        end_line=line,
        selected=choice.selected if choice else None,
        options=choice.options if choice else [],
        group=group,
    )


class Builder:
    """Walks rows in file order, keeping the template context (part, file level, section, record)."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.part: Section | None = None
        self.file_level: Section | None = None
        self.section: Section | None = None
        self.record: Record | None = None
        self.group: str | None = None
        self.last_field: Field | None = None
        self.last_row_line = 0
        self.last_number = 0
        self.change_date: str | None = None
        self.in_toc = False
        self.toc_titles: set[str] = set()

    # -- containers -------------------------------------------------------------------------------
    def container(self) -> Section | None:
        return self.section or self.file_level or self.part

    def path(self) -> list[str]:
        c = self.container()
        return list(c.path) if c else []

    def _new_section(self, title: str, parent: Section | None, line: int) -> Section:
        path = (parent.path if parent else []) + [title]
        section = Section(title=title, path=path, line=line, end_line=line)
        (parent.children if parent else self.card.sections).append(section)
        return section

    def open_part(self, name: str, line: int) -> None:
        # 全項目評価書 repeats "II 特定個人情報ファイルの概要" for each file: one part, several files.
        existing = [s for s in self.card.sections if s.title == name]
        self.part = existing[-1] if existing else self._new_section(name, None, line)
        self.file_level = self.section = None
        self.close_record()
        self.last_number = 0
        self.group = None
        self.change_date = None

    def ensure_part(self, line: int) -> None:
        """Content before any part heading follows the TOC; the template puts I 基本情報 there."""
        if self.part is None:
            self.open_part("I 基本情報", line)

    def close_record(self) -> None:
        self.record = None
        self.last_field = None

    def touch(self, line: int) -> None:
        for node in (self.part, self.file_level, self.section):
            if node is not None:
                node.end_line = max(node.end_line, line)
        if self.record is not None:
            self.record.end_line = max(self.record.end_line, line)

    # -- rows -------------------------------------------------------------------------------------
    def feed(self, row: Row) -> None:
        first = row.filled[0] if row.filled else ""
        if first == "項目一覧":
            self.in_toc = True
            return
        heading = tpl.part_heading(first) if len(row.filled) <= 2 else None
        if heading is not None:
            name = tpl.part_name(*heading)
            if self.in_toc and name not in self.toc_titles:
                self.toc_titles.add(name)
                return
            self.in_toc = False
            self.open_part(name, row.line)
            self.touch(row.line)
            return
        if self.in_toc:
            if not self.toc_titles:
                return
            self.in_toc = False
        if self.part is None and not self.toc_titles:
            return  # cover page: read by the metadata pass
        self.ensure_part(row.line)
        assert self.part is not None
        if "変更箇所" in self.part.title:
            self.feed_change(row)
        else:
            self.feed_body(row, first)
        self.touch(row.line)
        self.last_row_line = row.line

    def feed_body(self, row: Row, first: str) -> None:
        filled = row.filled
        m = tpl.RECORD.match(first)
        if m and len(filled) <= 3:
            self.ensure_home(tpl.RECORD_HOMES[m.group(1)], row.line)
            self.open_record(m.group(1), int(m.group(2)), filled[1:], row.line)
            return
        if first.startswith("<") and self.last_field is not None:
            return  # a nested table the converter repeated outside its cell
        if tpl.RECORD_RANGE.match(first) and len(filled) == 1:
            self.close_record()
            return
        m = tpl.FILE_LEVEL.match(first)
        if m and len(filled) == 1 and self.part and self.part.title.startswith(("II ", "III ", "IV ")):
            self.close_record()
            self.file_level = self._new_section(first, self.part, row.line)
            self.section = None
            self.last_number = 0
            return
        m = tpl.NUMBERED.match(first)
        in_list = self.part is not None and any(w in self.part.title for w in ("記録項目", "事務の内容"))
        if m and len(filled) <= 3 and int(m.group(1)) > self.last_number and len(first) <= 80 and not in_list:
            self.close_record()
            self.last_number = int(m.group(1))
            parent = self.file_level or self.part
            title = tpl.clean_title(strip_html(first))
            self.section = self._new_section(title, parent, row.line)
            self.group = None
            if len(filled) > 1:
                self.add_field(make_field(title, " ".join(filled[1:]), row.line))
            return
        if self.record and self.record.kind == "記録項目" or _is_item_group(first, self.part):
            self.feed_items(row, first)
            return
        self.feed_field(row, filled)

    def ensure_home(self, home: tuple[int, str], line: int) -> None:
        """Open the template's section for a block or label whose own heading the report left out."""
        number, title = home
        keyword = tpl.HOME_KEYWORDS[number]
        if self.section is not None and keyword in self.section.title:
            return
        if self.part is None or not self.part.title.startswith(("I ", "II ")):
            return
        if (number == 2) != self.part.title.startswith("I "):
            return
        self.close_record()
        parent = self.file_level or self.part
        self.section = self._new_section(f"{number}. {title}", parent, line)
        self.last_number = max(self.last_number, number)

    def open_record(self, kind: str, number: int, rest: list[str], line: int) -> None:
        name = strip_html(" ".join(rest)).strip() or None
        path = self.path() + [f"{kind}{number}"]
        self.record = Record(kind=kind, number=number, name=name, path=path, line=line, end_line=line)
        container = self.container()
        assert container is not None
        container.records.append(self.record)
        self.last_field = None
        self.group = None

    def feed_items(self, row: Row, first: str) -> None:
        """(別添1) 記録項目: groups such as 【資格管理情報】 with bullet items."""
        text = first.lstrip("-").strip()
        if _is_item_group(first, self.part) and not text.startswith(("・", "-")):
            name = first.strip("【】○ ")
            path = self.path() + [name]
            self.record = Record(kind="記録項目", number=None, name=name, path=path, line=row.line, end_line=row.line)
            container = self.container()
            assert container is not None
            container.records.append(self.record)
            return
        assert self.record is not None
        item = strip_html(text.lstrip("・").strip())
        if item:
            self.record.fields.append(Field(label="項目", value=item, line=row.line, end_line=row.line))

    def feed_field(self, row: Row, filled: list[str]) -> None:
        cells = row.cells
        if len(filled) == 1:
            text = filled[0]
            if row.trailing_empty and _label_like(text):
                self.group = text if not tpl.CIRCLED.match(text) else self.group
                self.add_field(make_field(text, "", row.line, None))
                return
            prev = self.last_field
            if prev is not None and prev.end_line == self.last_row_line and (not prev.value or prev.group == "継続"):
                cont = make_field(prev.label, text, row.line)
                prev.value = (prev.value + "\n" + cont.value).strip()
                prev.selected = prev.selected or cont.selected
                prev.options = prev.options or cont.options
                prev.end_line = row.line
                return
            container = self.record or self.container()
            label = container.title if container else "本文"
            self.add_field(make_field(label, text, row.line, None))
            return
        # Group rows: "再委託 ⇥ ④再委託の有無 ⇥ [再委託する]" or " ⇥ 使用者数 ⇥ …" (group inherited).
        if not cells[0] and len(filled) >= 2 and _label_like(filled[0]):
            self.add_field(make_field(filled[0], " ".join(filled[1:]), row.line, self.group))
            return
        if len(filled) >= 3 and _label_like(filled[1]) and _label_like(filled[0]):
            self.group = filled[0]
            self.add_field(make_field(filled[1], " ".join(filled[2:]), row.line, filled[0]))
            return
        home = tpl.LABEL_HOMES.get(label_key(filled[0]))
        if home is not None:
            self.ensure_home(home, row.line)
        self.add_field(make_field(filled[0], " ".join(filled[1:]), row.line, self.group))

    def add_field(self, f: Field) -> None:
        target = self.record if self.record is not None else self.container()
        assert target is not None
        target.fields.append(f)
        self.last_field = f

    def feed_change(self, row: Row) -> None:
        cells = row.cells
        if len([c for c in cells if c]) < 3 or cells[0] == "変更日":
            return
        date = tpl.date_in(cells[0]) if cells[0] else None
        if date:
            self.change_date = date
        values = cells + [""] * (6 - len(cells))
        fields = [
            Field(label=label, value=strip_html(v), line=row.line, end_line=row.line)
            for label, v in zip(tpl.CHANGE_COLUMNS, [self.change_date or "", *values[1:6]])
            if v
        ]
        container = self.container()
        assert container is not None
        number = len(container.records) + 1
        record = Record(
            kind="変更箇所",
            number=number,
            name=strip_html(values[1])[:120] or None,
            path=list(container.path) + [f"変更{number}"],
            line=row.line,
            end_line=row.line,
            fields=fields,
        )
        container.records.append(record)


def _is_item_group(first: str, part: Section | None) -> bool:
    if part is None or "記録項目" not in part.title:
        return False
    return first.startswith(("【", "○")) or first.startswith(("- ・", "・", "- "))


def parse_structured(card: Card, source: SourceText) -> Card:
    builder = Builder(card)
    for row in rows_of(source):
        builder.feed(row)
    return card
