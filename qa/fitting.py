"""Fit the retrieval and routing weights on one question set, report them on another, write them as data.

The split is stated in the output file: weights are chosen on the training set only (coordinate ascent over a
small grid per weight, answer accuracy as the objective, ties kept at the current value), then measured once on
the held-out set. `qa fit` runs it; the result is qa/data/weights.json, which retrieval and the reader read.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.eval_metrics import GoldItem, answer_correct, load_gold
from qa.retrieval import DEFAULT_WEIGHTS, WEIGHTS_PATH

# Candidate values per weight: wide enough to find the region, small enough to fit in minutes.
GRID: dict[str, tuple[float, ...]] = {
    "fusion": (0.0, 1.0),
    "field_route": (0.3, 0.4, 0.5, 0.6, 0.8),
    "field_dense": (0.0, 0.5, 1.0, 2.0),
    "field_dense_floor": (0.8, 0.85, 0.9),
    "w_bm25_share": (0.2, 0.3, 0.4, 0.5),
    "bonus_scale": (0.0, 0.05, 0.1, 0.2),
    "w_struct": (0.0, 0.75, 1.5),
    "change_weight": (0.1, 0.3, 0.6),
    "risk_weight": (0.4, 0.6, 0.8),
    "narrow_min": (2.0, 3.0, 5.0),
    "unexplained_idf": (3.0, 4.0, 99.0),
    "second_passage": (0.7, 0.85, 1.01),
    "passage_units": (1.0, 2.0, 3.0),
    "abstain_below_z": (0.0, 1.0, 1.5, 2.0, 2.5),
    "passage_pool": (3.0, 6.0, 10.0),
    "p_unit": (0.5, 1.0, 2.0),
    "p_overlap": (0.5, 1.0, 2.0, 3.0),
    "p_type": (0.0, 0.5, 1.0),
    "p_novel": (0.0, 0.25, 0.5, 1.0),
    "p_heading": (0.0, 0.5, 1.0),
    "statement_share": (0.15, 0.25, 0.4, 0.6, 1.01),
    "change_margin": (-1.0, 0.0, 0.005, 0.01, 0.02),
}


# The weights the fused score is made of; the learned ranker (qa/ranking.py) was fitted on that score.
RETRIEVAL_WEIGHTS = {"fusion", "w_bm25_share", "bonus_scale", "w_struct", "change_weight", "risk_weight",
                     "field_dense", "field_dense_floor"}


@dataclass
class FitResult:
    weights: dict[str, float]
    train_accuracy: float
    held_out_accuracy: float | None
    train_file: str
    held_out_file: str | None
    rounds: int


def accuracy(ask: Callable[[str], Any], items: Sequence[GoldItem]) -> float:
    right = 0
    for item in items:
        answer = ask(item.question)
        right += answer_correct(answer.answer, item.answers, answer.abstained, item.type)
    return right / max(1, len(items))


def fit(
    assistant: Any,
    train: Sequence[GoldItem],
    grid: dict[str, tuple[float, ...]] = GRID,
    rounds: int = 1,
    log: Callable[[str], None] = lambda _m: None,
) -> tuple[dict[str, float], float]:
    """Coordinate ascent on `assistant`'s live weights (searcher and reader share one dict)."""
    weights = assistant.searcher.weights
    best = accuracy(assistant.ask, train)
    log(f"start: {best:.3f}")
    for round_no in range(rounds):
        changed = False
        for name, values in grid.items():
            current = weights[name] if name in weights else DEFAULT_WEIGHTS[name]
            for value in values:
                if value == current:
                    continue
                weights[name] = value
                score = accuracy(assistant.ask, train)
                if score > best + 1e-9:
                    best, current, changed = score, value, True
                    log(f"round {round_no + 1}: {name}={value} → {score:.3f}")
            weights[name] = current
        if not changed:
            break
    return dict(weights), best


def write_weights(result: FitResult, path: Path = WEIGHTS_PATH) -> None:
    data = {
        "comment": "Fitted by `qa fit` (qa/fitting.py): chosen on the training file only, reported on the held-out file.",
        "fitted_at": _dt.date.today().isoformat(),
        "train_file": result.train_file,
        "held_out_file": result.held_out_file,
        "train_accuracy": round(result.train_accuracy, 4),
        "held_out_accuracy": None if result.held_out_accuracy is None else round(result.held_out_accuracy, 4),
        "weights": {k: result.weights[k] for k in sorted(result.weights)},
    }
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def split(items: Sequence[GoldItem], share: float) -> tuple[list[GoldItem], list[GoldItem]]:
    """A stable split by question id (sha256): (the part that joins training, the part held out)."""
    import hashlib

    joined, held = [], []
    for item in items:
        bucket = int(hashlib.sha256(item.id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if bucket < share else joined).append(item)
    return joined, held


def run_fit(
    assistant: Any, train_file: Path, held_out_file: Path | None, log: Callable[[str], None], held_share: float = 1.0,
    grid: dict[str, tuple[float, ...]] | None = None,
) -> FitResult:
    """Fit on `train_file` (plus the part of `held_out_file` outside `held_share`), report on the rest."""
    train = load_gold(train_file)
    held_items: list[GoldItem] = []
    if held_out_file:
        joined, held_items = split(load_gold(held_out_file), held_share)
        train = [*train, *joined]
        log(f"training on {len(train)} questions, {len(held_items)} held out")
    weights, train_acc = fit(assistant, train, grid=grid or GRID, log=log)
    held = accuracy(assistant.ask, held_items) if held_items else None
    name = str(held_out_file) if held_out_file else None
    if name and held_share < 1.0:
        name = f"{name} (the {len(held_items)} questions whose id hashes below {held_share}; the rest trained)"
    return FitResult(weights, train_acc, held, str(train_file), name, 1)


def cmd_fit(args: Any) -> int:
    from qa.api import Assistant
    from qa.evaluation import _settings_from

    grid = GRID
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in GRID]
        if unknown:
            raise SystemExit(f"qa fit: no such weight: {', '.join(unknown)} (known: {', '.join(GRID)})")
        grid = {n: GRID[n] for n in names}
    settings = _settings_from(args)
    assistant = Assistant.load(settings=settings, build_if_needed=True)
    train = Path(args.train) if args.train else settings.root / "eval" / "gold.jsonl"
    held = Path(args.held_out) if args.held_out else None
    result = run_fit(assistant, train, held, log=lambda m: print(m, flush=True), held_share=args.held_share,  # noqa: T201
                     grid=grid)
    if not args.dry_run:
        write_weights(result)
    held_text = f"{result.held_out_accuracy:.3f} on {held}" if held else "no held-out file"
    print(f"fitted on {train}: {result.train_accuracy:.3f}; {held_text}")  # noqa: T201
    if set(grid) & RETRIEVAL_WEIGHTS:
        print("retrieval weights were refitted: refit the ranker too (`qa fit-ranker`), whose features read the "  # noqa: T201
              "fused score")
    return 0


def add_fit_command(subparsers: Any) -> Any:
    """Register `qa fit [--train FILE] [--held-out FILE] [--dry-run]`."""
    p = subparsers.add_parser("fit", help="fit retrieval and routing weights on a gold file, report on another")
    p.add_argument("--train", help="gold file the weights are chosen on (default: <root>/eval/gold.jsonl)")
    p.add_argument("--held-out", help="gold file measured once with the fitted weights (never used for choosing)")
    p.add_argument("--held-share", type=float, default=1.0, metavar="S",
                   help="hold out only this share of the held-out file (by question id); the rest joins training")
    p.add_argument("--only", metavar="W1,W2", help="fit only these weights (the others keep their current values)")
    p.add_argument("--dry-run", action="store_true", help="print, do not write qa/data/weights.json")
    p.set_defaults(func=cmd_fit)
    return p


# -- the learned ranker (qa/ranking.py) ------------------------------------------------------------------------


def ranker_examples(searcher: Any, gold_file: Path, corpus_dir: Path) -> list[Any]:
    """Each answerable single-report gold question with evidence, as its candidates' features and which hold the
    evidence (the retrieval benchmark's hit: the unit contains the evidence, or overlaps its lines)."""
    import numpy as np

    from qa.eval_metrics import find_evidence, holds_evidence, read_corpus_text, squash
    from qa.ranking import Example

    texts = {p.stem: read_corpus_text(p) for p in sorted(corpus_dir.iterdir()) if p.is_file()}
    chunks = searcher.index.chunks
    squashed: dict[int, str] = {}
    out = []
    for item in load_gold(gold_file):
        if not item.answerable or len(item.cards) != 1 or not item.evidence or not isinstance(item.evidence, str):
            continue
        card, evidence = item.cards[0], squash(item.evidence)
        spans = [(s.line, s.end_line) for s in find_evidence(item.evidence, texts, [card])]
        q, vector = searcher.understand(item.question)
        query = searcher.query_for(q, vector)
        cand = searcher.fuse(query)
        if cand is None or not len(cand.rows):
            continue

        positive = np.array(
            [holds_evidence(chunks[i], card, evidence, spans, squashed.setdefault(i, squash(chunks[i].text)))
             for i in cand.rows],
            dtype=bool,
        )
        out.append(Example(item.id, searcher.feature_matrix(query, cand), positive))
    return out


def cmd_fit_ranker(args: Any) -> int:
    from qa.api import Assistant
    from qa.evaluation import _settings_from
    from qa.ranking import RANKER_PATH, best_slots, cross_validate, fit_weights, rank_metrics, write_ranker

    settings = _settings_from(args)
    assistant = Assistant.load(settings=settings, build_if_needed=True)
    searcher = assistant.searcher
    train_file = Path(args.train) if args.train else settings.root / "eval" / "gold.jsonl"
    train = ranker_examples(searcher, train_file, settings.corpus_dir)
    lam, by_lam = cross_validate(train)
    weights = fit_weights(train, lam)
    slots = best_slots(train, weights)
    fused, learned = rank_metrics(train, None), rank_metrics(train, weights, slots=slots)
    print(f"{len(train)} training questions from {train_file}; 5-fold MRR@10 by L2: "  # noqa: T201
          + ", ".join(f"{k}: {v:.3f}" for k, v in by_lam.items()) + f" → {lam}")
    print(f"training set: fused evidence@10 {fused['@10']:.3f} → learned {learned['@10']:.3f} (change-history places: "  # noqa: T201
          f"{slots}), MRR@10 {fused['mrr']:.3f} → {learned['mrr']:.3f}")
    about: dict[str, Any] = {"train_file": _shown(train_file, settings.root), "questions": len(train), "l2": lam,
                             "cv_mrr": round(by_lam[lam], 4), "train_mrr": round(learned["mrr"], 4)}
    if args.held_out:
        held = ranker_examples(searcher, Path(args.held_out), settings.corpus_dir)
        before, after = rank_metrics(held, None), rank_metrics(held, weights, slots=slots)
        print(f"held out ({len(held)} questions of {args.held_out}, never fitted on): evidence@10 "  # noqa: T201
              f"{before['@10']:.3f} → {after['@10']:.3f}, MRR@10 {before['mrr']:.3f} → {after['mrr']:.3f}")
        about.update(held_out_file=_shown(Path(args.held_out), settings.root), held_out_mrr=round(after["mrr"], 4),
                     held_out_at10=round(after["@10"], 4))
    if not args.dry_run:
        write_ranker(RANKER_PATH, weights, slots, **about)
        print(f"wrote {RANKER_PATH}")  # noqa: T201
    return 0


def _shown(path: Path, root: Path) -> str:
    """A path as recorded in the fitted file: relative to the project when it can be."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def add_fit_ranker_command(subparsers: Any) -> Any:
    """Register `qa fit-ranker [--train FILE] [--held-out FILE] [--dry-run]`."""
    p = subparsers.add_parser("fit-ranker", help="fit the learned ranker on a gold file, report on another")
    p.add_argument("--train", help="gold file the ranker is fitted on (default: <root>/eval/gold.jsonl)")
    p.add_argument("--held-out", help="gold file measured with the fitted ranker (never used for fitting)")
    p.add_argument("--dry-run", action="store_true", help="print, do not write qa/data/ranker.json")
    p.set_defaults(func=cmd_fit_ranker)
    return p
