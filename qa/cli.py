"""The `qa` command: thin argument parsing around qa.api; library errors become `Error: …` and exit 1."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.errors import QAError


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _json(obj: Any, pretty: bool = True) -> None:
    _out(json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(
        root=Path(args.root) if getattr(args, "root", None) else None,
        corpus_dir=getattr(args, "corpora", None),
        index_dir=getattr(args, "index", None),
        embedding_model=getattr(args, "embedding_model", None),
    )


# -- inspect --------------------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    from qa.api import load_cards

    settings = _settings(args)
    corpus = load_cards(settings)
    if args.card is None:
        if args.json:
            _json({"cards": [c.metadata() for c in corpus.cards], "skipped": [str(e) for e in corpus.skipped]})
            return 0
        for card in corpus.cards:
            counts = _record_counts(card)
            _out(
                f"{card.id}  {card.kind or '-'}  {card.municipality or '-'}  {card.title or '-'}  "
                f"公表日={card.published or '記載なし'}  {counts}"
            )
        for exc in corpus.skipped:
            _out(f"skipped: {exc}")
        return 0
    card = corpus.get(args.card)
    if args.json:
        _json(card.to_dict())
        return 0
    _out(f"# {card.id} ({card.source})")
    for key, value in card.metadata().items():
        _out(f"{key:>12}: {value if value is not None else '(記載なし / not stated)'}")
    _out("\n## Sections")
    for section in card.walk():
        depth = len(section.path) - 1
        _out(f"{'  ' * depth}- {section.title}  [lines {section.line}-{section.end_line}, "
             f"{len(section.fields)} fields, {len(section.records)} records]")
    _out("\n## Records")
    for record in card.records():
        if record.kind == "変更箇所" and not args.all:
            continue
        _out(f"- {record.breadcrumb}  {record.name or ''}  [lines {record.line}-{record.end_line}]")
        for f in record.fields:
            value = f.value.replace("\n", " ")
            chosen = f"  → {', '.join(f.selected)}" if f.selected else ""
            _out(f"    {f.label}: {value[:100]}{'…' if len(value) > 100 else ''}{chosen}")
    changes = len(card.records("変更箇所"))
    if changes and not args.all:
        _out(f"\n({changes} 変更箇所 rows; --all to list them)")
    return 0


def _record_counts(card: Any) -> str:
    from collections import Counter

    counts = Counter(r.kind for r in card.records())
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


# -- entry point ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Question answering over 特定個人情報保護評価書")
    parser.add_argument("--root", help="project folder (default: found from the current folder)")
    parser.add_argument("--corpora", help="folder of reports (default: <root>/corpora)")
    parser.add_argument("--index", help="index folder (default: <root>/index)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="show how a report was understood")
    p.add_argument("card", nargs="?", help="card id or its prefix (e.g. 004); none: one line per card")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="also list change-history rows")
    p.set_defaults(func=cmd_inspect)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except QAError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except BrokenPipeError:  # `qa inspect | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
