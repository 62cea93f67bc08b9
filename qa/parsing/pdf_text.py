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
from qa.parsing.card import Card, Field, Record, Section, label_key
from qa.parsing.html import read_choice
from qa.parsing.template import CHANGE_KIND, ITEM_KIND
from qa.reading import SourceText

_NUMBERED = re.compile(r"^(\d{1,2})\.\s*(\S.{1,60})$")
_HEADER_FIRST = re.compile(r"^(提供先|移転先|委託事項|システム)\s?(\d{1,3})(?:\s+(\S.*))?$")
_HEADER_LAST = re.compile(r"^(\S.*?)\s+(提供先|移転先)\s?(\d{1,3})$")
_LABEL = re.compile(r"^([①-⑳][^\s]*)(?:\s+(.*))?$")
_LABEL_TAIL = re.compile(r"^[^\s\[\]()<>0-9]{1,10}$")
_FRAGMENT = re.compile(r"^(\[|\]|\)|\(|<選択肢>|\d\)|\[\s*\]\s*\d\))")
# "[ 1万人以上10万人未満 ]": a chosen option printed away from its label — a value, not a torn fragment.
_BRACKET_VALUE = re.compile(r"^\[\s*([^\[\]()○\s][^\[\]()○]*?)\s*\]?$")
# The name of a 提供先/移転先 printed on a line of its own: an authority or a department.
_ENTITY = re.compile(r"(知事|市町村長|市長|区長|町長|村長|大臣|委員会|機構|組合|課|室|センター|事務所|等)$")
# Where a detached value belongs, by what it says (only ever into an empty field of the same block).
_VALUE_KINDS = (
    (re.compile(r"^\[?\s*[\d,]+万?人(以上|未満)"), lambda key: key.endswith("本人の数")),
    (re.compile(r"者$"), lambda key: key.endswith("本人の範囲")),
    (re.compile(r"(都度|随時)"), lambda key: key == "時期・頻度"),
    (re.compile(r"^(番号法|川崎市行政手続|住民基本台帳法)"), lambda key: key == "法令上の根拠"),
    (re.compile(r"関係情報.*もの$"), lambda key: key.endswith("する情報")),
    (re.compile(r"事務(であって主務省令で定めるもの)?\)?$"), lambda key: key.endswith("における用途")),
)
_NO_TEXT = re.compile(r"^[\s\[\]()○]*$")
# (別添1) 記録項目: "【決定関連情報】氏名、生年月日、…" opens a group whose items run on over the next lines.
_ITEM_GROUP = re.compile(r"^【([^】]{1,40})】\s*(.*)$")
_SECTION_WORDS = ("特定個人情報", "評価", "監査", "従業者", "基礎項目", "国民・住民", "第三者", "個人番号", "情報")


def _is_label(label: str) -> bool:
    """A circled-number line names a field, unless it is a numbered sentence of prose ("②停電等に備え、…")."""
    key = label_key(label)
    if not key or key in tpl.KNOWN_LABELS or any(k.startswith(key) for k in tpl.KNOWN_LABELS):
        return True
    return len(key) <= 30 and "。" not in key and "、" not in key


def _completes_label(label: str, tail: str) -> bool:
    """Whether `tail` is the rest of a template label wrapped mid-word ("…対象とな" + "る本人の数")."""
    key = label_key(label)
    if not tail or key in tpl.KNOWN_LABELS or not _LABEL_TAIL.match(tail):
        return False
    merged = key + tail
    return any(k == merged or k.startswith(merged) for k in tpl.KNOWN_LABELS)


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
        self.last_text_line = 0
        # Lines of text that belong to no label, which may name a block whose header left its name out.
        self.orphans: list[tuple[int, Field, Record | Section]] = []
        self.naming: tuple[Record, int] | None = None  # a name being read from the lines after a bare header
        self.unlabelled: set[int] = set()  # ids of fields made of text that followed no label

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
        if not name and kind in ("提供先", "移転先"):
            self.claim_orphan_name(line)
        self.orphans = []

    def claim_orphan_name(self, line: int) -> None:
        """A bare "移転先3" header: its name may be the last unlabelled entity line just above it."""
        assert self.record is not None
        for at, f, owner in reversed(self.orphans):
            if line - at > 8:
                break
            if _ENTITY.search(f.value) and "\n" not in f.value and f in owner.fields:
                owner.fields.remove(f)
                self.record.name = f.value
                self.record.line = min(self.record.line, at)
                return

    def take_name(self, text: str, lineno: int) -> bool:
        """Read the name of a nameless 提供先/移転先 from a line of its block; True when `text` was used."""
        record = self.record
        if record is None or record.kind not in ("提供先", "移転先") or "。" in text or len(text) > 80:
            return False
        if self.naming is not None and self.naming[0] is record and self.naming[1] == lineno - 1:
            record.name = f"{record.name}{text}"  # the name wrapped onto a second line
            self.naming = (record, lineno)
            return True
        if record.name:
            return False
        right_after = self.last_text_line == record.line and lineno - record.line <= 2
        if right_after or (_ENTITY.search(text) and "、" not in text):
            record.name = text
            self.naming = (record, lineno) if right_after else None
            return True
        return False

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
                if not _is_toc(lines, i):
                    self.open_part(tpl.part_name(*heading), lineno)
                    in_changes = CHANGE_KIND in heading[1]
            elif self.part is None:
                pass  # title and declaration: read by the metadata pass
            elif in_changes:
                self.feed_change_line(text, lineno)
            else:
                self.feed_body(raw, text, lineno)
            self.last_text_line = lineno

    def feed_body(self, raw: str, text: str, lineno: int) -> None:
        if self.feed_items(text, lineno):
            self.touch(lineno)
            return
        m = _NUMBERED.match(text)
        if m and raw[:1].isspace() and any(w in m.group(2) for w in _SECTION_WORDS):
            self.open_section(f"{m.group(1)}. {tpl.clean_title(m.group(2))}", lineno)
            self.touch(lineno)
            return
        header = self.block_header(text)
        if header is not None:
            self.open_record(*header, lineno)
            self.touch(lineno)
            return
        if tpl.RECORD_RANGE.match(text):
            self.record = None
            self.field = None
            return
        m = _LABEL.match(text)
        if m and _is_label(m.group(1)):
            self.add_field(m.group(1), m.group(2) or "", lineno)
            self.touch(lineno)
            return
        bare = re.sub(r"\s*※$", "", text)
        if bare != text or (label_key(bare) in tpl.KNOWN_LABELS and raw[:1].isspace()):
            # A template label without a circled number, alone and indented: 「 使用部署」「 保管場所　※」.
            if label_key(bare) in tpl.KNOWN_LABELS or bare != text and len(bare) <= 24:
                self.add_field(bare, "", lineno)
                self.touch(lineno)
                return
        f = self.field
        if f is not None and not f.value and f.line == lineno - 1:
            # "④提供する情報の対象となる" / "本人の数 1万人以上10万人未満": a label wrapped mid-word.
            tail, _, rest = text.partition(" ")
            if _completes_label(f.label, tail):
                f.label += tail
                if rest.strip():
                    f.value = rest.strip()
                    f.end_line = lineno
                self.touch(lineno)
                return
        if _FRAGMENT.match(text) and "○" not in text and not _BRACKET_VALUE.match(text):
            return  # a checkbox or option list torn from its field: nothing a reader can use
        if self.take_name(text, lineno):
            self.touch(lineno)
            return
        if self.field is not None and (not self.blank_since_field or not self.field.value):
            self.extend_field(text, lineno)
            self.blank_since_field = False
        else:
            container = self.record or self.container()
            label = container.title if container is not None else "本文"
            self.add_field(label, text, lineno)
            if self.record is not None or container is not None:
                owner = self.record if self.record is not None else container
                assert owner is not None and self.field is not None
                self.orphans.append((lineno, self.field, owner))
                self.unlabelled.add(id(self.field))
        self.touch(lineno)

    def feed_items(self, text: str, lineno: int) -> bool:
        """(別添1) 記録項目: a 【group】 line opens a group, its items read as one field until a blank line
        (split into items once the file is read). True when `text` was taken."""
        assert self.part is not None
        group = _ITEM_GROUP.match(text) if ITEM_KIND in self.part.title else None
        if group is None:
            if self.record is not None and self.record.kind == ITEM_KIND and self.blank_since_field:
                self.record = None  # what follows the list is the scrambled text of other parts
                self.field = None
            return False
        name = group.group(1).strip()
        self.record = Record(kind=ITEM_KIND, number=None, name=name, path=[*self.part.path, name], line=lineno, end_line=lineno)
        self.part.records.append(self.record)
        self.add_field("項目", group.group(2), lineno)
        return True

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
                kind=CHANGE_KIND, number=number, name=None, path=[*container.path, f"変更{number}"],
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


def _split_item_lists(card: Card, lines: list[str]) -> None:
    """A 記録項目 group read as one run-on field → one field per item, each with the lines it spans (an item
    may wrap mid-word: "保" / "護開始日")."""
    for record in card.records(ITEM_KIND):
        if len(record.fields) != 1:
            continue
        run = record.fields[0]
        text, line_at = "", []  # the joined text, and the line of each of its characters
        for n in range(run.line, run.end_line + 1):
            piece = lines[n - 1].strip()
            if n == run.line:
                piece = piece[piece.find("】") + 1 :].strip()
            text += piece
            line_at += [n] * len(piece)
        items: list[Field] = []
        pos = 0
        for item in tpl.split_items(text):
            at = text.find(item, pos)
            if at < 0:
                break  # the joined text does not hold the item as split: keep the run as it is
            items.append(Field(label="項目", value=item, line=line_at[at], end_line=line_at[at + len(item) - 1]))
            pos = at + len(item)
        else:
            record.fields = items


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


def _place_detached_values(card: Card, unlabelled: set[int]) -> None:
    """Values printed away from their labels ("1万人以上10万人未満" lines after "④…本人の数"): move each into
    the block's first empty field whose label fits what the value says. Unplaceable text stays as it is."""
    for record in card.records():
        if record.kind not in ("提供先", "移転先"):
            continue
        for f in list(record.fields):
            if id(f) not in unlabelled:
                continue
            f.label = record.title
            target = None
            for pattern, fits in _VALUE_KINDS:
                if pattern.search(f.value):
                    target = next(
                        (t for t in record.fields
                         if id(t) not in unlabelled and fits(t.key) and _NO_TEXT.match(t.value)),
                        None,
                    )
                    break
            if target is None:
                continue
            target.value = f.value
            target.line, target.end_line = min(target.line, f.line), max(target.end_line, f.end_line)
            record.fields.remove(f)


_BLOCK_KEYS = re.compile(r"^(法令上の根拠|(提供|移転)(先における用途|する情報|する情報の対象となる本人の(数|範囲)?|方法)|時期・頻度)")


def _pass_on_duplicates(card: Card, unlabelled: set[int]) -> None:
    """Fields printed before their block's header go to that block.

    From 提供先21 on, "③提供する情報" and "④…本人の数" come before the header "提供先21 都道府県知事", so they
    land in the previous block (as a repeated label, or a 移転 label in a 提供先 block) or in the section
    printed in between. Such a field moves to the block whose header follows it, when that block lacks it.
    """
    blocks = sorted((r for r in card.records() if r.kind in ("提供先", "移転先")), key=lambda r: r.line)
    header_line = {id(b): b.line for b in blocks}

    def lacks(block: Record, key: str) -> bool:
        return all(g.key != key for g in block.fields)

    def next_block(line: int) -> Record | None:
        return next((b for b in blocks if header_line[id(b)] > line), None)

    def move(f: Field, owner: Record | Section, to: Record) -> None:
        owner.fields.remove(f)
        to.fields.insert(0, f)
        to.line = min(to.line, f.line)

    for block in blocks:
        following = next_block(header_line[id(block)])
        other = "移転" if block.kind == "提供先" else "提供"
        seen: set[str] = set()
        for f in list(block.fields):
            if id(f) in unlabelled:
                continue
            foreign = f.key.startswith(other)
            if (
                (f.key in seen or foreign)
                and following is not None
                and f.line < header_line[id(following)]
                and lacks(following, f.key)
                and (not foreign or following.kind.startswith(other))
            ):
                move(f, block, following)
                continue
            seen.add(f.key)
    systems = sorted(card.records("システム"), key=lambda r: r.number or 0)
    for section in card.walk():
        for f in list(section.fields):
            if f.key == "システムの名称":
                # "①システムの名称 福祉総合情報システム…" printed after the section heading, away from "システム1".
                target = next((r for r in systems if lacks(r, f.key)), None)
                if target is not None and target in section.records:
                    section.fields.remove(f)
                    target.fields.insert(0, f)
                    target.line, target.end_line = min(target.line, f.line), max(target.end_line, f.end_line)
                continue
            if not tpl.CIRCLED.match(f.label) or not _BLOCK_KEYS.match(f.key):
                continue
            following = next_block(f.line)
            near = following is not None and header_line[id(following)] - f.end_line <= 30
            if following is not None and near and lacks(following, f.key):
                move(f, section, following)


def _cover(section: Section) -> tuple[int, int]:
    """Widen a section's line range to everything filed under it (blocks printed away from their heading)."""
    spans = [(section.line, section.end_line)]
    spans += [(f.line, f.end_line) for f in section.fields]
    spans += [(r.line, r.end_line) for r in section.records]
    spans += [_cover(child) for child in section.children]
    section.line = min(a for a, _ in spans)
    section.end_line = max(b for _, b in spans)
    return section.line, section.end_line


def parse_layout_text(card: Card, source: SourceText) -> Card:
    builder = LayoutBuilder(card)
    builder.feed(source.norm_lines)
    _split_item_lists(card, source.norm_lines)
    _rehome_records(card)
    _pass_on_duplicates(card, builder.unlabelled)
    _place_detached_values(card, builder.unlabelled)
    for record in card.records():
        record.line = min([record.line, *(f.line for f in record.fields)])
        record.end_line = max([record.end_line, *(f.end_line for f in record.fields)])
    for part in card.sections:
        _cover(part)
    for _, f in card.fields():
        choice = read_choice(f.value)
        if choice is not None:
            f.selected, f.options = choice.selected, choice.options
        elif f.selected is None:
            m = _BRACKET_VALUE.match(f.value)
            if m:  # "[ 1万人以上10万人未満 ]" with its option list torn away
                f.selected = [m.group(1)]
    return card
