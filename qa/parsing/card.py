"""The structured reading of one report: `Card` → `Section` tree → `Field`s and `Record`s.

Every node remembers the raw line range it came from, so later stages can cite the file verbatim.
Japanese labels are data (`Field.label == "③委託先名"`), never identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.reading import NAME_CHARS

SEP = " > "
_MARKERS = re.compile(r"^[\s①-⑳]+|[※\s]+$")


def label_key(label: str) -> str:
    """A label without its circled number and ※, for matching: "④再委託の有無 ※" → "再委託の有無"."""
    return _MARKERS.sub("", label).replace(" ", "").replace("\u3000", "")


@dataclass
class Field:
    """A label and its value as the report states it (normalised text, HTML removed).

    `selected` holds the chosen options of a choice field (`[委託する]`, `[ ○ ] 情報提供ネットワークシステム`);
    it is None when the field offers no choice or the choice cannot be read reliably, and an empty list when
    the form visibly chose nothing (an empty template field).
    """

    label: str
    value: str
    line: int
    end_line: int
    selected: list[str] | None = None
    options: list[str] = field(default_factory=list)
    group: str | None = None

    @property
    def key(self) -> str:
        return label_key(self.label)

    @property
    def empty(self) -> bool:
        """A template field left blank: no value, a dash, or a choice with nothing chosen."""
        if self.selected:
            return False
        return self.selected is not None or is_empty_value(self.value)


@dataclass
class Record:
    """One repeated block: 提供先N, 移転先N, 委託事項N, システムN, or a change-history row."""

    kind: str
    number: int | None
    name: str | None
    path: list[str]
    line: int
    end_line: int
    fields: list[Field] = field(default_factory=list)

    @property
    def title(self) -> str:
        head = f"{self.kind}{self.number}" if self.number is not None else self.kind
        return f"{head} {self.name}" if self.name else head

    @property
    def breadcrumb(self) -> str:
        return SEP.join(self.path)

    def get(self, key: str) -> Field | None:
        """The field labelled `key` (after removing markers), else the first whose label contains it as a
        word: 本人の範囲 is the tail of 提供する情報の対象となる本人の範囲, but 委託の有無 glued to 再 is another
        field (再委託の有無)."""
        exact = [f for f in self.fields if f.key == key]
        if exact:
            return next((f for f in exact if not f.empty), exact[0])
        for f in self.fields:
            at = f.key.find(key)
            if at == 0 or (at > 0 and not re.match(f"[{NAME_CHARS}]", f.key[at - 1])):
                return f
        return None

    def value(self, key: str) -> str | None:
        f = self.get(key)
        return None if f is None or f.empty else f.value


@dataclass
class Section:
    title: str
    path: list[str]
    line: int
    end_line: int
    fields: list[Field] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    @property
    def breadcrumb(self) -> str:
        return SEP.join(self.path)

    def walk(self) -> Iterator[Section]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Card:
    """One report. Metadata the report does not state is None, never guessed or borrowed."""

    id: str
    source: str
    kind: str | None = None
    number: str | None = None
    title: str | None = None
    evaluator: str | None = None
    municipality: str | None = None
    published: str | None = None
    affair: str | None = None
    # How the file was read: "table" (label/value cells: fields are reliable) or "layout" (a PDF-to-text
    # extraction whose labels and values are out of order: a field may be empty only because its value
    # stands elsewhere).
    layout: str | None = None
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How a person names this card: municipality and title."""
        name = self.title or self.affair or self.id
        return f"{self.municipality} {name}" if self.municipality and self.municipality not in name else name

    def walk(self) -> Iterator[Section]:
        for s in self.sections:
            yield from s.walk()

    def records(self, kind: str | None = None) -> list[Record]:
        return [r for s in self.walk() for r in s.records if kind is None or r.kind == kind]

    def fields(self) -> Iterator[tuple[Section | Record, Field]]:
        for s in self.walk():
            for f in s.fields:
                yield s, f
            for r in s.records:
                for f in r.fields:
                    yield r, f

    def find_section(self, needle: str) -> Section | None:
        for s in self.walk():
            if needle in s.title:
                return s
        return None

    def metadata(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "number": self.number,
            "title": self.title,
            "evaluator": self.evaluator,
            "municipality": self.municipality,
            "published": self.published,
            "affair": self.affair,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def source_path(self) -> Path:
        return Path(self.source)


_EMPTY = {"", "-", "—", "―", "－", "ー", "‐", "[]", "[ ]"}


def is_empty_value(value: str) -> bool:
    """Empty template fields: nothing, a dash, or only the form's option list with nothing chosen."""
    v = value.strip()
    if v in _EMPTY:
        return True
    v = re.sub(r"<選択肢>.*", "", v, flags=re.S).strip()
    v = re.sub(r"\[\s*\]", "", v).strip()
    return v in _EMPTY


def _field_from_dict(d: dict[str, Any]) -> Field:
    return Field(**d)


def _record_from_dict(d: dict[str, Any]) -> Record:
    return Record(**{**d, "fields": [_field_from_dict(f) for f in d.get("fields", [])]})


def _section_from_dict(d: dict[str, Any]) -> Section:
    return Section(
        **{
            **d,
            "fields": [_field_from_dict(f) for f in d.get("fields", [])],
            "records": [_record_from_dict(r) for r in d.get("records", [])],
            "children": [_section_from_dict(c) for c in d.get("children", [])],
        }
    )


def card_from_dict(d: dict[str, Any]) -> Card:
    """The inverse of `Card.to_dict`, for cards stored in the index as JSON (never pickle)."""
    return Card(**{**d, "sections": [_section_from_dict(s) for s in d.get("sections", [])]})
