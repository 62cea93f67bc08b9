"""Card → retrievable units: a field, a block (record), a piece of prose, the cover page; every line covered.

Each unit keeps the exact source span (`line`…`end_line`) and its verbatim text, so what retrieval returns can
be checked against the file; `text` is the clean reading ("label: value", HTML removed) that answers quote from.
Search sees the card's name and the breadcrumb too, so 「生活保護」 in a question reaches the 生活保護 report's
blocks even when the block never says 生活保護, and the two 川崎市 reports that share boilerplate stay apart.
Lines no field or block claims (an annex, text after the last section, a heading) become prose units under
the innermost section that holds them: nothing in a report is unreachable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from qa.parsing.card import SEP, Card, Field, Record, Section
from qa.parsing.template import CHANGE_KIND, ITEM_KIND
from qa.reading import SourceText

# The version of the units as parsed and chunked: a change to either makes every index stale.
CHUNKER_VERSION = "9-item-groups-in-runs"
MAX_CHARS = 360
OVERLAP_SENTENCES = 1
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
_TAG = re.compile(r"</?[A-Za-z!][^>]*>")


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit. `kind`: field, record, prose or cover."""

    id: str
    card: str
    source: str
    title: str
    section: str  # breadcrumb
    label: str
    text: str  # the clean reading: "label: value" lines, or the prose itself
    line: int
    end_line: int
    record_kind: str | None = None
    record_number: int | None = None
    kind: str = "field"
    verbatim: str = ""  # the raw source lines line…end_line, as written

    @property
    def is_change_history(self) -> bool:
        """A unit of 別添2 (変更箇所): it repeats the old and new text of every section beside its past."""
        return self.record_kind == CHANGE_KIND or CHANGE_KIND in self.section

    @property
    def search_text(self) -> str:
        """What BM25 and the embedder see: card, breadcrumb, then the content."""
        return f"{self.title}\n{self.section}\n{self.text}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


def split_text(text: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_SENTENCES) -> list[str]:
    """Split a long value at sentence ends (。/newline), repeating `overlap` sentences between pieces."""
    if len(text) <= max_chars:
        return [text]
    sentences = [s for s in _SENTENCE_END.split(text) if s and s.strip()]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        while len(sentence) > max_chars:  # one sentence longer than a unit: cut it hard, with overlap
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars - 50 :]
        if current and len("".join(current)) + len(sentence) > max_chars:
            pieces.append("".join(current))
            current = current[-overlap:] if overlap else []
            if len("".join(current)) + len(sentence) > max_chars:
                current = []
        current.append(sentence)
    if current:
        pieces.append("".join(current))
    return [p.strip() for p in pieces if p.strip()]


def clean_line(norm: str) -> str:
    """A normalised source line as a reader sees it: markup removed, cells separated by spaces."""
    text = _TAG.sub(" ", norm).replace("\t", " ").replace("|", " ")
    return re.sub(r"\s+", " ", text).strip()


def has_content(norm: str) -> bool:
    """A line says something: a letter, digit or ideograph is left once markup and table rules are gone."""
    return bool(re.search(r"\w", clean_line(norm)))


def field_line(f: Field) -> str:
    value = f.value.replace("\n", " ").strip()
    if f.selected:
        value = f"[{'・'.join(f.selected)}] " + re.sub(r"<選択肢>.*|\s\d\).*", "", value).strip()
    label = f"{f.group} {f.label}" if f.group and f.group not in f.label else f.label
    return f"{label}: {value}" if value else label


class _Units:
    def __init__(self, card: Card, source: SourceText | None) -> None:
        self.card = card
        self.source = source
        self.units: list[Chunk] = []
        self.covered: set[int] = set()

    def verbatim(self, line: int, end_line: int) -> str:
        if self.source is None:
            return ""
        return "\n".join(self.source.lines[line - 1 : end_line])

    def narrow(self, piece: str, line: int, end_line: int) -> tuple[int, int]:
        """The lines of [line, end_line] that hold `piece` (a part of a long value)."""
        if self.source is None or end_line <= line:
            return line, end_line
        probe_head, probe_tail = piece[:12], piece[-12:]
        first = last = None
        for n in range(line, end_line + 1):
            text = self.source.norm_lines[n - 1]
            if first is None and probe_head and probe_head in text:
                first = n
            if probe_tail and probe_tail in text:
                last = n
        first = first or line
        last = last if last and last >= first else end_line
        return first, last

    def emit(
        self, section: str, label: str, text: str, line: int, end_line: int, record: Record | None = None,
        kind: str = "field",
    ) -> None:
        pieces = split_text(text)
        for piece in pieces:
            first, last = self.narrow(piece, line, end_line) if len(pieces) > 1 else (line, end_line)
            self.units.append(
                Chunk(
                    id=f"{self.card.id}#{len(self.units)}",
                    card=self.card.id,
                    source=self.card.source,
                    title=self.card.label,
                    section=section,
                    label=label,
                    text=piece,
                    line=first,
                    end_line=last,
                    record_kind=record.kind if record else None,
                    record_number=record.number if record else None,
                    kind=kind,
                    verbatim=self.verbatim(first, last),
                )
            )
            self.covered.update(range(first, last + 1))

    def record(self, record: Record) -> None:
        lines = [record.title] + [field_line(f) for f in record.fields if not f.empty]
        text = "\n".join(lines)
        if len(text) <= MAX_CHARS * 1.6:
            self.emit(record.breadcrumb, record.title, text, record.line, record.end_line, record, "record")
            return
        # A long block: one unit per field, each still naming the block; a long list of items (別添1's 記録項目
        # group) in runs of items, as one item is not worth a unit of its own.
        self.emit(record.breadcrumb, record.title, record.title, record.line, record.line, record, "record")
        fields = [f for f in record.fields if not f.empty]
        if record.kind == ITEM_KIND:
            self.item_runs(record, fields)
            return
        for f in fields:
            self.emit(record.breadcrumb, f.label, f"{record.title}\n{field_line(f)}", f.line, f.end_line, record)

    def item_runs(self, record: Record, items: list[Field]) -> None:
        """Consecutive items in units of up to half a unit's length, each unit headed by the group's title."""
        lines = [field_line(f) for f in items]
        start, size = 0, 0
        for i, line in enumerate(lines):
            size += len(line)
            if i + 1 == len(lines) or size + len(lines[i + 1]) > MAX_CHARS // 2:
                text = "\n".join([record.title, *lines[start : i + 1]])
                self.emit(record.breadcrumb, f"{items[start].label} …", text, items[start].line, items[i].end_line, record)
                start, size = i + 1, 0

    def section(self, section: Section) -> None:
        run: list[Field] = []

        def flush() -> None:
            if run:
                text = "\n".join(field_line(f) for f in run)
                label = run[0].label if len(run) == 1 else f"{run[0].label} …"
                self.emit(section.breadcrumb, label, text, min(f.line for f in run), max(f.end_line for f in run))
                run.clear()

        for f in section.fields:
            if f.empty and not f.value:
                continue
            size = len(field_line(f))
            if size > MAX_CHARS // 3:
                flush()
                self.emit(section.breadcrumb, f.label, field_line(f), f.line, f.end_line)
                continue
            if run and (sum(len(field_line(x)) for x in run) + size > MAX_CHARS // 2 or f.group != run[-1].group):
                flush()
            run.append(f)
        flush()
        for record in section.records:
            self.record(record)

    def cover(self) -> None:
        """The cover page as one unit, so 公表日 and 評価実施機関名 questions have something to find."""
        meta = self.card
        parts = [
            ("評価書番号", meta.number),
            ("評価書名", meta.title),
            ("評価実施機関名", meta.evaluator),
            ("公表日", meta.published),
            ("評価書の種類", meta.kind),
        ]
        text = "\n".join(f"{k}: {v}" for k, v in parts if v)
        if not text:
            return
        end = min(40, max(1, _cover_end(meta)))
        self.units.append(
            Chunk(
                id=f"{self.card.id}#{len(self.units)}", card=meta.id, source=meta.source, title=meta.label,
                section="表紙", label="表紙", text=text, line=1, end_line=end, kind="cover",
                verbatim=self.verbatim(1, end),
            )
        )

    def prose(self) -> None:
        """Every non-blank line no unit holds yet, in runs under the innermost section that contains it.

        A run spans blank lines; it ends where a field or block intervenes, the section changes, or it is full.
        Numbered headings inside the prose ((1), 1, ①, 事案1, 別紙 …) open a new unit once the current one has a
        body, and stand in the breadcrumb of the units under them, so an annex's 「(4) 影響」 is found as
        "… > 事案1 … > (4) 影響" with its own lines. Text after every field and block of the card (an annex
        appended to the form) is not filed under the last section: its headings are its breadcrumb."""
        if self.source is None:
            return
        source = self.source
        spans = sorted(((s.line, s.end_line, s.breadcrumb) for s in self.card.walk()), key=lambda t: (t[0], -t[1]))
        structured_end = max((x for x in self.covered), default=0)

        def home(n: int) -> str:
            best = ""
            best_size = None
            for first, last, crumb in spans:
                if first <= n <= last and (best_size is None or last - first <= best_size):
                    best, best_size = crumb, last - first
            return best

        run: list[int] = []
        run_home = ""
        run_crumb = ""
        has_body = False
        headings: list[tuple[str, str]] = []  # (numbering class, heading text), outermost first

        def flush() -> None:
            nonlocal has_body
            if run:
                text = "\n".join(clean_line(source.norm_lines[n - 1]) for n in run)
                label = text.split("\n", 1)[0][:40]
                self.emit(run_crumb or self.card.label, label, text, run[0], run[-1], kind="prose")
                run.clear()
            has_body = False

        for n in range(1, source.line_count + 1):
            norm = source.norm_lines[n - 1]
            if n in self.covered:
                flush()
                headings.clear()
                continue
            if not has_content(norm):
                continue
            text = clean_line(norm)
            where = home(n)
            trailing = n > structured_end
            numbering = heading_class(text, first=not run and not headings)
            size = sum(len(source.norm_lines[m - 1]) for m in run)
            if run and (where != run_home or size > MAX_CHARS or (numbering and has_body)):
                flush()
            if where != run_home:
                headings.clear()
            if numbering:
                for i, (cls, _) in enumerate(headings):
                    if cls == numbering:
                        del headings[i:]
                        break
            if not run:
                run_home = where
                outer = [h for _, h in headings]
                base = [] if trailing and (numbering or outer) else [where] if where else []
                run_crumb = SEP.join(base + outer)
            if numbering:
                headings.append((numbering, text[:60]))
            else:
                has_body = True
            run.append(n)
        flush()


_HEADING_CLASSES = (
    ("annex", re.compile(r"^(別紙|別添|事案|第)\s*[0-9一二三四五六七八九十]+")),
    ("paren", re.compile(r"^[(（]\s*[0-9]+\s*[)）]")),
    ("circled", re.compile(r"^[①-⑳]")),
    ("number", re.compile(r"^[0-9]{1,2}(\s|[.．]\s*)\S")),
)


def heading_class(text: str, first: bool = False) -> str | None:
    """The numbering class of a prose heading (a short line that is not a sentence), else None; an unnumbered
    short line heads its text only when it opens a prose region (an annex's title)."""
    if len(text) > 60 or text.endswith(("。", "、")) or re.fullmatch(r"[\d\s年月日令和平成~～.:/()-]+", text):
        return None
    for name, pattern in _HEADING_CLASSES:
        if pattern.match(text):
            return name
    if first and len(text) <= 40 and re.match(r"\w", text) and not re.search(r"[\[\]<>:。]", text):
        return "title"
    return None


def _cover_end(card: Card) -> int:
    first = min((s.line for s in card.sections), default=40)
    return max(1, first - 1)


def chunk_card(card: Card, source: SourceText | None = None) -> list[Chunk]:
    """The card's units; with its `source`, units carry verbatim text and every non-blank line is covered."""
    units = _Units(card, source)
    units.cover()
    for section in card.walk():
        units.section(section)
    units.prose()
    return units.units


def iter_chunks(cards: list[Card]) -> Iterator[Chunk]:
    for card in cards:
        yield from chunk_card(card)


__all__ = ["CHUNKER_VERSION", "Chunk", "SEP", "chunk_card", "clean_line", "field_line", "has_content", "heading_class", "iter_chunks", "split_text"]
