"""The evaluation report: report.md (tables by type, card and failure cause) and the PNG charts."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qa.eval_metrics import K, TYPES

log = logging.getLogger(__name__)


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
