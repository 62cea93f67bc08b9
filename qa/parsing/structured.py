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
from qa.parsing.template import CHANGE_KIND
from qa.reading import SourceText

_SEPARATOR = re.compile(r"^\|?[\s:|-]*-{3,}[\s:|-]*$")
_DASHES = re.compile(r"^-+$")
# A nested table that the converter repeated outside its cell starts with a bare form element.
_NESTED = re.compile(r"^<(input|table|tbody|tr|td)\b", re.I)
# 全項目評価書: "(1) 住民基本台帳ファイルを取り扱う事務の内容" opens (別添1) 事務の内容, whose heading is missing.
_WORK_CONTENT = re.compile(r"^\(\d{1,2}\)\s*\S{1,40}を取り扱う事務の内容$")
_MD_BULLET = re.compile(r"^[-*+]\s+(?=\S)")
# The option list of a choice, repeated outside its cell: "| <選択肢> |", "| 1) 10人未満 | 2) 10人以上50人未満 |".
_OPTION_CELL = re.compile(r"^(<選択肢>|\d{1,2}\)\s*\S.*)$")


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
            text = stripped.lstrip("#").strip()
            text = _MD_BULLET.sub("", text)  # "- ① 住民からの…": the converter's markdown list marker
            rows.append(Row(i, [text], heading=heading))
            continue
        if all(_DASHES.match(c) or not c for c in cells):
            continue
        trailing = len(cells) > 1 and not cells[-1]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append(Row(i, cells, trailing_empty=trailing))
    return rows


def plain(cell: str) -> str:
    """A cell as a reader sees it, for recognising headings and labels ("<b>委託事項2</b>" → "委託事項2")."""
    if "<" not in cell:
        return cell
    return strip_html(cell).replace("\n", " ").strip()


def _label_cell(cell: str) -> bool:
    """A cell that can be a label: short plain text, not a form element ("<input/> 庁内連携システム")."""
    return "<input" not in cell and _label_like(plain(cell))


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
        self.change_date_line = 0
        self.in_toc = False
        self.open_label: Field | None = None
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
        raw_first = row.filled[0] if row.filled else ""
        first = raw_first if _NESTED.match(raw_first) else plain(raw_first)
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
        if CHANGE_KIND in self.part.title:
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
        if self.last_field is not None and (
            _NESTED.match(first) or all(_OPTION_CELL.match(c) for c in filled)
        ):
            return  # a nested table or option list the converter repeated outside its cell
        if tpl.RECORD_RANGE.match(first) and len(filled) == 1:
            self.close_record()
            return
        m = tpl.FILE_LEVEL.match(first)
        if m and len(filled) == 1 and self.part and self.part.title.startswith(("II ", "III ", "IV ")):
            self.open_file_level(first, row.line)
            return
        if (
            _WORK_CONTENT.match(first)
            and len(filled) == 1
            and self.part is not None
            and self.part.title.startswith("I ")
        ):
            self.open_part("(別添1) 事務の内容", row.line)
            self.section = self._new_section(first, self.part, row.line)
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
        if self.record and self.record.kind == tpl.ITEM_KIND or _is_item_group(first, self.part):
            self.feed_items(row, first)
            return
        self.feed_field(row, filled)

    def open_file_level(self, title: str, line: int) -> None:
        """全項目評価書: "(1) 住民基本台帳ファイル" opens the per-file level of a part.

        The file's name is printed under "1. 特定個人情報ファイル名", which the template puts inside the
        per-file level; that section moves down with it and gets the name as its value.
        """
        assert self.part is not None
        self.close_record()
        heading = self.section
        if heading is not None and (
            heading not in self.part.children
            or not heading.title.startswith("1.")
            or heading.fields
            or heading.records
            or heading.children
        ):
            heading = None
        self.file_level = self._new_section(title, self.part, heading.line if heading else line)
        self.section = None
        self.last_number = 0
        if heading is not None:
            self.part.children.remove(heading)
            self.file_level.children.append(heading)
            _move_under(heading, self.file_level.path)
            heading.fields.append(Field(label=tpl.FILE_NAME_LABEL, value=title, line=line, end_line=line))
            heading.end_line = max(heading.end_line, line)
            self.last_number = 1

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
            self.record = Record(kind=tpl.ITEM_KIND, number=None, name=name, path=path, line=row.line, end_line=row.line)
            container = self.container()
            assert container is not None
            container.records.append(self.record)
            return
        if self.record is None or self.record.kind != tpl.ITEM_KIND:
            # Items before any group heading (a cut or converted file): an unnamed group keeps them.
            path = self.path() + [tpl.ITEM_KIND]
            self.record = Record(
                kind=tpl.ITEM_KIND, number=None, name=None, path=path, line=row.line, end_line=row.line
            )
            container = self.container()
            assert container is not None
            container.records.append(self.record)
        bullet = text.startswith("・")
        item = strip_html(text.lstrip("・").strip())
        for one in [item] if bullet else tpl.split_items(item):
            self.record.fields.append(Field(label="項目", value=one, line=row.line, end_line=row.line))

    def feed_field(self, row: Row, filled: list[str]) -> None:
        cells = row.cells
        labels = [plain(c) for c in filled]
        if len(filled) == 1:
            text = filled[0]
            section = self.section
            if (
                section is not None
                and self.record is None
                and not (section.fields or section.records or section.children)
                and tpl.section_label(section.title) in tpl.VALUE_SECTIONS
            ):
                # "7. 他の評価実施機関⇥" then "なし⇥": the trailing tab does not make the value a label.
                self.add_field(make_field(tpl.section_label(section.title), text, row.line))
                return
            if row.trailing_empty and _label_cell(text):
                self.group = labels[0] if not tpl.CIRCLED.match(labels[0]) else self.group
                self.add_field(make_field(labels[0], "", row.line, None))
                return
            if _standalone_label(text):
                # 001 prints 「保管場所 ※」 on a line of its own, its value as the paragraphs below.
                self.add_field(make_field(labels[0], "", row.line, None))
                self.open_label = self.last_field
                return
            if self.open_label is not None and self.open_label is self.last_field:
                f = self.open_label
                f.value = (f.value + "\n" + strip_html(text)).strip()
                f.end_line = row.line
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
        if not cells[0] and len(filled) >= 2 and _label_cell(filled[0]):
            self.add_field(make_field(labels[0], " ".join(filled[1:]), row.line, self.group))
            return
        if len(filled) >= 3 and _label_cell(filled[1]) and _label_cell(filled[0]):
            self.group = labels[0]
            self.add_field(make_field(labels[1], " ".join(filled[2:]), row.line, labels[0]))
            return
        home = tpl.LABEL_HOMES.get(label_key(labels[0]))
        if home is not None:
            self.ensure_home(home, row.line)
        self.add_field(make_field(labels[0], " ".join(filled[1:]), row.line, self.group))

    def add_field(self, f: Field) -> None:
        self.open_label = None
        target = self.record if self.record is not None else self.container()
        assert target is not None
        target.fields.append(f)
        self.last_field = f

    def feed_change(self, row: Row) -> None:
        cells = row.cells
        if len([c for c in cells if c]) < 3 or cells[0] == "変更日":
            return
        date = tpl.date_in(strip_html(cells[0])) if cells[0] else None
        if date:
            self.change_date = date
            self.change_date_line = row.line
        values = cells + [""] * (6 - len(cells))
        fields = [
            Field(label=label, value=strip_html(v), line=row.line, end_line=row.line)
            for label, v in zip(tpl.CHANGE_COLUMNS[1:], values[1:6])
            if strip_html(v)
        ]
        if self.change_date:
            # A row without its own date continues the last dated one: cite the line that prints the date.
            line = row.line if date else self.change_date_line
            dated = Field(label=tpl.CHANGE_COLUMNS[0], value=self.change_date, line=line, end_line=line)
            fields.insert(0, dated)
        container = self.container()
        assert container is not None
        number = len(container.records) + 1
        record = Record(
            kind=CHANGE_KIND,
            number=number,
            name=strip_html(values[1]).replace("\n", " ")[:120] or None,
            path=list(container.path) + [f"変更{number}"],
            line=row.line,
            end_line=row.line,
            fields=fields,
        )
        container.records.append(record)


def _move_under(section: Section, parent_path: list[str]) -> None:
    section.path = [*parent_path, section.title]
    for record in section.records:
        record.path = [*section.path, record.path[-1]]
    for child in section.children:
        _move_under(child, section.path)


def _is_item_group(first: str, part: Section | None) -> bool:
    if part is None or tpl.ITEM_KIND not in part.title:
        return False
    return first.startswith(("【", "○")) or first.startswith(("- ・", "・", "- "))


def _standalone_label(text: str) -> bool:
    """A known template label alone on its line, marked ※ as the form prints it: 「保管場所 ※」."""
    m = re.fullmatch(r"([^\s※]{2,24})\s*※", text.strip())
    return bool(m) and label_key(m.group(1)) in tpl.KNOWN_LABELS


def parse_structured(card: Card, source: SourceText) -> Card:
    builder = Builder(card)
    for row in rows_of(source):
        builder.feed(row)
    return card
