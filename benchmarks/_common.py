"""What the benchmarks share: the gold files' arguments and a report printed and written at once."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT.parent / "shared" / "eval-external" / "gold.jsonl"


def gold_arguments(parser: argparse.ArgumentParser, out_name: str) -> None:
    """--external, --gold, --corpora and --out (benchmarks/results/<out_name>)."""
    parser.add_argument("--external", type=Path, default=EXTERNAL)
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--corpora", type=Path, default=ROOT / "corpora")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / out_name)


def parse_gold_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if not args.external.is_file():
        args.external = Path("/work/shared/eval-external/gold.jsonl")
    return args


class Report:
    """Lines printed as they come (a long run shows progress) and written to a file at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, flush=True)  # noqa: T201
        self.lines.append(text)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
