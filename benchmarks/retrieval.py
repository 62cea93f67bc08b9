#!/usr/bin/env python3
"""Retrieval benchmark: every retriever variant side by side over the project's own index, in one run.

    python benchmarks/retrieval.py [--external ../shared/eval-external/gold.jsonl] [--gold eval/gold.jsonl]
                                   [--out benchmarks/results/retrieval.md]

1. Builds the index of corpora/ from scratch into a temporary folder with an empty embedding cache (the
   converted e5 model itself comes from the cache folder: converting it is set-up, timed separately), and
   prints the build time with its per-stage split; then times a no-change `qa index` as a user runs it (a
   new process) and checks that it wrote no generation.
2. On the answerable single-card questions of each gold file it scores, from the index's arrays (BM25 over
   the units' Sudachi tokens, e5 passage vectors, e5 query vectors):
     BM25 · e5 · RRF(k=60) · weighted fusion of min-max-normalised scores (several weights) · BM25 top-50
     re-ranked by e5 · e5 top-50 re-ranked by BM25 · e5 top-50 re-ranked by the fitted fusion ·
     the project's HybridSearcher in fused order, and with the learned ranker of qa/data/ranker.json (the default;
     fitted by `qa fit-ranker` on eval/gold.jsonl only).
   A hit is a retrieved unit of the question's card whose text contains the evidence (NFKC, whitespace
   removed) or whose lines overlap the evidence's lines in the report. evidence@1/5/10 and MRR@10 are printed
   for all, Japanese and English questions. Fusion weights are fitted on eval/gold.jsonl (the project's
   set) and reported on the external file, which is never used for fitting.
3. Warm query latency p50/p95 of retrieval alone (question → ranked units), for the HybridSearcher after its
   `warm_up` (as the app, `qa batch` and `qa eval` do: the question path traced and frozen, qa.query_graph)
   and for the plain fusion; then three question paths timed alternately, question by question, so that the
   machine's load falls on all alike: the default (the traced graph, one thread), the same model eager (the
   bf16 linears of qa.bf16, two threads: before), and the fp32 variant.

Written against the Index API (index.chunks and their .text/.search_text/.line/.end_line/.card), so it keeps
working when chunks become units.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import Report, gold_arguments, parse_gold_arguments  # noqa: E402

from qa.eval_metrics import find_evidence, holds_evidence, load_gold, percentile, read_corpus_text, squash  # noqa: E402

K = 10
CANDIDATES = 50
RRF_K = 60
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # weight of BM25 in the weighted fusion
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")


def is_english(question: str) -> bool:
    """English questions may quote Japanese terms (児童手当, 提供先): more Latin letters than Japanese characters."""
    return len(LATIN.findall(question)) > len(JAPANESE.findall(question))


@dataclass
class Question:
    id: str
    text: str
    card: str
    evidence: str
    spans: list[tuple[int, int]]
    english: bool


def questions_of(path: Path, texts: dict[str, str]) -> list[Question]:
    """The answerable single-card questions with evidence, and the evidence's line spans in the report."""
    out = []
    for item in load_gold(path):
        if not item.answerable or len(item.cards) != 1 or not item.evidence:
            continue
        card = item.cards[0]
        spans = [(s.line, s.end_line) for s in find_evidence(item.evidence, texts, [card])]
        out.append(Question(item.id, item.question, card, squash(item.evidence), spans, is_english(item.question)))
    return out


class Scorer:
    """Per-question score vectors over all units, from the index's arrays."""

    def __init__(self, index: Any) -> None:
        from qa.segment import Segmenter

        self.index = index
        self.segmenter = Segmenter()
        self.units = index.chunks
        self.squashed = [squash(u.text) for u in self.units]

    def bm25(self, question: str) -> np.ndarray:
        vocab = self.index.bm25.vocab_dict
        tokens = [t for t in self.segmenter.tokens(question) if t in vocab]
        if not tokens:
            return np.zeros(len(self.units))
        return np.asarray(self.index.bm25.get_scores(tokens), dtype=np.float64)

    def dense(self, question: str) -> np.ndarray:
        from qa.embeddings import encode_queries

        vector = encode_queries(self.index.embedder, [question])[0]
        return (self.index.embeddings @ vector).astype(np.float64)

    def hit(self, q: Question, i: int) -> bool:
        return holds_evidence(self.units[i], q.card, q.evidence, q.spans, self.squashed[i])


# -- the variants: (bm25 scores, dense scores) → ranking ----------------------------------------------------


def top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def rrf(b: np.ndarray, d: np.ndarray) -> np.ndarray:
    out = np.zeros(len(b))
    for s in (b, d):
        order = top(s, 200)
        out[order] += 1.0 / (RRF_K + 1 + np.arange(len(order)))
    return out


def weighted(w: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda b, d: w * minmax(b) + (1 - w) * minmax(d)


def rerank(first: int, then: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The top CANDIDATES of leg `first` (0 BM25, 1 e5), ordered by `then`; the rest below them."""

    def run(b: np.ndarray, d: np.ndarray) -> np.ndarray:
        cand = top((b, d)[first], CANDIDATES)
        out = np.full(len(b), -np.inf)
        s = then(b, d)
        out[cand] = 1e6 + s[cand]
        return out

    return run


def metrics(ranked: Sequence[Sequence[bool]]) -> dict[str, float]:
    n = max(1, len(ranked))
    first = [next((r for r, h in enumerate(hits, 1) if h), None) for hits in ranked]
    out = {f"@{k}": sum(1 for f in first if f is not None and f <= k) / n for k in (1, 5, 10)}
    out["mrr"] = sum(1 / f for f in first if f is not None and f <= K) / n
    return out


def evaluate(scorer: Scorer, qs: list[Question], legs: dict[str, tuple[np.ndarray, np.ndarray]],
             variant: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict[str, dict[str, float]]:
    hits = []
    for q in qs:
        b, d = legs[q.id]
        hits.append([scorer.hit(q, int(i)) for i in top(variant(b, d), K)])
    groups = {"all": range(len(qs)), "ja": [i for i, q in enumerate(qs) if not q.english],
              "en": [i for i, q in enumerate(qs) if q.english]}
    return {g: metrics([hits[i] for i in idx]) for g, idx in groups.items()}


def evaluate_searcher(scorer: Scorer, searcher: Any, qs: list[Question]) -> tuple[dict[str, dict[str, float]], list[float]]:
    position = {u.id: i for i, u in enumerate(scorer.units)}
    hits, times = [], []
    for q in qs:
        start = time.perf_counter()
        found = searcher.search(q.text, k=K)
        times.append(time.perf_counter() - start)
        hits.append([scorer.hit(q, position[h.chunk.id]) for h in found])
    groups = {"all": range(len(qs)), "ja": [i for i, q in enumerate(qs) if not q.english],
              "en": [i for i, q in enumerate(qs) if q.english]}
    return {g: metrics([hits[i] for i in idx]) for g, idx in groups.items()}, times


def alternate_latency(searchers: dict[str, Any], texts: list[str]) -> dict[str, list[float]]:
    """Each question searched by every searcher in turn (the order rotated question by question), timed
    from an empty query cache, so that a burst of load on the machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in searchers}
    names = list(searchers)
    for n, text in enumerate(texts):
        for name in names[n % len(names):] + names[: n % len(names)]:
            searcher = searchers[name]
            searcher.forget_questions()
            start = time.perf_counter()
            searcher.search(text, k=K)
            times[name].append(time.perf_counter() - start)
    return times


def precision_path(model: Any) -> str:
    from qa.embeddings import bf16_matmuls, precision

    return "bf16 matmuls" if precision(model) == "bf16" and bf16_matmuls() else "fp32 (no bf16 matmuls here)"


# -- build timing ---------------------------------------------------------------------------------------------


def timed_build(tmp: Path, corpora: Path) -> tuple[Any, float, dict[str, Any]]:
    from qa.e5model import e5_model_id, read_stamp
    from qa.embeddings import default_cache_dir, load_embedder
    from qa.build import build_index

    setup = {}
    cache = default_cache_dir()
    start = time.perf_counter()
    fresh = read_stamp(cache / e5_model_id()) is None
    load_embedder(None, cache_dir=cache)  # converts once per machine (set-up, as `make setup` does)
    setup["model conversion (once per machine)" if fresh else "model load (conversion cached)"] = time.perf_counter() - start
    start = time.perf_counter()
    report = build_index(corpora, tmp / "index", root=ROOT, embedding_cache=tmp / "embeddings")
    total = time.perf_counter() - start
    return report, total, setup


def no_change_index(tmp: Path, corpora: Path) -> tuple[float, bool]:
    """`qa index` in a new process with nothing changed: seconds, and whether it left the generation alone."""
    index = tmp / "index"
    before = sorted(p.name for p in index.glob("gen-*")), (index / "CURRENT").read_text()
    code = ("import sys; from qa.cli import main; "
            f"sys.exit(main(['--corpora', {str(corpora)!r}, '--index', {str(index)!r}, 'index', '-q']))")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                   env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    after = sorted(p.name for p in index.glob("gen-*")), (index / "CURRENT").read_text()
    return seconds, before == after


# -- main -------------------------------------------------------------------------------------------------------


def table(rows: list[tuple[str, dict[str, dict[str, float]]]]) -> list[str]:
    out = ["| variant | ev@1 | ev@5 | ev@10 | MRR@10 | MRR ja | MRR en | @10 ja | @10 en |", "|---|---|---|---|---|---|---|---|---|"]
    for name, m in rows:
        a, ja, en = m["all"], m["ja"], m["en"]
        out.append(f"| {name} | {a['@1']:.3f} | {a['@5']:.3f} | {a['@10']:.3f} | {a['mrr']:.3f} | {ja['mrr']:.3f} | "
                   f"{en['mrr']:.3f} | {ja['@10']:.3f} | {en['@10']:.3f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    gold_arguments(parser, "retrieval.md")
    parser.add_argument("--keep", type=Path, help="copy the built index here (for further analysis)")
    parser.add_argument("--reuse", type=Path, help="score an index kept by --keep instead of building one")
    args = parse_gold_arguments(parser, argv)
    printed = Report()
    say = printed.say

    from qa.index import load_index
    from qa.retrieval import HybridSearcher

    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        if args.reuse:
            say(f"(scoring the index kept in {args.reuse}; no build timed)")
            index = load_index(args.reuse)
        else:
            report, total, setup = timed_build(tmp, args.corpora)
            say("## Build of corpora/ from scratch (empty embedding cache)")
            for name, secs in setup.items():
                say(f"- {name}: {secs:.1f} s (not part of the build)")
            split = ", ".join(f"{k} {v:.1f} s" for k, v in report.stage_seconds.items())
            say(f"- build: {total:.1f} s for {report.cards} reports, {report.chunks} units, {report.embedded_texts} "
                f"passages embedded; stages: {split}; load average {__import__('os').getloadavg()[0]:.1f} on "
                f"{__import__('os').cpu_count()} cores")
            seconds, untouched = no_change_index(tmp, args.corpora)
            say(f"- no-change `qa index` (new process, imports included): {seconds:.2f} s; "
                f"generation left alone: {untouched}")
            say("")
            index = load_index(tmp / "index")
        scorer = Scorer(index)
        searcher = HybridSearcher(index)
        start = time.perf_counter()
        searcher.warm_up()  # as the app, `qa batch` and `qa eval` do before their questions
        warm_seconds = time.perf_counter() - start
        fused_only = HybridSearcher(index, segmenter=searcher.segmenter, ranker=None)
        from qa.embeddings import default_cache_dir, load_embedder
        from qa.query_graph import graph_of

        exact = HybridSearcher(index, segmenter=searcher.segmenter,
                               query_embedder=load_embedder("e5-fp32", cache_dir=default_cache_dir()))
        eager = HybridSearcher(index, segmenter=searcher.segmenter,
                               query_embedder=load_embedder(None, cache_dir=default_cache_dir()))
        eager.field_vectors()
        texts = {p.stem: read_corpus_text(p) for p in sorted(args.corpora.iterdir()) if p.is_file()}
        sets = {"eval/gold.jsonl (fitting set)": questions_of(args.gold, texts),
                "external gold (held out)": questions_of(args.external, texts)}
        legs = {name: {q.id: (scorer.bm25(q.text), scorer.dense(q.text)) for q in qs} for name, qs in sets.items()}
        fit_name = next(iter(sets))
        fitted = max(WEIGHTS, key=lambda w: evaluate(scorer, sets[fit_name], legs[fit_name], weighted(w))["all"]["mrr"])
        variants: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [
            ("BM25", lambda b, d: b),
            ("e5 (query: / passage:)", lambda b, d: d),
            (f"RRF k={RRF_K}", rrf),
            *[(f"weighted w_bm25={w}" + (" (fitted)" if w == fitted else ""), weighted(w)) for w in WEIGHTS],
            (f"BM25 top-{CANDIDATES} re-ranked by e5", rerank(0, lambda b, d: d)),
            (f"e5 top-{CANDIDATES} re-ranked by BM25", rerank(1, lambda b, d: b)),
            (f"e5 top-{CANDIDATES} re-ranked by fusion w={fitted}", rerank(1, weighted(fitted))),
            (f"BM25 top-{CANDIDATES} re-ranked by fusion w={fitted}", rerank(0, weighted(fitted))),
        ]
        timings: list[float] = []
        for name, qs in sets.items():
            n_en = sum(q.english for q in qs)
            say(f"## {name}: {len(qs)} answerable single-card questions ({len(qs) - n_en} Japanese, {n_en} English)")
            rows = [(v, evaluate(scorer, qs, legs[name], fn)) for v, fn in variants]
            plain, _ = evaluate_searcher(scorer, fused_only, qs)
            rows.append(("HybridSearcher, fused order only (no learned ranker)", plain))
            hybrid, times = evaluate_searcher(scorer, searcher, qs)
            timings += times
            rows.append(("HybridSearcher + learned ranker (qa.retrieval, the default)", hybrid))
            rows.append(("  the same, question embedded eagerly (no traced graph)", evaluate_searcher(scorer, eager, qs)[0]))
            rows.append(("  the same, question embedded in fp32", evaluate_searcher(scorer, exact, qs)[0]))
            for row in table(rows):
                say(row)
            say("")
        say(f"Fusion weight fitted on {fit_name} by MRR@10 over {WEIGHTS}: w_bm25={fitted}; the external file is "
            "reported with that weight and never used for fitting.")

        fusion_times = []
        for q in sets[fit_name]:
            start = time.perf_counter()
            top(weighted(fitted)(scorer.bm25(q.text), scorer.dense(q.text)), K)
            fusion_times.append(time.perf_counter() - start)
        say(f"Warm query latency, retrieval alone: HybridSearcher p50 {1000 * percentile(timings, 50):.1f} ms, "
            f"p95 {1000 * percentile(timings, 95):.1f} ms ({len(timings)} questions); weighted fusion p50 "
            f"{1000 * percentile(fusion_times, 50):.1f} ms, p95 {1000 * percentile(fusion_times, 95):.1f} ms.")
        graph = graph_of(index.embedder)
        say(f"Warm-up (`HybridSearcher.warm_up`): {warm_seconds:.1f} s; question graph: "
            + (f"traced and checked in {graph.seconds:.1f} s" if graph else "not used (eager)") + ".")
        paired = alternate_latency({"default": searcher, "eager question (no graph)": eager, "fp32 question": exact},
                                   [q.text for q in sets[fit_name]])
        say("Warm query latency, the three question paths timed alternately: " + "; ".join(
            f"{name} p50 {1000 * percentile(t, 50):.1f} ms, p95 {1000 * percentile(t, 95):.1f} ms"
            for name, t in paired.items()) + f" ({len(sets[fit_name])} questions each; the default's path: "
            f"{precision_path(index.embedder)}" + (", traced graph" if graph else "") + ").")
        if args.keep and not args.reuse:
            shutil.copytree(tmp / "index", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    printed.write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
