#!/usr/bin/env python3
"""Validate the gold question/answer set ``eval/gold.jsonl``.

The gold set holds questions about five 特定個人情報保護評価書 (PIA reports,
"cards").  Each line is one JSON object with the keys

    id, question, type, answers, cards, section, evidence   (+ optional note)

This module checks

* the schema (exact key set, value types, known ``type`` values, unique ids,
  ``answers`` non-empty unless the question is unanswerable, every card id
  names an existing corpus file);
* that every non-empty ``evidence`` string is a *verbatim* substring of the
  raw text (UTF-8, BOM stripped, no normalisation) of at least one of its
  ``cards``;
* that every answer string occurs, after NFKC normalisation and removal of
  all whitespace, in the equally normalised text of at least one of its
  cards.  Yes/no tokens are skipped; answers of ``cross`` questions and of
  English questions that are not found are reported as *info*, not failures.

Run it from anywhere::

    python3 eval/check_gold.py [--gold PATH] [--corpora DIR]

It prints counts by type and by card and exits non-zero (listing every
failure) when something is wrong.  Only the standard library is used.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent
DEFAULT_GOLD: Path = PROJECT_ROOT / "eval" / "gold.jsonl"
DEFAULT_CORPORA: Path = PROJECT_ROOT / "corpora"
FALLBACK_CORPORA: Path = Path("/work/shared/corpora")

REQUIRED_KEYS: frozenset[str] = frozenset(
    {"id", "question", "type", "answers", "cards", "section", "evidence"}
)
OPTIONAL_KEYS: frozenset[str] = frozenset({"note"})
KNOWN_TYPES: frozenset[str] = frozenset(
    {"span", "list", "number", "date", "yesno", "cross", "unanswerable"}
)
YESNO_TOKENS: frozenset[str] = frozenset({"はい", "いいえ", "yes", "no"})
ID_PATTERN = re.compile(r"^q\d{3,}$")
EVIDENCE_MIN_LEN = 8
EVIDENCE_MAX_LEN = 200
_WS = re.compile(r"\s+")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")


@dataclass
class CheckResult:
    """Outcome of a gold-set check.

    ``failures`` are hard errors (the checker exits non-zero when there are
    any); ``infos`` are observations that need no action.
    """

    failures: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    type_counts: Counter = field(default_factory=Counter)
    card_counts: Counter = field(default_factory=Counter)
    english_count: int = 0
    total: int = 0

    @property
    def ok(self) -> bool:
        """True when no failure was recorded."""
        return not self.failures


def normalize(text: str) -> str:
    """NFKC-normalise ``text`` and remove every whitespace character."""
    return _WS.sub("", unicodedata.normalize("NFKC", text))


def is_english(question: str) -> bool:
    """Heuristic: a question is English when it contains no kana/kanji
    outside of quoted report terms, i.e. when most letters are ASCII."""
    ascii_letters = sum(1 for ch in question if ch.isascii() and ch.isalpha())
    japanese = len(_JAPANESE.findall(question))
    return ascii_letters > 0 and ascii_letters >= 2 * japanese


def read_card(path: Path) -> str:
    """Read a corpus file as UTF-8 and strip a leading BOM."""
    text = path.read_text(encoding="utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def resolve_corpora(corpora: Path | str | None = None) -> Path:
    """Return the corpora directory to use.

    An explicit argument wins; otherwise ``<project root>/corpora`` if it
    exists, else the shared read-only copy.
    """
    if corpora is not None:
        return Path(corpora)
    if DEFAULT_CORPORA.is_dir():
        return DEFAULT_CORPORA
    return FALLBACK_CORPORA


def load_cards(corpora: Path) -> dict[str, str]:
    """Map card id (file stem) to raw text for every ``*.txt`` in ``corpora``."""
    return {p.stem: read_card(p) for p in sorted(corpora.glob("*.txt"))}


def load_gold(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Parse ``gold.jsonl``; return the records and any parse failures."""
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            failures.append(f"line {lineno}: invalid JSON ({exc})")
            continue
        if not isinstance(obj, dict):
            failures.append(f"line {lineno}: not a JSON object")
            continue
        records.append(obj)
    return records, failures


def _check_schema(rec: dict[str, Any], label: str, cards: dict[str, str]) -> list[str]:
    """Return schema failures for one record."""
    out: list[str] = []
    keys = set(rec)
    missing = REQUIRED_KEYS - keys
    extra = keys - REQUIRED_KEYS - OPTIONAL_KEYS
    if missing:
        out.append(f"{label}: missing keys {sorted(missing)}")
    if extra:
        out.append(f"{label}: unknown keys {sorted(extra)}")
    for key in ("id", "question", "type", "section", "evidence"):
        if key in rec and not isinstance(rec[key], str):
            out.append(f"{label}: '{key}' must be a string")
    if "note" in rec and not isinstance(rec["note"], str):
        out.append(f"{label}: 'note' must be a string")
    for key in ("answers", "cards"):
        if key in rec and not (
            isinstance(rec[key], list) and all(isinstance(x, str) for x in rec[key])
        ):
            out.append(f"{label}: '{key}' must be a list of strings")
    if out:
        return out
    if not ID_PATTERN.match(rec["id"]):
        out.append(f"{label}: id should look like q001")
    if not rec["question"].strip():
        out.append(f"{label}: empty question")
    qtype = rec["type"]
    if qtype not in KNOWN_TYPES:
        out.append(f"{label}: unknown type {qtype!r}")
    if qtype == "unanswerable":
        if rec["answers"]:
            out.append(f"{label}: unanswerable question must have answers []")
        if rec["evidence"]:
            out.append(f"{label}: unanswerable question must have evidence ''")
    else:
        if not rec["answers"]:
            out.append(f"{label}: answers must not be empty")
        if any(not a.strip() for a in rec["answers"]):
            out.append(f"{label}: empty answer string")
        if not rec["cards"]:
            out.append(f"{label}: cards must not be empty")
        if not rec["evidence"]:
            out.append(f"{label}: evidence must not be empty")
    if qtype == "yesno" and rec["answers"] and rec["answers"][0] not in YESNO_TOKENS:
        out.append(f"{label}: yesno answers must start with はい/いいえ/yes/no")
    if len(set(rec["cards"])) != len(rec["cards"]):
        out.append(f"{label}: duplicate card ids")
    for card in rec["cards"]:
        if card not in cards:
            out.append(f"{label}: card {card!r} has no file in the corpora dir")
    ev = rec["evidence"]
    if ev and not (EVIDENCE_MIN_LEN <= len(ev) <= EVIDENCE_MAX_LEN):
        out.append(f"{label}: evidence length {len(ev)} outside {EVIDENCE_MIN_LEN}-{EVIDENCE_MAX_LEN}")
    return out


def _check_content(
    rec: dict[str, Any], label: str, cards: dict[str, str], norm_cards: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Return (failures, infos) for evidence and answer grounding."""
    failures: list[str] = []
    infos: list[str] = []
    own = [c for c in rec["cards"] if c in cards]
    ev = rec["evidence"]
    if ev and own and not any(ev in cards[c] for c in own):
        failures.append(f"{label}: evidence not found verbatim in {own}: {ev[:60]!r}")
    english = is_english(rec["question"])
    for ans in rec["answers"]:
        if ans in YESNO_TOKENS:
            continue
        norm = normalize(ans)
        if own and any(norm in norm_cards[c] for c in own):
            continue
        msg = f"{label}: answer {ans!r} not found in {own}"
        if rec["type"] == "cross" or (english and not _JAPANESE.search(ans)):
            infos.append(msg)
        else:
            failures.append(msg)
    return failures, infos


def check_records(
    records: Iterable[dict[str, Any]], cards: dict[str, str]
) -> CheckResult:
    """Validate ``records`` against ``cards`` (card id -> raw text)."""
    result = CheckResult()
    norm_cards = {k: normalize(v) for k, v in cards.items()}
    seen: dict[str, int] = {}
    for idx, rec in enumerate(records, 1):
        result.total += 1
        rid = rec.get("id") if isinstance(rec.get("id"), str) else None
        label = rid or f"record#{idx}"
        if rid is not None:
            if rid in seen:
                result.failures.append(f"{label}: duplicate id (first at record#{seen[rid]})")
            else:
                seen[rid] = idx
        schema_failures = _check_schema(rec, label, cards)
        result.failures.extend(schema_failures)
        if isinstance(rec.get("type"), str):
            result.type_counts[rec["type"]] += 1
        if isinstance(rec.get("cards"), list):
            for card in rec["cards"]:
                if isinstance(card, str):
                    result.card_counts[card] += 1
        if isinstance(rec.get("question"), str) and is_english(rec["question"]):
            result.english_count += 1
        if any("must be" in f or "missing keys" in f for f in schema_failures):
            continue
        fails, infos = _check_content(rec, label, cards, norm_cards)
        result.failures.extend(fails)
        result.infos.extend(infos)
    return result


def check_gold(
    gold: Path | str = DEFAULT_GOLD, corpora: Path | str | None = None
) -> CheckResult:
    """Load ``gold`` and the corpora and run every check."""
    corpora_dir = resolve_corpora(corpora)
    if not corpora_dir.is_dir():
        res = CheckResult()
        res.failures.append(f"corpora dir not found: {corpora_dir}")
        return res
    cards = load_cards(corpora_dir)
    records, parse_failures = load_gold(Path(gold))
    result = check_records(records, cards)
    result.failures[:0] = parse_failures
    return result


def report(result: CheckResult, out=sys.stdout) -> None:
    """Print a human-readable summary of ``result``."""
    print(f"questions: {result.total}", file=out)
    print(
        f"english:   {result.english_count}"
        f" ({100.0 * result.english_count / max(result.total, 1):.1f}%)",
        file=out,
    )
    print("by type:", file=out)
    for key in sorted(KNOWN_TYPES | set(result.type_counts)):
        print(f"  {key:13s} {result.type_counts.get(key, 0)}", file=out)
    print("by card:", file=out)
    for key, val in sorted(result.card_counts.items()):
        print(f"  {key} {val}", file=out)
    for msg in result.infos:
        print(f"INFO {msg}", file=out)
    for msg in result.failures:
        print(f"FAIL {msg}", file=out)
    print("OK" if result.ok else f"{len(result.failures)} failure(s)", file=out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    parser.add_argument(
        "--corpora",
        type=Path,
        default=None,
        help="directory with the card files (default: <root>/corpora, "
        "falling back to /work/shared/corpora)",
    )
    args = parser.parse_args(argv)
    result = check_gold(args.gold, args.corpora)
    report(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
