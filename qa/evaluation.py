"""Evaluation against the gold set (eval/gold.jsonl): metrics, the runner, the report and `qa eval`.

Metrics are small pure functions (stdlib/numpy) so each can be tested alone:

* answers — `normalize_for_match`, `contains_gold`, `is_context_dump`, `answer_correct`,
  `abstention_accuracy`, `false_abstention_rate`;
* retrieval — `find_evidence` (gold evidence → card + 1-based line range in the raw file),
  `card_rank`, `section_rank`, `hit_rate`, `mean_reciprocal_rank`;
* citations — `citation_valid` (quote is a verbatim substring of the file) and `citation_supports`
  (a quote contains the evidence, or its lines overlap the evidence's lines);
* latency — `percentile`, `latency_summary`.

`run_evaluation(assistant, gold_path, out_dir)` runs the project and the two baselines of
`qa.baselines` over the same questions and writes per-question JSONL, report.md and PNG charts.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

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


def _mean(values: Iterable[float | bool]) -> float | None:
    vals = [float(v) for v in values]
    return sum(vals) / len(vals) if vals else None


def abstention_accuracy(types: Sequence[str], abstained: Sequence[bool]) -> float | None:
    """Share of unanswerable questions on which the system abstained (None: no unanswerable question)."""
    return _mean(a for t, a in zip(types, abstained, strict=True) if t == UNANSWERABLE)


def false_abstention_rate(types: Sequence[str], abstained: Sequence[bool]) -> float | None:
    """Share of answerable questions on which the system abstained (None: no answerable question)."""
    return _mean(a for t, a in zip(types, abstained, strict=True) if t != UNANSWERABLE)


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
    return _mean(r is not None and r <= k for r in ranks)


def reciprocal_rank(rank: int | None, k: int = K) -> float:
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def mean_reciprocal_rank(ranks: Sequence[int | None], k: int = K) -> float | None:
    """MRR@k: mean of 1/rank, 0 when missed or ranked below k."""
    return _mean(reciprocal_rank(r, k) for r in ranks)


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


# ================================================================================================
# Systems under evaluation
# ================================================================================================


@dataclass(frozen=True)
class RankedChunk:
    card: str
    line: int
    end_line: int


@dataclass(frozen=True)
class CitedQuote:
    card: str
    source: str
    quote: str
    line: int


@dataclass
class Outcome:
    answer: str = ""
    abstained: bool = False
    citations: list[CitedQuote] = field(default_factory=list)
    latency_ms: float | None = None
    error: str | None = None


class System(Protocol):
    name: str

    def search(self, question: str, k: int) -> list[RankedChunk]: ...

    def ask(self, question: str) -> Outcome: ...


class ProjectSystem:
    """The project: retrieval via assistant.searcher, answers via assistant.ask."""

    name = "project"

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant

    def search(self, question: str, k: int) -> list[RankedChunk]:
        return [RankedChunk(h.chunk.card, h.chunk.line, h.chunk.end_line) for h in self.assistant.searcher.search(question, k=k)]

    def ask(self, question: str) -> Outcome:
        started = time.perf_counter()
        try:
            ans = self.assistant.ask(question)
        except Exception as exc:  # the answerer may be unfinished or fail on one question: record it
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:300], latency_ms=(time.perf_counter() - started) * 1000)
        latency = getattr(ans, "latency_ms", None) or (time.perf_counter() - started) * 1000
        cites = [CitedQuote(c.card, c.source, c.quote, int(c.line or 0)) for c in ans.citations]
        return Outcome(answer=ans.answer or "", abstained=bool(ans.abstained), citations=cites, latency_ms=latency)


class BaselineSystem:
    """A qa.baselines baseline: it never abstains unless it finds nothing; it answers with its top chunk."""

    def __init__(self, name: str, baseline: Any) -> None:
        self.name = name
        self.baseline = baseline

    def search(self, question: str, k: int) -> list[RankedChunk]:
        return [RankedChunk(h.card, h.line, h.end_line) for h in self.baseline.search(question, k)]

    def ask(self, question: str) -> Outcome:
        started = time.perf_counter()
        text, citations = self.baseline.answer(question)
        latency = (time.perf_counter() - started) * 1000
        cites = [CitedQuote(c.card, c.source, c.quote, int(c.line)) for c in citations]
        return Outcome(answer=text, abstained=not text, citations=cites, latency_ms=latency)


# ================================================================================================
# Per-question evaluation
# ================================================================================================


class Corpus:
    """Card id → file text (as the gold set reads it), from the corpus folder, for evidence and citations."""

    def __init__(self, corpus_dir: Path, root: Path) -> None:
        self.root = root
        self.texts: dict[str, str] = {}
        self._by_path: dict[str, str | None] = {}
        for path in sorted(Path(corpus_dir).iterdir()):
            if path.is_file() and path.suffix.lower() in (".txt", ".md", ".tsv", ".html", ".htm"):
                try:
                    self.texts[path.stem] = read_corpus_text(path)
                except (OSError, UnicodeDecodeError):
                    log.warning("cannot read %s as UTF-8; evidence in it will not be located", path)

    def file_text(self, source: str) -> str | None:
        """The text of a cited file (source relative to root, or absolute); None when unreadable."""
        if source not in self._by_path:
            path = Path(source)
            path = path if path.is_absolute() else self.root / path
            try:
                self._by_path[source] = read_corpus_text(path)
            except (OSError, UnicodeDecodeError):
                self._by_path[source] = None
        return self._by_path[source]


def evaluate_question(
    item: GoldItem,
    system: System,
    corpus: Corpus,
    spans: Sequence[Span],
    k: int = K,
) -> dict[str, Any]:
    """One gold question through one system → the per-question row written to <system>.jsonl."""
    row: dict[str, Any] = {
        "id": item.id,
        "question": item.question,
        "type": item.type,
        "cards": list(item.cards),
        "gold_answers": list(item.answers),
    }
    # retrieval (answerable questions only)
    if item.answerable:
        started = time.perf_counter()
        try:
            hits = system.search(item.question, k)
            row["search_error"] = None
        except Exception as exc:
            hits = []
            row["search_error"] = f"{type(exc).__name__}: {exc}"[:300]
        row["search_ms"] = round((time.perf_counter() - started) * 1000, 2)
        row["card_rank"] = card_rank(hits, item.cards, k)
        row["section_rank"] = section_rank(hits, spans, k)
        row["evidence_spans"] = [[s.card, s.line, s.end_line] for s in spans]
        row["top_hits"] = [[h.card, h.line, h.end_line] for h in hits[:3]]
    else:
        row["card_rank"] = row["section_rank"] = None
    # answer
    out = system.ask(item.question)
    row["answer"] = out.answer
    row["abstained"] = out.abstained
    row["error"] = out.error
    row["latency_ms"] = round(out.latency_ms, 2) if out.latency_ms is not None else None
    if out.error is not None:
        row.update(correct=False, context_dump=False, citations=[], citations_valid=None, citation_supported=None)
        return row
    row["correct"] = answer_correct(out.answer, item.answers, out.abstained, item.type)
    row["context_dump"] = (
        item.answerable and not out.abstained and is_context_dump(out.answer, item.answers)
    )
    row["correct_ignoring_dump_rule"] = (
        (not out.abstained and all(contains_gold(out.answer, g) for g in item.answers))
        if item.answerable
        else row["correct"]
    )
    cites = []
    for c in out.citations:
        valid = citation_valid(c.quote, corpus.file_text(c.source))
        supports = item.answerable and citation_supports(c.card, c.quote, c.line, item.evidence, spans)
        cites.append({"card": c.card, "source": c.source, "line": c.line, "quote": c.quote[:300],
                      "valid": valid, "supports": supports})
    row["citations"] = cites
    row["citations_valid"] = all(c["valid"] for c in cites) if cites else None
    row["citation_supported"] = (
        any(c["supports"] for c in cites) if item.answerable and not out.abstained else None
    )
    return row


def evaluate_system(
    items: Sequence[GoldItem],
    system: System,
    corpus: Corpus,
    spans_of: Mapping[str, Sequence[Span]],
    k: int = K,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for n, item in enumerate(items, 1):
        rows.append(evaluate_question(item, system, corpus, spans_of[item.id], k))
        if progress:
            progress(system.name, n, len(items))
    return rows


# ================================================================================================
# Aggregation
# ================================================================================================


def retrieval_summary(card_ranks: Sequence[int | None], sec_ranks: Sequence[int | None]) -> dict[str, float | None]:
    """hit@1/5/10 and MRR@10 at card and section level, as the report and the benchmark print them."""
    out: dict[str, float | None] = {}
    for level, ranks in (("card", card_ranks), ("section", sec_ranks)):
        for k in HIT_KS:
            out[f"{level}_hit@{k}"] = hit_rate(ranks, k)
        out[f"{level}_mrr"] = mean_reciprocal_rank(ranks, K)
    return out


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate per-question rows of one system into the report's metrics (None: not applicable)."""
    answerable = [r for r in rows if r["type"] != UNANSWERABLE]
    card_ranks = [r["card_rank"] for r in answerable]
    sec_ranks = [r["section_rank"] for r in answerable]
    answered = [r for r in rows if r.get("error") is None]
    types = [r["type"] for r in answered]
    abst = [bool(r["abstained"]) for r in answered]
    all_cites = [c for r in answered for c in r.get("citations", [])]
    supported = [r["citation_supported"] for r in answered if r.get("citation_supported") is not None]
    latencies = [r["latency_ms"] for r in answered if r.get("latency_ms") is not None]
    out: dict[str, Any] = {
        "questions": len(rows),
        "answerable": len(answerable),
        "errors": sum(1 for r in rows if r.get("error") is not None),
    }
    out.update(retrieval_summary(card_ranks, sec_ranks))
    out["answer_accuracy"] = _mean(r["correct"] for r in rows) if answered else None
    out["answerable_accuracy"] = _mean(r["correct"] for r in answerable) if answered else None
    out["abstention_accuracy"] = abstention_accuracy(types, abst)
    out["false_abstention_rate"] = false_abstention_rate(types, abst)
    out["context_dumps"] = sum(1 for r in answered if r.get("context_dump"))
    out["citation_validity"] = _mean(c["valid"] for c in all_cites)
    out["citations"] = len(all_cites)
    out["citation_support"] = _mean(supported)
    lat = latency_summary(latencies)
    out["latency_p50_ms"] = lat["p50"]
    out["latency_p95_ms"] = lat["p95"]
    return out


def group_rows(rows: Sequence[Mapping[str, Any]], by: str) -> dict[str, list[Mapping[str, Any]]]:
    """Rows by "type", or by "card" (a question counts under each of its cards; none → "(no card)")."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        keys = [r["type"]] if by == "type" else (list(r["cards"]) or ["(no card)"])
        for key in keys:
            groups.setdefault(key, []).append(r)
    if by == "type":
        return {t: groups[t] for t in [*TYPES, *sorted(set(groups) - set(TYPES))] if t in groups}
    return dict(sorted(groups.items()))


# ================================================================================================
# Failure causes
# ================================================================================================


def parse_gap(item: GoldItem, spans: Sequence[Span], chunks_by_card: Mapping[str, Sequence[Any]]) -> bool:
    """Whether the project's index lost what the gold needs: no chunk of a gold card covers an evidence
    line, or a gold answer string (not a yes/no word) is in no chunk text of the gold cards."""
    if not item.answerable:
        return False
    covered = any(
        overlaps(c.line, c.end_line, s.line, s.end_line) for s in spans for c in chunks_by_card.get(s.card, ())
    )
    if spans and not covered:
        return True
    texts = normalize_for_match("\n".join(c.text for card in item.cards for c in chunks_by_card.get(card, ())))
    golds = [g for g in item.answers if normalize_for_match(g) not in POSITIVE | NEGATIVE]
    return item.type != "cross" and any(normalize_for_match(g) not in texts for g in golds)


def failure_cause(row: Mapping[str, Any], parse_lost: bool = False) -> str:
    """A guess at why a question failed: error, abstention, parse, retrieval or answer composition."""
    if row.get("error"):
        return "error (ask raised)"
    if row["type"] == UNANSWERABLE:
        return "abstention (answered an unanswerable question)" if not row["abstained"] else "-"
    if parse_lost:
        return "parse (evidence or answer not in any chunk)"
    if row.get("section_rank") is None:
        return "retrieval (evidence not in top 10)"
    if row["abstained"]:
        return "abstention (abstained on an answerable question)"
    if row.get("context_dump"):
        return "answer composition (context dump)"
    return "answer composition"


def worst_questions(rows: Sequence[Mapping[str, Any]], n: int = 15) -> list[Mapping[str, Any]]:
    """The n worst rows: wrong first, then retrieval missed, then unsupported citations, by rank."""

    def badness(r: Mapping[str, Any]) -> tuple:
        sec = r.get("section_rank")
        return (
            bool(r.get("correct")),
            sec is not None,
            r.get("card_rank") is not None,
            bool(r.get("citation_supported")),
            -(sec or 99),
            r["id"],
        )

    return [r for r in sorted(rows, key=badness) if not r.get("correct")][:n]


# ================================================================================================
# The runner
# ================================================================================================

SYSTEM_FILES = {"project": "project.jsonl", "FixedBM25": "baseline_bm25.jsonl", "LangChainRecipe": "baseline_langchain.jsonl"}


def build_baselines(assistant: Any) -> list[BaselineSystem]:
    """Both baselines over the assistant's corpus folder, the LangChain one with the assistant's embedder."""
    from qa.baselines import FixedBM25, LangChainRecipe, corpus_files

    settings = assistant.settings
    files = corpus_files(settings.corpus_dir, settings.root)
    bm25 = FixedBM25(settings.corpus_dir, settings.root, files=files)
    recipe = LangChainRecipe(settings.corpus_dir, assistant.index.embedder, settings.root, files=files)
    log.info("baselines built: FixedBM25 %d chunks %.1fs, LangChainRecipe %d chunks %.1fs",
             len(bm25), bm25.build_seconds, len(recipe), recipe.build_seconds)
    return [BaselineSystem("FixedBM25", bm25), BaselineSystem("LangChainRecipe", recipe)]


def run_evaluation(
    assistant: Any,
    gold_path: Path | str,
    out_dir: Path | str,
    baselines: bool = True,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate the project (and the baselines) on the gold set; write JSONL, report.md and charts.

    Returns {"systems": {name: summary}, "by_type": {name: {type: summary}}, "by_card": {...},
    "files": [written paths], "notes": [...]}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = assistant.settings
    items = load_gold(gold_path)
    if limit:
        items = items[:limit]
    corpus = Corpus(settings.corpus_dir, settings.root)
    spans_of = {it.id: find_evidence(it.evidence, corpus.texts, it.cards) for it in items}
    notes = [
        f"{it.id}: evidence found {len(spans_of[it.id])} times in {list(it.cards)}; any occurrence counts"
        for it in items
        if it.answerable and len(spans_of[it.id]) > 1
    ]
    notes += [f"{it.id}: evidence not found in its cards" for it in items if it.answerable and not spans_of[it.id]]

    systems: list[Any] = [ProjectSystem(assistant)]
    build_s: dict[str, float] = {}
    if baselines:
        started = time.perf_counter()
        systems += build_baselines(assistant)
        build_s["baselines"] = time.perf_counter() - started
    rows_of: dict[str, list[dict[str, Any]]] = {}
    for system in systems:
        rows_of[system.name] = evaluate_system(items, system, corpus, spans_of, K, progress)

    # failure causes for the project
    chunks_by_card: dict[str, list[Any]] = {}
    for c in getattr(assistant.index, "chunks", []):
        chunks_by_card.setdefault(c.card, []).append(c)
    by_id = {it.id: it for it in items}
    for row in rows_of["project"]:
        lost = parse_gap(by_id[row["id"]], spans_of[row["id"]], chunks_by_card) if chunks_by_card else False
        row["parse_gap"] = lost
        row["cause"] = "-" if row["correct"] else failure_cause(row, lost)

    files: list[Path] = []
    for name, rows in rows_of.items():
        path = out / SYSTEM_FILES.get(name, f"{name}.jsonl")
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        files.append(path)

    result: dict[str, Any] = {
        "systems": {name: summarize(rows) for name, rows in rows_of.items()},
        "by_type": {name: {g: summarize(rs) for g, rs in group_rows(rows, "type").items()} for name, rows in rows_of.items()},
        "by_card": {name: {g: summarize(rs) for g, rs in group_rows(rows, "card").items()} for name, rows in rows_of.items()},
        "worst": worst_questions(rows_of["project"]),
        "causes": dict(Counter(r["cause"] for r in rows_of["project"] if r["cause"] != "-").most_common()),
        "notes": notes,
        "gold": str(gold_path),
        "questions": len(items),
    }
    errors = [r["error"] for r in rows_of["project"] if r.get("error")]
    if errors:
        result["notes"].insert(0, f"project: assistant.ask raised on {len(errors)} of {len(items)} questions, first: {errors[0]}")
    files += write_charts(result, rows_of, out)
    report = out / "report.md"
    report.write_text(render_report(result), encoding="utf-8")
    files.append(report)
    (out / "summary.json").write_text(
        json.dumps({k: v for k, v in result.items() if k != "worst"}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    files.append(out / "summary.json")
    result["files"] = [str(p) for p in files]
    return result


# ================================================================================================
# Report
# ================================================================================================

MAIN_ROWS: list[tuple[str, str]] = [
    ("card_hit@1", "card hit@1"),
    ("card_hit@5", "card hit@5"),
    ("card_hit@10", "card hit@10"),
    ("card_mrr", "card MRR@10"),
    ("section_hit@1", "section hit@1"),
    ("section_hit@5", "section hit@5"),
    ("section_hit@10", "section hit@10"),
    ("section_mrr", "section MRR@10"),
    ("answer_accuracy", "answer accuracy (all)"),
    ("answerable_accuracy", "answer accuracy (answerable)"),
    ("abstention_accuracy", "abstention accuracy (unanswerable)"),
    ("false_abstention_rate", "false abstentions (answerable)"),
    ("context_dumps", "answers rejected as context dumps"),
    ("citation_validity", "citation validity (verbatim)"),
    ("citation_support", "citation support (evidence)"),
    ("latency_p50_ms", "answer latency p50 (ms)"),
    ("latency_p95_ms", "answer latency p95 (ms)"),
    ("errors", "errors"),
]
_COUNTS = {"context_dumps", "errors", "questions", "answerable", "citations"}


def fmt(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in _COUNTS:
        return str(int(value))
    if key.endswith("_ms"):
        return f"{value:,.1f}"
    return f"{value:.3f}"


def main_table(result: Mapping[str, Any]) -> str:
    names = list(result["systems"])
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in MAIN_ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt(key, result["systems"][n].get(key)) for n in names) + " |")
    return "\n".join(lines)


def _group_table(groups: Mapping[str, Mapping[str, Mapping[str, Any]]], keys: Sequence[tuple[str, str]]) -> str:
    names = list(groups)
    labels = list(dict.fromkeys(g for n in names for g in groups[n]))
    head = ["group", "n"] + [f"{label} ({n})" for key, label in keys for n in names]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(head) - 2)]
    for g in labels:
        first = groups[names[0]].get(g, {})
        cells = [g, str(first.get("questions", 0))]
        for key, _ in keys:
            for n in names:
                cells.append(fmt(key, groups[n].get(g, {}).get(key)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_SHORT = {"project": "P", "FixedBM25": "BM25", "LangChainRecipe": "LC"}


def render_report(result: Mapping[str, Any]) -> str:
    names = list(result["systems"])
    legend = ", ".join(f"{_SHORT.get(n, n)} = {n}" for n in names)
    short_by_type = {_SHORT.get(n, n): v for n, v in result["by_type"].items()}
    short_by_card = {_SHORT.get(n, n): v for n, v in result["by_card"].items()}
    group_keys = [("answer_accuracy", "acc"), ("section_hit@10", "sec@10"), ("card_hit@10", "card@10")]
    parts = [
        "# Evaluation report",
        "",
        f"Gold set: `{result['gold']}` — {result['questions']} questions. Retrieval metrics at k={K} over answerable "
        "questions; a card hit is a top-k chunk from a gold card, a section hit a top-k chunk of a gold card whose "
        "line range overlaps the evidence's lines. Answer correctness: every gold string present after NFKC / lower-case "
        "/ whitespace removal, and the answer not a context dump (longer than max(400, 40·n+200) normalised characters, "
        "or than max(200, 3·len(gold)) for a single gold string); yes/no golds match by the answer's first はい/いいえ/yes/no; "
        "unanswerable questions are right iff the system abstained. "
        "Baselines answer with their top chunk.",
        "",
        "## Main table",
        "",
        main_table(result),
        "",
        "![accuracy by type](accuracy_by_type.png)  ![latency](latency.png)",
        "",
        f"## By type ({legend})",
        "",
        _group_table(short_by_type, group_keys),
        "",
        f"## By card ({legend}; a question counts under each of its cards)",
        "",
        _group_table(short_by_card, group_keys),
        "",
        "## The 15 worst questions (project)",
        "",
        "| id | type | question | gold | answer | card rank | section rank | cause |",
        "|---|---|---|---|---|---:|---:|---|",
    ]
    for r in result["worst"]:
        answer = "(abstained)" if r.get("abstained") else (r.get("error") or r.get("answer") or "")
        parts.append(
            "| {id} | {type} | {q} | {gold} | {ans} | {cr} | {sr} | {cause} |".format(
                id=r["id"], type=r["type"], q=_cell(r["question"], 60), gold=_cell(" / ".join(r["gold_answers"]), 50),
                ans=_cell(answer, 80), cr=r.get("card_rank") or "-", sr=r.get("section_rank") or "-",
                cause=r.get("cause", "?"),
            )
        )
    if result.get("causes"):
        parts += ["", "Failure causes over all wrong project answers: "
                  + ", ".join(f"{c}: {n}" for c, n in result["causes"].items())]
    if result.get("notes"):
        parts += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(parts) + "\n"


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def write_charts(result: Mapping[str, Any], rows_of: Mapping[str, Sequence[Mapping[str, Any]]], out: Path) -> list[Path]:
    """accuracy_by_type.png (grouped bars per system) and latency.png (histogram + box plot)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        log.warning("matplotlib missing: no charts")
        return []
    import numpy as np

    names = list(result["by_type"])
    types = [t for t in TYPES if any(t in result["by_type"][n] for n in names)]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(types))
    for i, n in enumerate(names):
        vals = [result["by_type"][n].get(t, {}).get("answer_accuracy") or 0.0 for t in types]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=n)
    ax.set_xticks(x, types)
    ax.set_ylim(0, 1)
    ax.set_ylabel("answer accuracy")
    ax.set_title("Answer accuracy by question type")
    ax.legend()
    fig.tight_layout()
    acc_path = out / "accuracy_by_type.png"
    fig.savefig(acc_path, dpi=110)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = {
        n: [r["latency_ms"] for r in rows if r.get("latency_ms") is not None and not r.get("error")]
        for n, rows in rows_of.items()
    }
    series = {n: v for n, v in series.items() if v}
    positive = [v for vals in series.values() for v in vals if v > 0]
    if positive:
        bins = np.logspace(np.log10(min(positive)), np.log10(max(positive)) + 1e-9, 40)
        for n, vals in series.items():
            left.hist([v for v in vals if v > 0], bins=bins, alpha=0.55, label=n)
        left.set_xscale("log")
    left.set_xlabel("answer latency (ms, log)")
    left.set_ylabel("questions")
    left.set_title("Latency histogram")
    if series:
        left.legend()
        right.boxplot(list(series.values()), tick_labels=list(series)) if _mpl_has_tick_labels() else right.boxplot(
            list(series.values()), labels=list(series)
        )
        right.set_yscale("log")
    right.set_ylabel("ms (log)")
    right.set_title("Latency per system")
    fig.tight_layout()
    lat_path = out / "latency.png"
    fig.savefig(lat_path, dpi=110)
    plt.close(fig)
    return [acc_path, lat_path]


def _mpl_has_tick_labels() -> bool:
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return (major, minor) >= (3, 9)


# ================================================================================================
# `qa eval`
# ================================================================================================


class RetrievalOnlyAssistant:
    """Stands in for qa.api.Assistant while the answer chain cannot be built: retrieval works, ask raises."""

    def __init__(self, settings: Any, index: Any, why: str) -> None:
        from qa.retrieval import HybridSearcher

        self.settings = settings
        self.index = index
        self.searcher = HybridSearcher(index)
        self.why = why

    def ask(self, question: str, cards: list[str] | None = None) -> Any:
        raise NotImplementedError(f"the answerer is unavailable ({self.why})")


def load_assistant(settings: Any) -> Any:
    """Assistant.load(settings=…, build_if_needed=True); if the answer chain cannot be built, a
    retrieval-only stand-in so retrieval metrics and baselines still run."""
    from qa.api import Assistant

    try:
        return Assistant.load(settings=settings, build_if_needed=True)
    except (ImportError, NotImplementedError, AttributeError) as exc:
        from qa.index import load_index

        why = f"{type(exc).__name__}: {exc}"
        log.warning("the answerer cannot be loaded (%s); evaluating retrieval and baselines only", why)
        return RetrievalOnlyAssistant(settings, load_index(settings.index_dir, settings.embedding_model), why)


def _settings_from(args: argparse.Namespace) -> Any:
    from qa.config import Settings

    return Settings.load(
        root=Path(args.root) if getattr(args, "root", None) else None,
        corpus_dir=getattr(args, "corpora", None),
        index_dir=getattr(args, "index", None),
        embedding_model=getattr(args, "embedding_model", None),
    )


def cmd_eval(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    gold = Path(args.gold) if args.gold else settings.root / "eval" / "gold.jsonl"
    out = Path(args.out) if args.out else settings.root / "eval" / "results"
    if not gold.is_file():
        from qa.errors import QAError

        raise QAError(f"no gold set at {gold}: pass --gold PATH")
    assistant = load_assistant(settings)
    started = time.perf_counter()
    progress = None
    if sys.stderr.isatty():
        def progress(name: str, done: int, total: int) -> None:
            sys.stderr.write(f"\r{name}: {done}/{total}  ")
            if done == total:
                sys.stderr.write("\n")

    result = run_evaluation(assistant, gold, out, baselines=not args.no_baselines, limit=args.limit, progress=progress)
    sys.stdout.write(main_table(result) + "\n\n")
    for note in result["notes"][:1]:
        if note.startswith("project:"):
            sys.stdout.write(note + "\n")
    sys.stdout.write(f"{result['questions']} questions in {time.perf_counter() - started:.0f} s; report: {out / 'report.md'}\n")
    return 0


def add_eval_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `qa eval [--gold eval/gold.jsonl] [--out eval/results/] [--no-baselines] [--limit N]`."""
    p = subparsers.add_parser("eval", help="evaluate answers and retrieval on the gold set, next to two baselines")
    p.add_argument("--gold", help="gold question file (default: <root>/eval/gold.jsonl)")
    p.add_argument("--out", help="folder for the per-question JSONL, report.md and charts (default: <root>/eval/results/)")
    p.add_argument("--no-baselines", action="store_true", help="evaluate the project only")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N gold questions")
    p.set_defaults(func=cmd_eval)
    return p


__all__ = [
    "GoldItem",
    "Span",
    "abstention_accuracy",
    "add_eval_command",
    "answer_correct",
    "card_rank",
    "citation_supports",
    "citation_valid",
    "contains_gold",
    "false_abstention_rate",
    "find_evidence",
    "hit_rate",
    "is_context_dump",
    "latency_summary",
    "load_gold",
    "mean_reciprocal_rank",
    "normalize_for_match",
    "percentile",
    "run_evaluation",
    "section_rank",
    "summarize",
]
