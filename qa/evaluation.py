"""Evaluation against the gold set (eval/gold.jsonl): the systems, per-question outcomes, aggregation,
failure causes, the runner and `qa eval`.

The metrics and the gold set are in `qa.eval_metrics`, the report and charts in `qa.eval_report`.
`run_evaluation(assistant, gold_path, out_dir)` runs the project and the two baselines of
`qa.baselines` over the same questions and writes per-question JSONL, report.md and PNG charts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qa.eval_metrics import (
    GoldItem,
    HIT_KS,
    K,
    NEGATIVE,
    POSITIVE,
    Span,
    TYPES,
    UNANSWERABLE,
    mean_or_none,
    abstention_accuracy,
    answer_correct,
    card_rank,
    citation_supports,
    citation_valid,
    contains_gold,
    false_abstention_rate,
    find_evidence,
    hit_rate,
    is_context_dump,
    latency_summary,
    load_gold,
    mean_reciprocal_rank,
    normalize_for_match,
    overlaps,
    percentile,
    read_corpus_text,
    section_rank,
)
from qa.eval_report import main_table, render_report, write_charts

log = logging.getLogger(__name__)

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
    out["answer_accuracy"] = mean_or_none(r["correct"] for r in rows) if answered else None
    out["answerable_accuracy"] = mean_or_none(r["correct"] for r in answerable) if answered else None
    out["abstention_accuracy"] = abstention_accuracy(types, abst)
    out["false_abstention_rate"] = false_abstention_rate(types, abst)
    out["context_dumps"] = sum(1 for r in answered if r.get("context_dump"))
    out["citation_validity"] = mean_or_none(c["valid"] for c in all_cites)
    out["citations"] = len(all_cites)
    out["citation_support"] = mean_or_none(supported)
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
        assistant: Any = Assistant.load(settings=settings, build_if_needed=True)
    except (ImportError, NotImplementedError, AttributeError) as exc:
        from qa.index import load_index

        why = f"{type(exc).__name__}: {exc}"
        log.warning("the answerer cannot be loaded (%s); evaluating retrieval and baselines only", why)
        assistant = RetrievalOnlyAssistant(settings, load_index(settings.index_dir, settings.embedding_model), why)
    assistant.searcher.warm_up()  # hundreds of questions follow, timed
    return assistant


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
