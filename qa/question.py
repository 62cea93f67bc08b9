"""What a question asks, by general means: its answer type, the reports it names, the form's fields it is about.

Everything here is mechanism; every word it looks for comes from the catalog (qa/data/catalog.toml): answer-type
cues, field names in Japanese and English, places with their romanisations, report subjects. Field matching
combines the names a question contains (lexical) with the embedder's similarity between the question and each
field's description (dense), with weights fitted on data (qa/data/weights.json).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qa.catalog import Catalog, FieldSpec, RecordSpec, catalog
from qa.reading import NAME_CHARS, normalize

if TYPE_CHECKING:
    from qa.parsing.card import Card

_QUOTED = re.compile(r"[「『\"“](.+?)[」』\"”]")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_TYPE_ORDER = ("duration", "frequency", "date", "number", "reason", "method", "organisation", "list")


@dataclass
class FieldMatch:
    spec: FieldSpec
    score: float
    lexical: float
    dense: float = 0.0


@dataclass
class Question:
    text: str
    norm: str
    english: bool
    answer_type: str  # one of _TYPE_ORDER, "yesno" or "span"
    yesno: bool
    wants_list: bool
    cross: bool
    superlative: str | None  # "min" / "max"
    changes: bool
    risks: bool
    money: str | None  # the money word asked about (the form records no amounts)
    exact: bool  # an exact count is asked for
    cards: tuple[str, ...]  # the reports in scope
    named: bool  # the question (or the caller's filter) names its reports
    unknown_place: str | None  # a place named that has no report here
    record: RecordSpec | None  # the block kind asked about (提供先, 委託事項, …)
    record_numbers: list[int] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    fields: list[FieldMatch] = field(default_factory=list)  # best first
    identity: set[str] = field(default_factory=set)  # words that only name a report (川崎市, 生活保護)
    vector: Any = None  # the question embedded as a query, once
    several: bool = False  # it names two or more reports by subject: each is read
    follow_up: str | None = None  # a yes/no question followed by a question word (…委託していますか。件数は？): its type
    glossed: tuple[str, ...] = ()  # an English question's words in the reports' Japanese (the catalog's glossary)

    @property
    def low(self) -> str:
        return self.norm.lower()

    @property
    def top_field(self) -> FieldMatch | None:
        return self.fields[0] if self.fields else None


def glossed_words(low: str, cat: Catalog) -> tuple[str, ...]:
    """The reports' own words for the English words of a question (lost → 紛失), in the order they occur."""
    found = cat.glossary_pattern
    if found is None:
        return ()
    pattern, words = found
    return tuple(dict.fromkeys(ja for m in pattern.finditer(low) for ja in words[m.group(1)]))


def is_english(norm: str) -> bool:
    letters = len(re.findall(r"[A-Za-z]", norm))
    return len(_ENGLISH_WORD.findall(norm)) >= 3 and letters > len(_CJK.findall(norm))


@functools.lru_cache(maxsize=8192)
def _ascii_word(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z-]){re.escape(word)}(?![a-z])")


@functools.lru_cache(maxsize=2048)
def _name_pattern(name: str, equivalents: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> re.Pattern[str]:
    """An English field name as a pattern: "it" inside a name stands for what the question names, one to four
    words ("when is it provided" finds "when is the information provided"); a word of the catalog's
    `english_equivalents` stands for its equivalents too ("whose information" finds "whose data")."""
    same: dict[str, set[str]] = {}
    for word, others in equivalents:
        group = {word, *others}
        for w in group:
            same.setdefault(w, set()).update(group)
    words = name.split(" ")
    if "it" not in words[1:] and not same.keys() & set(words):
        return _ascii_word(name)

    def part(i: int, w: str) -> str:
        if w == "it" and i:
            return r"(?:[a-z0-9'-]+ ){0,3}[a-z0-9'-]+"
        if w in same:
            return "(?:" + "|".join(re.escape(x) for x in sorted(same[w], key=len, reverse=True)) + ")"
        return re.escape(w)

    return re.compile(rf"(?<![a-z-]){' '.join(part(i, w) for i, w in enumerate(words))}(?![a-z])")


def _contains(low: str, word: str) -> bool:
    """`word` in the question; ASCII words only at word boundaries (so 'use' is not found in 'because')."""
    if not word:
        return False
    if word.isascii():
        return word in low and _ascii_word(word).search(low) is not None
    return word in low


def _position(low: str, word: str) -> int:
    """Where `word` ends in the question (-1 when absent)."""
    if word.isascii():
        m = None
        for m in _ascii_word(word).finditer(low):
            pass
        return m.end() if m else -1
    pos = low.rfind(word)
    return pos + len(word) if pos >= 0 else -1


def _head(low: str, word: str) -> bool:
    """`word` stands as a word of its own, not as the tail of a longer compound (ネットワークシステム)."""
    if word.isascii():
        return _contains(low, word)
    if not re.match(f"[{NAME_CHARS}]", word):
        return word in low  # a word that opens with a particle (への提供) is the tail of nothing
    for m in re.finditer(re.escape(word), low):
        before = low[m.start() - 1] if m.start() else ""
        if not before or not re.match(f"[{NAME_CHARS}]", before):
            return True
    return False


def answer_type(low: str, cat: Catalog) -> str:
    for name in _TYPE_ORDER:
        if any(_contains(low, cue) for cue in cat.answer_types.get(name, ())):
            return name
    return "span"


def is_yesno(norm: str, english: bool, cat: Catalog) -> bool:
    low = norm.lower().strip()
    cues = [normalize(cue).lower() for cue in cat.yesno.get("wh", ())]  # type: ignore[union-attr]
    wh = any(_contains(low, cue) for cue in cues)
    if english:
        first = re.match(r"[a-z]+", low)
        return bool(first) and first.group(0) in cat.yesno.get("starts_en", ()) and not wh  # type: ignore[operator]
    sentences = [s.strip() for s in re.split(r"(?<=[。?？])", norm) if s.strip()] or [norm]
    endings = tuple(normalize(e).rstrip("?") for e in cat.yesno.get("endings_ja", ()))  # type: ignore[union-attr]
    # A sentence of its own that ends like a yes/no question and holds no question word ("…委託していますか。何件？").
    return any(
        s.rstrip("?？。 ").endswith(endings) and not any(_contains(s.lower(), cue) for cue in cues) for s in sentences
    )


def lexical_field_scores(low: str, cat: Catalog) -> dict[str, float]:
    """Each field's best name found in the question, scored by its length (ASCII names count half).

    A name found only inside a longer name of another field does not count: in 「評価実施機関における担当部署」
    the question names the department, not 評価実施機関名."""
    found: list[tuple[str, int, int, str]] = []  # (field id, start, end, name)
    # A word that says what kind of answer is wanted (どのくらいの頻度, 間隔, how often) names no field: it is in
    # every question of that kind, whatever it is about; unless the form's label itself says it (時期・頻度).
    type_words = cat.answer_type_words
    for spec in cat.fields:
        for name in spec.names:
            generic = name.lower() in type_words and not any(name in label for label in spec.labels)
            pattern = _name_pattern(name, cat.english_equivalents) if name.isascii() else None
            if name and not generic and (_contains(low, name) or pattern is not None and pattern.search(low)):
                if pattern is not None:
                    found += [(spec.id, m.start(), m.end(), name) for m in pattern.finditer(low)]
                else:
                    found += [(spec.id, m.start(), m.end(), name) for m in re.finditer(re.escape(name), low)]

    def covered(item: tuple[str, int, int, str]) -> bool:
        fid, start, end, _ = item
        return any(
            other != fid and s <= start and end <= e and (e - s) > (end - start) for other, s, e, _ in found
        )

    kept = [item for item in found if not covered(item)]
    out: dict[str, float] = {}
    for spec in cat.fields:
        mine = [item for item in kept if item[0] == spec.id]
        if not mine:
            continue
        best, end = max(((len(n) / (2.0 if n.isascii() else 1.0), e) for _, _, e, n in mine), key=lambda t: (t[0], t[1]))
        if spec.section and normalize(spec.section).lower() in low:
            best += 2.0
        # Japanese puts the head last: of two names, the one nearer the end is what is asked.
        out[spec.id] = min(1.0, best / 4.0) + 0.1 * max(0, end) / max(1, len(low))
    return out


def record_kind(low: str, cat: Catalog) -> RecordSpec | None:
    best: tuple[float, RecordSpec] | None = None
    for spec in cat.records:
        size = max((len(n) / (2.0 if n.isascii() else 1.0) for n in spec.names if _head(low, n)), default=0.0)
        if size and (best is None or size > best[0]):
            best = (size, spec)
    return best[1] if best else None


@dataclass
class Scoping:
    cards: tuple[str, ...]
    named: bool
    unknown_place: str | None
    identity: set[str]
    several: bool = False  # the question names two or more reports by their subjects (児童手当と生活保護)


def place_names_of(card: Card, cat: Catalog) -> set[str]:
    names: set[str] = set()
    if card.municipality:
        names.add(normalize(card.municipality).lower())
        for place in cat.places:
            if place.name == card.municipality or (card.municipality and place.name in card.municipality):
                names.update(place.names)
    return names


def affair_names_of(card: Card, cat: Catalog) -> set[str]:
    subject = normalize(" ".join(x for x in (card.title, card.affair) if x))
    names: set[str] = set()
    for affair in cat.affairs:
        if affair.name in subject:
            names.update(affair.names)
    return names


def _unknown_places(norm: str, known: set[str], cat: Catalog) -> list[str]:
    low = norm.lower()
    found: list[str] = []
    for name in cat.gazetteer_ja:
        if name in norm and re.search(re.escape(name) + r"(?![長民役議会])", norm) and name.lower() not in known:
            found.append(name)
    for name in cat.gazetteer_en:
        if _contains(low, name.lower()) and name.lower() not in known:
            found.append(name)
    suffixes = "".join(cat.place_suffixes_ja)
    for m in re.finditer(rf"([一-龥ぁ-んァ-ヴー]{{1,5}}?[{suffixes}])(?:の|は|が|で|に|では|において|、|\s|$)", norm):
        name = m.group(1)
        if any(name.endswith(x) or x in name for x in cat.not_places_ja) or len(name) < 2:
            continue
        if name.lower() not in known and name not in found and not any(k and k in name.lower() for k in known):
            found.append(name)
    words = "|".join(re.escape(w) for w in cat.place_words_en)
    for m in re.finditer(rf"\b([A-Z][a-z]{{2,}})(?:\s+|')(?:{words})\b", norm, flags=re.I):
        name = m.group(1)
        if m.group(1)[0].isupper() and name.lower() not in known and name not in found:
            found.append(name)
    return found


def scope(norm: str, cards: dict[str, Card], cat: Catalog, only: tuple[str, ...] | None = None) -> Scoping:
    """The reports a question is about: the caller's filter, else those it names by place and subject."""
    low = norm.lower()
    identity: set[str] = set()
    place_hit: dict[str, float] = {}
    affair_hit: dict[str, float] = {}
    known_places: set[str] = set()
    for cid, card in cards.items():
        places = place_names_of(card, cat)
        affairs = affair_names_of(card, cat)
        known_places |= places
        for p in cat.places:
            if p.name == card.municipality and p.prefecture:
                known_places.add(p.prefecture.lower())
        identity |= places | affairs
        place_hit[cid] = max((len(n) for n in places if len(n) >= 2 and _contains(low, n)), default=0)
        affair_hit[cid] = max((len(n) for n in affairs if len(n) >= 2 and _contains(low, n)), default=0)
    unknown = _unknown_places(norm, known_places, cat)
    if only:
        return Scoping(tuple(c for c in only if c in cards), True, None, identity)
    scores = {cid: (1.0 if place_hit[cid] else 0.0) + (2.0 if affair_hit[cid] else 0.0) for cid in cards}
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return Scoping(tuple(cards), False, unknown[0] if unknown else None, identity)
    chosen = tuple(cid for cid, s in scores.items() if s >= best)
    # A place named that has no report, and no report's place named: "no such report", not another city's.
    named_place = any(place_hit.values())
    several = sum(1 for c in chosen if affair_hit[c]) > 1
    return Scoping(chosen, True, unknown[0] if unknown and not named_place else None, identity, several)


def understand(
    text: str,
    cards: dict[str, Card],
    only: tuple[str, ...] | None = None,
    dense_scores: dict[str, float] | None = None,
    weights: dict[str, float] | None = None,
    cat: Catalog | None = None,
) -> Question:
    """Analyse a question. `dense_scores`: field id → similarity of the question to the field's description."""
    cat = cat or catalog()
    norm = normalize(text).strip()
    low = norm.lower()
    english = is_english(norm)
    kind = answer_type(low, cat)
    yesno = is_yesno(norm, english, cat)
    scoping = scope(norm, cards, cat, only)
    lexical = lexical_field_scores(low, cat)
    # A question that names a part of the form and asks for a kind of value (第三者点検 … いつ, when … the
    # third-party review) asks for that part's field of the kind (its 実施日), though the name it uses is a
    # sibling's (第三者点検 is also a name of its 方法).
    for spec in cat.fields:
        if spec.type == kind and spec.section and spec.id not in lexical:
            mates = [lexical[f.id] for f in cat.fields
                     if f.section == spec.section and f.id in lexical and f.type != kind]
            if mates:
                lexical[spec.id] = max(mates) + 0.05
    w = weights or {}
    w_lex, w_dense = w.get("field_lexical", 1.0), w.get("field_dense", 1.0)
    dense = dense_scores or {}
    floor = w.get("field_dense_floor", 0.80)
    matches = []
    for spec in cat.fields:
        lex = lexical.get(spec.id, 0.0)
        den = max(0.0, dense.get(spec.id, 0.0) - floor) / max(1e-6, 1.0 - floor)
        score = w_lex * lex + w_dense * den
        if score > 0:
            matches.append(FieldMatch(spec, score, lex, dense.get(spec.id, 0.0)))
    matches.sort(key=lambda m: -m.score)
    rec = record_kind(low, cat)
    numbers = [int(n) for n in re.findall(r"(?:" + "|".join(cat.record_kinds) + r")\s*(\d{1,3})", norm)]
    numbers += [int(n) for n in re.findall(r"\b(?:system|recipient|transferee)\s*(\d{1,3})\b", low)]
    follow_up = None
    if yesno and not english:
        cues = [normalize(cue).lower() for cue in cat.yesno.get("wh", ())]  # type: ignore[union-attr]
        endings = tuple(normalize(e).rstrip("?") for e in cat.yesno.get("endings_ja", ()))  # type: ignore[union-attr]
        for part in (x.strip() for x in re.split(r"(?<=[。?？])", low)):
            if not part or part.rstrip("?？。 ").endswith(endings):
                continue
            kind_of = answer_type(part, cat)
            if kind_of != "span" or any(_contains(part, c) for c in cues):
                follow_up = kind_of
    superlative = None
    if any(_contains(low, c) for c in cat.most_cues):
        superlative = "min" if any(_contains(low, c) for c in cat.smallest_cues) else "max"
    return Question(
        text=text,
        norm=norm,
        english=english,
        answer_type="yesno" if yesno else kind,
        yesno=yesno,
        wants_list=kind == "list" or any(_contains(low, c) for c in cat.answer_types.get("list", ())),
        cross=scoping.several or any(_contains(low, c) for c in cat.cross_cues),
        superlative=superlative,
        changes=any(_contains(low, c) for c in cat.change_cues),
        risks=any(_contains(low, c) for c in cat.risk_cues),
        money=next((c for c in cat.money_cues if _contains(low, c)), None),
        exact=any(_contains(low, c) for c in cat.exact_cues),
        cards=scoping.cards,
        named=scoping.named,
        unknown_place=scoping.unknown_place,
        record=rec,
        record_numbers=numbers,
        quoted=[m.strip() for m in _QUOTED.findall(norm) if m.strip()],
        fields=matches,
        identity=scoping.identity,
        several=scoping.several,
        glossed=glossed_words(low, cat) if english else (),
        follow_up=follow_up,
    )
