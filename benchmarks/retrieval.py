#!/usr/bin/env python3
"""Retrieval benchmark: the project's hybrid retriever next to two baselines built in the same run.

For each retriever it reports build time, chunks, index bytes on disk, warm query latency p50/p95 over
the gold questions, and card- and section-level hit@1/5/10 and MRR@10 on the answerable gold
questions (see qa.evaluation for the definitions). Everything is built from scratch into a temporary
folder; the project's own index/ is not touched.

    python benchmarks/retrieval.py [--gold eval/gold.jsonl] [--corpora corpora] [--out benchmarks/results/retrieval.md]

The baselines (qa.baselines):
  FixedBM25        fixed 500-character chunks, Sudachi tokens, BM25 (bm25s), no card scoping
  LangChainRecipe  RecursiveCharacterTextSplitter(500, 50) + the project's embedder + FAISS IndexFlatIP
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.evaluation import (  # noqa: E402
    HIT_KS,
    K,
    RankedChunk,
    card_rank,
    find_evidence,
    load_gold,
    percentile,
    read_corpus_text,
    retrieval_summary,
    section_rank,
)

WARMUP = 10


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(
    name: str,
    search: Callable[[str, int], list[RankedChunk]],
    items: Sequence[Any],
    spans_of: dict[str, Any],
) -> dict[str, Any]:
    """Warm up, then time every gold question once and score the answerable ones."""
    for item in items[:WARMUP]:
        search(item.question, K)
    latencies: list[float] = []
    card_ranks: list[int | None] = []
    sec_ranks: list[int | None] = []
    for item in items:
        started = time.perf_counter()
        hits = search(item.question, K)
        latencies.append((time.perf_counter() - started) * 1000)
        if item.answerable:
            card_ranks.append(card_rank(hits, item.cards, K))
            sec_ranks.append(section_rank(hits, spans_of[item.id], K))
    out: dict[str, Any] = {
        "name": name,
        "queries": len(items),
        "scored": len(card_ranks),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
    }
    out.update(retrieval_summary(card_ranks, sec_ranks))
    return out


ROWS = [
    ("build_s", "build (s)", "{:.1f}"),
    ("chunks", "chunks", "{:,}"),
    ("bytes", "index on disk (MB)", None),
    ("p50_ms", "warm query p50 (ms)", "{:.1f}"),
    ("p95_ms", "warm query p95 (ms)", "{:.1f}"),
    *[(f"card_hit@{k}", f"card hit@{k}", "{:.3f}") for k in HIT_KS],
    ("card_mrr", "card MRR@10", "{:.3f}"),
    *[(f"section_hit@{k}", f"section hit@{k}", "{:.3f}") for k in HIT_KS],
    ("section_mrr", "section MRR@10", "{:.3f}"),
]


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = ["| | " + " | ".join(r["name"] for r in results) + " |", "|---|" + "---:|" * len(results)]
    for key, label, form in ROWS:
        cells = []
        for r in results:
            v = r.get(key)
            if v is None:
                cells.append("n/a")
            elif key == "bytes":
                extra = f" ({r['bytes_note']})" if r.get("bytes_note") else ""
                cells.append(f"{v / 1e6:.2f}{extra}")
            else:
                cells.append(form.format(v))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--corpora", type=Path, default=ROOT / "corpora")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "retrieval.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)

    import bm25s  # noqa: F401  (it sets its logger to DEBUG on import; quiet it before building)

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    from qa.baselines import FixedBM25, LangChainRecipe, corpus_files
    from qa.embeddings import load_embedder
    from qa.index import build_index, load_index
    from qa.retrieval import HybridSearcher

    items = load_gold(args.gold)
    texts = {p.stem: read_corpus_text(p) for p in sorted(args.corpora.glob("*.txt"))}
    spans_of = {it.id: find_evidence(it.evidence, texts, it.cards) for it in items}
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    results: list[dict[str, Any]] = []
    try:
        # The built-in embedding model is made once from the ja_ginza wheel; that is set-up, not index build.
        started = time.perf_counter()
        load_embedder(None, cache_dir=tmp / "models")
        model_prep = time.perf_counter() - started
        print(f"embedding model prepared in {model_prep:.1f} s", file=sys.stderr)

        started = time.perf_counter()
        report = build_index(args.corpora, tmp / "index", root=ROOT, model_cache=tmp / "models")
        project_build = time.perf_counter() - started
        started = time.perf_counter()
        index = load_index(tmp / "index", model_cache=tmp / "models")
        load_s = time.perf_counter() - started
        searcher = HybridSearcher(index)
        gen = index.folder
        model_bytes = folder_bytes(gen / "model") if (gen / "model").is_dir() else 0
        print(f"project index: {report.chunks} chunks in {project_build:.1f} s (load {load_s:.1f} s)", file=sys.stderr)

        def project_search(q: str, k: int) -> list[RankedChunk]:
            return [RankedChunk(h.chunk.card, h.chunk.line, h.chunk.end_line) for h in searcher.search(q, k=k)]

        started = time.perf_counter()
        files = corpus_files(args.corpora, ROOT)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        bm25 = FixedBM25(args.corpora, ROOT, files=files)
        bm25_build = time.perf_counter() - started + read_s
        started = time.perf_counter()
        recipe = LangChainRecipe(args.corpora, index.embedder, ROOT, files=files)
        recipe_build = time.perf_counter() - started + read_s
        bm25_bytes = bm25.save(tmp / "bm25")
        recipe_bytes = recipe.save(tmp / "langchain")
        print(f"baselines: FixedBM25 {len(bm25)} chunks {bm25_build:.1f} s, LangChainRecipe {len(recipe)} chunks "
              f"{recipe_build:.1f} s", file=sys.stderr)

        def baseline_search(b: Any) -> Callable[[str, int], list[RankedChunk]]:
            return lambda q, k: [RankedChunk(h.card, h.line, h.end_line) for h in b.search(q, k)]

        systems = [
            ("project (hybrid)", project_search, project_build, report.chunks, report.bytes,
             f"{(report.bytes - model_bytes) / 1e6:.2f} without the {model_bytes / 1e6:.1f} MB fitted model"),
            ("FixedBM25", baseline_search(bm25), bm25_build, len(bm25), bm25_bytes, ""),
            ("LangChainRecipe", baseline_search(recipe), recipe_build, len(recipe), recipe_bytes,
             "vectors only; shares the project's model"),
        ]
        for name, search, build_s, chunks, nbytes, note in systems:
            r = measure(name, search, items, spans_of)
            r.update(build_s=build_s, chunks=chunks, bytes=nbytes, bytes_note=note)
            results.append(r)
            print(f"measured {name}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    answerable = sum(1 for it in items if it.answerable)
    md = table(results)
    header = (
        f"# Retrieval benchmark\n\n"
        f"{time.strftime('%Y-%m-%d %H:%M')} · {platform.python_version()} · {os.cpu_count()} CPUs · "
        f"{len(texts)} reports · {len(items)} gold questions (latency over all, hits over the {answerable} "
        f"answerable; k={K}).\n\n"
        "Card hit: a top-k chunk from a gold card. Section hit: a top-k chunk of a gold card whose line range "
        "overlaps the gold evidence's lines (any occurrence). Build times exclude making the built-in embedding "
        f"model from the ja_ginza wheel ({model_prep:.1f} s, once per machine); the project's build includes "
        "parsing, chunking, Sudachi, IDF fitting, embedding, BM25, FAISS and writing; the baselines' include "
        f"reading the files ({read_s:.1f} s). Warm latency: one search per question after {WARMUP} warm-up queries.\n\n"
    )
    text = header + md + "\n"
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
