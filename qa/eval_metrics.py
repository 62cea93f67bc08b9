"""Evaluation metrics and the gold set: small pure functions (stdlib/numpy), each testable alone.

* answers — `normalize_for_match`, `contains_gold`, `is_context_dump`, `answer_correct`,
  `abstention_accuracy`, `false_abstention_rate`;
* retrieval — `find_evidence` (gold evidence → card + 1-based line range in the raw file),
  `card_rank`, `section_rank`, `hit_rate`, `mean_reciprocal_rank`, `holds_evidence`;
* citations — `citation_valid` (quote is a verbatim substring of the file) and `citation_supports`
  (a quote contains the evidence, or its lines overlap the evidence's lines);
* latency — `percentile`, `latency_summary`;
* the gold set — `GoldItem`, `load_gold`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

K = 10  # retrieval depth for hit@k and MRR
HIT_KS = (1, 5, 10)
TYPES = ("span", "list", "number", "date", "yesno", "cross", "unanswerable")
UNANSWERABLE = "unanswerable"

# Context-dump rule (see is_context_dump): the rule the external question set is scored by
# (../shared/eval-external/README.md), so that our figures and the are the same measurement.
DUMP_BASE = 300
DUMP_PER_GOLD = 120

POSITIVE = frozenset({"はい", "yes"})
NEGATIVE = frozenset({"いいえ", "no"})
_WS = re.compile(r"\s+")
_POLARITY = re.compile(r"いいえ|はい|(?<![a-z0-9])(?:yes|no)(?![a-z0-9])")


# ================================================================================================
# Answer metrics
# ================================================================================================


def normalize_for_match(s: str) -> str:
    """Matching form: NFKC, lower-case, all whitespace removed, wave dashes unified to "~".

    >>> normalize_for_match("株式会社 アイネス") == normalize_for_match("株式会社アイネス")
    True
    """
    text = unicodedata.normalize("NFKC", s or "").lower()
    text = text.replace("\u301c", "~")  # 〜 (NFKC already maps ～ to ~)
    return _WS.sub("", text)


def polarity(text: str) -> str | None:
    """"yes"/"no" from the first はい/いいえ/yes/no (whole word) in the normalised text, else None."""
    m = _POLARITY.search(normalize_for_match(text))
    if m is None:
        return None
    return "yes" if m.group(0) in POSITIVE else "no"


def contains_gold(answer_text: str, gold: str) -> bool:
    """Whether one gold string is present in the answer, both in `normalize_for_match` form.

    Two refinements over a bare substring test, so that short golds cannot match by accident:

    * yes/no golds (はい/yes, いいえ/no) match by polarity: the answer's first polarity word must
      agree (はい answers "yes", so a Japanese answer to an English yes/no question counts);
    * a gold that begins or ends with an ASCII letter or digit must not continue into another
      ASCII letter or digit in the answer ("4" is not found in "45", "no" is not found in "not").
    """
    g = normalize_for_match(gold)
    if not g:
        return True
    if g in POSITIVE or g in NEGATIVE:
        # The gold polarity is present and the other is absent (the external set's rule).
        found = {("yes" if m.group(0) in POSITIVE else "no") for m in _POLARITY.finditer(normalize_for_match(answer_text))}
        return found == {"yes" if g in POSITIVE else "no"}
    a = normalize_for_match(answer_text)
    left = r"(?<![a-z0-9])" if g[0].isascii() and g[0].isalnum() else ""
    right = r"(?![a-z0-9])" if g[-1].isascii() and g[-1].isalnum() else ""
    return re.search(left + re.escape(g) + right, a) is not None


def dump_limit(gold_answers: Sequence[str]) -> int:
    """Longest answer (in normalised characters) that is not a context dump for these golds."""
    golds = [g for g in gold_answers if normalize_for_match(g)]
    return DUMP_BASE + DUMP_PER_GOLD * len(golds)


def is_context_dump(answer_text: str, gold_answers: Sequence[str]) -> bool:
    """True when the answer is retrieved context pasted back rather than an answer.

    Lengths are counted on `normalize_for_match` (whitespace-free) text. With n gold strings the
    answer may be at most 300 + 120·n characters, the external set's rule. See `dump_limit`.
    """
    return len(normalize_for_match(answer_text)) > dump_limit(gold_answers)


def answer_correct(answer_text: str, gold_answers: Sequence[str], abstained: bool, gold_type: str) -> bool:
    """Whether an answer is right.

    unanswerable: right iff the system abstained. Otherwise: right iff it did not abstain, every gold
    string is present (`contains_gold`) and the answer is not a context dump (`is_context_dump`).
    """
    if gold_type == UNANSWERABLE:
        return bool(abstained)
    if abstained or not gold_answers:
        return False
    if is_context_dump(answer_text, gold_answers):
        return False
    return all(contains_gold(answer_text, g) for g in gold_answers)


def mean_or_none(values: Iterable[float | bool]) -> float | None:
    vals = [float(v) for v in values]
    return sum(vals) / len(vals) if vals else None


def abstention_accuracy(types: Sequence[str], abstained: Sequence[bool]) -> float | None:
    """Share of unanswerable questions on which the system abstained (None: no unanswerable question)."""
    return mean_or_none(a for t, a in zip(types, abstained, strict=True) if t == UNANSWERABLE)


def false_abstention_rate(types: Sequence[str], abstained: Sequence[bool]) -> float | None:
    """Share of answerable questions on which the system abstained (None: no answerable question)."""
    return mean_or_none(a for t, a in zip(types, abstained, strict=True) if t != UNANSWERABLE)


# ================================================================================================
# Retrieval metrics
# ================================================================================================


@dataclass(frozen=True)
class Span:
    """Where something is: a card and a 1-based inclusive line range of its file."""

    card: str
    line: int
    end_line: int


class Located(Protocol):
    card: str
    line: int
    end_line: int


def read_corpus_text(path: Path | str) -> str:
    """A corpus file as the gold set sees it: UTF-8, universal newlines, leading BOM stripped."""
    text = Path(path).read_text(encoding="utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def lines_of(text: str, start: int, end: int) -> tuple[int, int]:
    """1-based first and last line of text[start:end]."""
    first = text.count("\n", 0, start) + 1
    return first, first + text.count("\n", start, max(start, end - 1))


def find_evidence(evidence: str | Sequence[str], texts: Mapping[str, str], cards: Sequence[str]) -> list[Span]:
    """Every verbatim occurrence of `evidence` in the files of `cards`, as (card, line, end_line).

    Evidence may span lines; a cross-report question gives a list of evidence strings (one per card).
    Empty evidence, or a card with no text, gives no span.
    """
    spans: list[Span] = []
    if not evidence:
        return spans
    if not isinstance(evidence, str):
        return [span for one in evidence for span in find_evidence(one, texts, cards)]
    for card in cards:
        text = texts.get(card)
        if not text:
            continue
        pos = text.find(evidence)
        while pos >= 0:
            line, end_line = lines_of(text, pos, pos + len(evidence))
            spans.append(Span(card, line, end_line))
            pos = text.find(evidence, pos + 1)
    return spans


def squash(text: str) -> str:
    """NFKC with all whitespace removed: the form breaks values across cells and lines."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def holds_evidence(unit: Any, card: str, evidence: str, spans: Sequence[tuple[int, int]], unit_text: str) -> bool:
    """Whether a retrieved unit of `card` holds the evidence: its squashed text `unit_text` contains the squashed
    `evidence`, or its lines overlap one of the evidence's line spans in the report (the retrieval benchmark's
    hit, and the ranker's positives)."""
    if unit.card != card:
        return False
    if evidence and evidence in unit_text:
        return True
    return any(unit.line <= end and start <= unit.end_line for start, end in spans)


def overlaps(a_line: int, a_end: int, b_line: int, b_end: int) -> bool:
    """Whether two inclusive line ranges share a line."""
    return a_line <= b_end and b_line <= a_end


def card_rank(hits: Sequence[Located], gold_cards: Iterable[str], k: int = K) -> int | None:
    """1-based rank of the first hit (within the top k) from one of the gold cards, else None."""
    wanted = set(gold_cards)
    for rank, hit in enumerate(hits[:k], start=1):
        if hit.card in wanted:
            return rank
    return None


def section_rank(hits: Sequence[Located], spans: Sequence[Span], k: int = K) -> int | None:
    """1-based rank of the first hit (within the top k) whose card and lines overlap an evidence span."""
    for rank, hit in enumerate(hits[:k], start=1):
        if any(hit.card == s.card and overlaps(hit.line, hit.end_line, s.line, s.end_line) for s in spans):
            return rank
    return None


def hit_rate(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of questions whose rank is ≤ k (None rank: missed)."""
    return mean_or_none(r is not None and r <= k for r in ranks)


def reciprocal_rank(rank: int | None, k: int = K) -> float:
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def mean_reciprocal_rank(ranks: Sequence[int | None], k: int = K) -> float | None:
    """MRR@k: mean of 1/rank, 0 when missed or ranked below k."""
    return mean_or_none(reciprocal_rank(r, k) for r in ranks)


# ================================================================================================
# Citation metrics
# ================================================================================================


def citation_valid(quote: str, file_text: str | None) -> bool:
    """A citation is valid iff its quote is non-empty and a verbatim substring of the cited file."""
    return bool(quote) and file_text is not None and quote in file_text


def citation_lines(quote: str, line: int) -> tuple[int, int]:
    """The inclusive line range a quote starting at `line` covers."""
    return line, line + quote.count("\n")


def citation_supports(card: str, quote: str, line: int, evidence: str | Sequence[str], spans: Sequence[Span]) -> bool:
    """Whether one citation backs the gold evidence.

    Supported iff the citation's card is a card of the evidence and either its normalised quote
    contains the normalised evidence, or the quote's lines [line, line + newlines] overlap one of the
    evidence's line spans (so a quote that is a part of the evidence counts too).
    """
    cards = {s.card for s in spans}
    if card not in cards:
        return False
    pieces = [evidence] if isinstance(evidence, str) else list(evidence)
    if any(normalize_for_match(ev) and normalize_for_match(ev) in normalize_for_match(quote) for ev in pieces):
        return True
    first, last = citation_lines(quote, line)
    return any(s.card == card and overlaps(first, last, s.line, s.end_line) for s in spans)


# ================================================================================================
# Latency
# ================================================================================================


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation between order statistics (numpy's default)."""
    vals = sorted(float(v) for v in values if v is not None and not math.isnan(v))
    if not vals:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    pos = (len(vals) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def latency_summary(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 of latencies (ms)."""
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


# ================================================================================================
# Gold set
# ================================================================================================


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    type: str
    answers: tuple[str, ...]
    cards: tuple[str, ...]
    section: str
    evidence: str | tuple[str, ...]  # a list for cross-report questions: one string per card
    note: str = ""

    @property
    def answerable(self) -> bool:
        return self.type != UNANSWERABLE


def _evidence(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise TypeError("evidence must be a string or a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise TypeError("evidence must be a string or a list of strings")
    return value


def load_gold(path: Path | str) -> list[GoldItem]:
    """Read gold.jsonl; a malformed line raises ValueError naming it."""
    items: list[GoldItem] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            items.append(
                GoldItem(
                    id=d["id"],
                    question=d["question"],
                    type=d["type"],
                    answers=tuple(d["answers"]),
                    cards=tuple(d["cards"]),
                    section=d.get("section", ""),
                    evidence=_evidence(d.get("evidence", "")),
                    note=d.get("note", ""),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a gold record ({exc})") from exc
    return items
