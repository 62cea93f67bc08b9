"""Parse PDF-to-text extractions whose layout order is scrambled (004).

Labels sit on their own lines or start a line with their value after a space; values may come before
their labels; block headers read `提供先2 市町村長` or `都道府県知事 提供先1`; numbered sections come out
of order. So this parser trusts only what a line says about itself: a part heading, a numbered
section, a block header or a circled-number label. Everything between two such lines belongs to the
last one opened. Blocks are counted as found, not as the (misprinted) counts say.
"""

from __future__ import annotations

import re

from qa.parsing import template as tpl
from qa.parsing.card import Card, Field, Record, Section
from qa.parsing.html import read_choice
from qa.reading import SourceText

_NUMBERED = re.compile(r"^(\d{1,2})\.\s*(\S.{1,60})$")
_HEADER_FIRST = re.compile(r"^(提供先|移転先|委託事項|システム)\s?(\d{1,3})(?:\s+(\S.*))?$")
_HEADER_LAST = re.compile(r"^(\S.*?)\s+(提供先|移転先)\s?(\d{1,3})$")
_LABEL = re.compile(r"^([①-⑳][^\s]*)(?:\s+(.*))?$")
_LABEL_TAIL = re.compile(r"^[^\s\[\]()<>0-9]{1,10}$")
_FRAGMENT = re.compile(r"^(\[|\]|\)|\(|<選択肢>|\d\)|\[\s*\]\s*\d\))")
_SECTION_WORDS = ("特定個人情報", "評価", "監査", "従業者", "基礎項目", "国民・住民", "第三者", "個人番号", "情報")


def _is_toc(lines: list[str], i: int) -> bool:
    """A part heading inside the 項目一覧 cluster (three or more headings with nothing else between)."""
    run = [i]
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(lines):
            text = lines[j].strip()
            if not text:
                j += step
                continue
            if tpl.part_heading(text):
                run.append(j)
                j += step
                continue
            break
    return len(run) >= 3


class LayoutBuilder:
    def __init__(self, card: Card) -> None:
        self.card = card
        self.part: Section | None = None
        self.section: Section | None = None
        self.record: Record | None = None
        self.field: Field | None = None
        self.blank_since_field = False

    def container(self) -> Section | None:
        return self.section or self.part

    def touch(self, line: int) -> None:
        for node in (self.part, self.section, self.record):
            if node is not None:
                node.end_line = max(node.end_line, line)
        if self.field is not None and not self.blank_since_field:
            self.field.end_line = max(self.field.end_line, line)

    def open_part(self, name: str, line: int) -> None:
        self.part = Section(title=name, path=[name], line=line, end_line=line)
        self.card.sections.append(self.part)
        self.section = None
        self.record = None
        self.field = None

    def open_section(self, title: str, line: int) -> None:
        assert self.part is not None
        self.section = Section(title=title, path=[*self.part.path, title], line=line, end_line=line)
        self.part.children.append(self.section)
        self.record = None
        self.field = None

    def open_record(self, kind: str, number: int, name: str | None, line: int) -> None:
        container = self.home_of(kind) or self.container()
        assert container is not None
        self.record = Record(
            kind=kind, number=number, name=name or None, path=[*container.path, f"{kind}{number}"],
            line=line, end_line=line,
        )
        container.records.append(self.record)
        self.field = None

    def home_of(self, kind: str) -> Section | None:
        """Blocks printed after a later section heading (the layout is scrambled) go to their own section."""
        if self.part is None:
            return None
        keyword = tpl.HOME_KEYWORDS[tpl.RECORD_HOMES[kind][0]]
        for section in self.part.children:
            if keyword in section.title:
                return section
        return None

    def add_field(self, label: str, value: str, line: int) -> None:
        f = Field(label=label, value=value.strip(), line=line, end_line=line)
        target = self.record if self.record is not None else self.container()
        assert target is not None
        target.fields.append(f)
        self.field = f
        self.blank_since_field = False

    def extend_field(self, text: str, line: int) -> None:
        assert self.field is not None
        joiner = "" if self.field.value and not self.field.value.endswith(("。", ")", "」")) else "\n"
        self.field.value = (self.field.value + joiner + text).strip() if self.field.value else text
        self.field.end_line = line

    def feed(self, lines: list[str]) -> None:
        in_changes = False
        for i, raw in enumerate(lines):
            lineno = i + 1
            text = raw.strip()
            if not text:
                self.blank_since_field = True
                continue
            heading = None if in_changes else tpl.part_heading(text)
            if heading is not None:
                if _is_toc(lines, i):
                    continue
                self.open_part(tpl.part_name(*heading), lineno)
                in_changes = "変更箇所" in heading[1]
                continue
            if self.part is None:
                continue  # title and declaration: read by the metadata pass
            if in_changes:
                self.feed_change_line(text, lineno)
                continue
            m = _NUMBERED.match(text)
            if m and raw[:1].isspace() and any(w in m.group(2) for w in _SECTION_WORDS):
                self.open_section(f"{m.group(1)}. {tpl.clean_title(m.group(2))}", lineno)
                self.touch(lineno)
                continue
            header = self.block_header(text)
            if header is not None:
                self.open_record(*header, lineno)
                self.touch(lineno)
                continue
            if tpl.RECORD_RANGE.match(text):
                self.record = None
                self.field = None
                continue
            m = _LABEL.match(text)
            if m:
                self.add_field(m.group(1), m.group(2) or "", lineno)
                self.touch(lineno)
                continue
            f = self.field
            if f is not None and not f.value and f.line == lineno - 1 and _LABEL_TAIL.match(text):
                f.label += text  # "④提供する情報の対象となる" / "本人の数": a label wrapped mid-word
                continue
            if _FRAGMENT.match(text) and "○" not in text:
                continue  # a checkbox or option list torn from its field: nothing a reader can use
            if self.field is not None and (not self.blank_since_field or not self.field.value):
                if self.field.end_line < lineno - 1 and not self.field.value:
                    self.field.line = self.field.line  # value detached from its label: still the nearest
                self.extend_field(text, lineno)
                self.blank_since_field = False
            else:
                container = self.record or self.container()
                label = container.title if container is not None else "本文"
                self.add_field(label, text, lineno)
            self.touch(lineno)

    def block_header(self, text: str) -> tuple[str, int, str | None] | None:
        m = _HEADER_FIRST.match(text)
        if m and not (m.group(3) or "").startswith(("における", "に", "の")):
            name = m.group(3)
            if name and (len(name) > 80 or name.startswith(("1", "2", "3"))):
                return None
            return m.group(1), int(m.group(2)), name
        m = _HEADER_LAST.match(text)
        if m and len(m.group(1)) <= 60 and not m.group(1).endswith(("。", "、")):
            return m.group(2), int(m.group(3)), m.group(1)
        return None

    def feed_change_line(self, text: str, lineno: int) -> None:
        """(別添2) 変更箇所: columns are torn apart here, so keep paragraphs with the dates found in them."""
        container = self.container()
        assert container is not None
        date = tpl.date_in(text)
        if self.record is None or (date and text.startswith(date[:2])):
            number = len(container.records) + 1
            self.record = Record(
                kind="変更箇所", number=number, name=None, path=[*container.path, f"変更{number}"],
                line=lineno, end_line=lineno,
            )
            container.records.append(self.record)
            self.field = None
        if date and self.record.get("変更日") is None and text.startswith(date[:2]):
            self.record.fields.append(Field(label="変更日", value=date, line=lineno, end_line=lineno))
            rest = text[text.find("日") + 1 :].strip() if "日" in text else ""
            if not rest:
                self.record.end_line = lineno
                return
            text = rest
        if self.field is None or self.blank_since_field:
            self.field = Field(label="記載", value=text, line=lineno, end_line=lineno)
            self.record.fields.append(self.field)
            self.blank_since_field = False
        else:
            self.extend_field(text, lineno)
        self.record.end_line = lineno
        if self.part is not None:
            self.part.end_line = lineno


def _rehome_records(card: Card) -> None:
    """Move blocks printed before their section's heading (scrambled order) into that section."""
    for part in card.sections:
        for section in part.children:
            for record in list(section.records):
                if record.kind not in tpl.RECORD_HOMES:
                    continue
                keyword = tpl.HOME_KEYWORDS[tpl.RECORD_HOMES[record.kind][0]]
                if keyword in section.title:
                    continue
                home = next((s for s in part.children if keyword in s.title), None)
                if home is None:
                    continue
                section.records.remove(record)
                home.records.append(record)
                record.path = [*home.path, record.path[-1]]
        for section in part.children:
            section.records.sort(key=lambda r: (r.kind, r.number or 0))


def parse_layout_text(card: Card, source: SourceText) -> Card:
    builder = LayoutBuilder(card)
    builder.feed(source.norm_lines)
    _rehome_records(card)
    for _, f in card.fields():
        choice = read_choice(f.value)
        if choice is not None:
            f.selected, f.options = choice.selected, choice.options
    return card
