"""The national form and its vocabulary, read from qa/data/catalog.toml.

One file holds every word: the form's labels and block kinds (read by the parser), the everyday Japanese and
English names of each field with its answer type (read by question matching), the reports' subjects and
places with their romanisations, and the cue words of answer types. Code here only loads and indexes it.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from qa.reading import normalize

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "catalog.toml"


@dataclass(frozen=True)
class FieldSpec:
    """One field of the form: its label, where it lives, what it holds and what people call it."""

    id: str
    label: str
    type: str
    also: tuple[str, ...] = ()
    record: str | None = None
    section: str | None = None
    meta: str | None = None  # a Card attribute (number, published, evaluator, kind) for cover-page fields
    ja: tuple[str, ...] = ()
    en: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.also)

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Every way of naming the field, normalised and lower-cased, longest first (computed once: the
        question matcher reads it for every field of every question)."""
        words = {normalize(w).lower() for w in (*self.labels, *self.ja, *self.en) if w}
        return tuple(sorted(words, key=len, reverse=True))

    @property
    def description(self) -> str:
        """What the embedder sees of the field: label, section and names."""
        where = f"{self.section} " if self.section else ""
        return f"{where}{self.label}: {' / '.join((*self.ja, *self.en))}"


@dataclass(frozen=True)
class RecordSpec:
    kind: str
    name_fields: tuple[str, ...]
    ja: tuple[str, ...] = ()
    en: tuple[str, ...] = ()
    count_field: str | None = None
    who_field: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        words = {normalize(w).lower() for w in (self.kind, *self.ja, *self.en)}
        return tuple(sorted(words, key=len, reverse=True))


@dataclass(frozen=True)
class Affair:
    name: str
    ja: tuple[str, ...] = ()
    en: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({normalize(w).lower() for w in (self.name, *self.ja, *self.en)}, key=len, reverse=True))


@dataclass(frozen=True)
class Place:
    name: str
    reading: str = ""
    en: tuple[str, ...] = ()
    prefecture: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        stem = self.name[:-1] if self.name[-1:] in "市町村区" and len(self.name) > 2 else self.name
        return tuple(sorted({normalize(w).lower() for w in (self.name, stem, *self.en)}, key=len, reverse=True))


@dataclass(frozen=True)
class Catalog:
    fields: tuple[FieldSpec, ...]
    records: tuple[RecordSpec, ...]
    form_labels: frozenset[str]
    record_kinds: tuple[str, ...]
    answer_types: dict[str, tuple[str, ...]]
    cross_cues: tuple[str, ...]
    most_cues: tuple[str, ...]
    smallest_cues: tuple[str, ...]
    yesno: dict[str, object]
    change_cues: tuple[str, ...]
    change_to: tuple[str, ...]
    change_from: tuple[str, ...]
    change_columns: tuple[str, str]
    change_reason: str  # the change history's column saying why (提出時期に係る説明)
    change_first: tuple[str, ...]  # words asking when something began (追加, 新規): the earliest matching row answers
    risk_cues: tuple[str, ...]
    money_cues: tuple[str, ...]
    exact_cues: tuple[str, ...]
    affairs: tuple[Affair, ...]
    places: tuple[Place, ...]
    gazetteer_ja: tuple[str, ...]
    gazetteer_en: tuple[str, ...]
    place_words_en: tuple[str, ...]
    place_suffixes_ja: tuple[str, ...]
    not_places_ja: tuple[str, ...]
    glossary: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the reports' word → its English (normalised, lower)
    english_equivalents: tuple[tuple[str, tuple[str, ...]], ...] = ()  # an English word → words for the same thing
    version: int = 0
    by_id: dict[str, FieldSpec] = field(default_factory=dict)

    def field(self, field_id: str) -> FieldSpec:
        return self.by_id[field_id]

    @functools.cached_property
    def answer_type_words(self) -> frozenset[str]:
        """Every word that says what kind of answer is wanted (どのくらいの頻度, how often), normalised."""
        return frozenset(normalize(w).lower() for words in self.answer_types.values() for w in words)

    @functools.cached_property
    def label_homes(self) -> dict[str, list[str]]:
        """Label key → the section words the catalog places that label in (fields of no block)."""
        from qa.parsing.card import label_key

        homes: dict[str, list[str]] = {}
        for spec in self.fields:
            if spec.section and not spec.record:
                homes.setdefault(label_key(spec.label), []).append(spec.section)
        return homes

    @functools.cached_property
    def glossary_pattern(self) -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]] | None:
        """One pattern for every English word of the glossary (longest first, whole words, a plural s or es
        allowed) and the report's words each one stands for."""
        words: dict[str, list[str]] = {}
        for ja, english in self.glossary:
            for en in english:
                words.setdefault(en, []).append(ja)
        if not words:
            return None
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        pattern = re.compile(rf"(?<![a-z0-9-])({alternatives})(?:s|es)?(?![a-z0-9])")
        return pattern, {w: tuple(ja) for w, ja in words.items()}

    def record(self, kind: str) -> RecordSpec | None:
        return next((r for r in self.records if r.kind == kind), None)


def _tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)  # type: ignore[union-attr]


def load_catalog(path: Path | str = CATALOG_PATH) -> Catalog:
    """Parse the catalog file. Raises ValueError naming the entry when one is malformed."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    fields: list[FieldSpec] = []
    for entry in data.get("field", []):
        try:
            fields.append(
                FieldSpec(
                    id=entry["id"],
                    label=entry["label"],
                    type=entry["type"],
                    also=_tuple(entry.get("also")),
                    record=entry.get("record"),
                    section=entry.get("section"),
                    meta=entry.get("meta"),
                    ja=_tuple(entry.get("ja")),
                    en=_tuple(entry.get("en")),
                )
            )
        except KeyError as exc:
            raise ValueError(f"{path}: field entry {entry!r} lacks {exc}") from exc
    ids = [f.id for f in fields]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate field ids {sorted({i for i in ids if ids.count(i) > 1})}")
    form = data.get("form", {})
    gaz = data.get("gazetteer", {})
    yesno = dict(data.get("yesno", {}))
    return Catalog(
        fields=tuple(fields),
        records=tuple(
            RecordSpec(
                r["kind"], _tuple(r.get("name_fields")), _tuple(r.get("ja")), _tuple(r.get("en")), r.get("count_field"),
                r.get("who_field"),
            )
            for r in data.get("record", [])
        ),
        form_labels=frozenset(_tuple(form.get("labels"))),
        record_kinds=_tuple(form.get("record_kinds")),
        answer_types={k: tuple(normalize(w).lower() for w in v) for k, v in data.get("answer_types", {}).items()},
        cross_cues=tuple(normalize(w).lower() for w in data.get("cross", {}).get("cues", [])),
        most_cues=tuple(normalize(w).lower() for w in data.get("cross", {}).get("most", [])),
        smallest_cues=tuple(normalize(w).lower() for w in data.get("cross", {}).get("smallest", [])),
        yesno=yesno,
        change_cues=tuple(normalize(w).lower() for w in data.get("changes", {}).get("cues", [])),
        change_to=_tuple(data.get("changes", {}).get("to_markers")),
        change_from=_tuple(data.get("changes", {}).get("from_markers")),
        change_first=tuple(normalize(w).lower() for w in data.get("changes", {}).get("first_cues", [])),
        change_reason=str(data.get("changes", {}).get("reason_label", "")),
        change_columns=(
            str(data.get("changes", {}).get("before_label", "")),
            str(data.get("changes", {}).get("after_label", "")),
        ),
        risk_cues=tuple(normalize(w).lower() for w in data.get("risks", {}).get("cues", [])),
        money_cues=tuple(normalize(w).lower() for w in data.get("money", {}).get("cues", [])),
        exact_cues=tuple(normalize(w).lower() for w in data.get("exact", {}).get("cues", [])),
        affairs=tuple(Affair(a["name"], _tuple(a.get("ja")), _tuple(a.get("en"))) for a in data.get("affair", [])),
        places=tuple(
            Place(p["name"], p.get("reading", ""), _tuple(p.get("en")), p.get("prefecture"))
            for p in data.get("place", [])
        ),
        gazetteer_ja=_tuple(gaz.get("ja")),
        gazetteer_en=_tuple(gaz.get("en")),
        place_words_en=_tuple(gaz.get("place_words_en")),
        place_suffixes_ja=_tuple(gaz.get("place_suffixes_ja")),
        not_places_ja=_tuple(gaz.get("not_places_ja")),
        glossary=tuple(
            (normalize(ja), tuple(normalize(en).lower() for en in _tuple(english)))
            for ja, english in data.get("glossary", {}).items()
        ),
        english_equivalents=tuple(
            (normalize(word).lower(), tuple(normalize(w).lower() for w in _tuple(others)))
            for word, others in data.get("english_equivalents", {}).items()
        ),
        version=int(data.get("version", 0)),
        by_id={f.id: f for f in fields},
    )


@functools.lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The project's catalog, loaded once per process."""
    return load_catalog()
