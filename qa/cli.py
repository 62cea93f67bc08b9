"""The `qa` command: thin argument parsing around qa.api; library errors become `Error: …` and exit 1."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.errors import QAError, os_reason
from qa.parsing.template import CHANGE_KIND


# Terminal escape sequences (CSI "ESC [ … letter", OSC "ESC ] … BEL/ST", two-byte "ESC x"), then any other
# control character but tab and line feed, C1 controls (\x9b is a one-byte CSI) and the bidirectional
# overrides that reorder what a terminal shows. A report can carry any of them; none reaches the terminal.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.?)", re.S)
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # json.dumps escapes C0 itself


def terminal_safe(text: str) -> str:
    """`text` with escape sequences and control characters removed, safe to print to a terminal."""
    if text.isprintable():
        return text
    return _UNPRINTABLE.sub("", _ESCAPE_SEQUENCE.sub("", text))


def _out(text: str = "") -> None:
    sys.stdout.write(terminal_safe(text) + "\n")


def _json(obj: Any, pretty: bool = True) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None)
    # The characters json.dumps leaves raw that a terminal obeys: \u-escaped (the JSON value is unchanged).
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


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
        if record.kind == CHANGE_KIND and not args.all:
            continue
        _out(f"- {record.breadcrumb}  {record.name or ''}  [lines {record.line}-{record.end_line}]")
        for f in record.fields:
            value = f.value.replace("\n", " ")
            chosen = f"  → {', '.join(f.selected)}" if f.selected else ""
            _out(f"    {f.label}: {value[:100]}{'…' if len(value) > 100 else ''}{chosen}")
    changes = len(card.records(CHANGE_KIND))
    if changes and not args.all:
        _out(f"\n({changes} 変更箇所 rows; --all to list them)")
    return 0


def _record_counts(card: Any) -> str:
    from collections import Counter

    counts = Counter(r.kind for r in card.records())
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


# -- index / search / ask / batch ------------------------------------------------------------------------


def _progress_bar() -> Any:
    """A tqdm bar per build stage, on stderr."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="card" if stage in ("reading", "embedding") else "step")
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def cmd_index(args: argparse.Namespace) -> int:
    from qa.api import build

    settings = _settings(args)
    report = build(settings, full=args.full, progress=None if args.quiet else _progress_bar())
    _out(
        f"indexed {report.cards} cards, {report.chunks} chunks in {report.seconds:.1f} s "
        f"({report.bytes / 1e6:.1f} MB) → {report.index_dir}"
    )
    _out(f"  re-embedded: {', '.join(report.reembedded) or 'none'}")
    if report.reused:
        _out(f"  unchanged:   {', '.join(report.reused)}")
    for line in report.skipped:
        _out(f"  skipped:     {line}")
    return 0


def _assistant(args: argparse.Namespace) -> Any:
    from qa.api import Assistant

    return Assistant.load(settings=_settings(args))


def cmd_search(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    from qa.api import clean_question

    question = clean_question(args.question, assistant.settings.max_question_chars)
    hits = assistant.searcher.search(question, k=args.k, cards=args.card or None)
    if args.json:
        _json([{"card": h.chunk.card, "source": h.chunk.source, "section": h.chunk.section, "score": round(h.score, 5),
                "line": h.chunk.line, "text": h.chunk.text} for h in hits])
        return 0
    for rank, h in enumerate(hits, start=1):
        c = h.chunk
        _out(f"{rank:>2}. {h.score:.4f}  {c.card}  {c.source}:{c.line}-{c.end_line}")
        _out(f"    {c.section}")
        _out("    " + c.text.replace("\n", " ")[:160])
    return 0


def _print_answer(answer: Any, sink: Any = None) -> None:
    write = (lambda text: sink.write(terminal_safe(text) + "\n")) if sink is not None else _out
    write(answer.answer)
    for n, c in enumerate(answer.citations[:8], start=1):
        write(f"  [{n}] {c.source}:{c.line}  {c.section}")
        write(f"      「{c.quote[:120]}」")
    if len(answer.citations) > 8:
        write(f"  … {len(answer.citations) - 8} more citations (--json for all)")
    write(f"  ({'abstained, ' if answer.abstained else ''}{answer.latency_ms:.0f} ms)")


def cmd_ask(args: argparse.Namespace) -> int:
    """One question from the command line; or, with none, one per line of stdin (the index loads once)."""
    assistant = _assistant(args)
    if args.question is not None:
        answer = assistant.ask(args.question, cards=args.card or None)
        if args.json:
            _json(answer.to_dict())
        else:
            _print_answer(answer)
        return 0
    from qa.errors import CardNotFoundError, QuestionError

    assistant.warm_up()  # a stream of questions follows
    failures = 0
    if sys.stdin.isatty():
        sys.stderr.write("質問を 1 行ずつ入力してください（終わりは Ctrl-D） / one question per line, Ctrl-D to end\n")
    for line in sys.stdin:
        question = line.strip()
        if not question:
            continue
        try:
            answer = assistant.ask(question, cards=args.card or None)
        except (QuestionError, CardNotFoundError) as exc:
            failures += 1
            sys.stderr.write(f"Error: {_encodable(str(exc))}\n")
            continue
        if args.json:
            _out(_json_line(answer.to_dict(), pretty=False))
        else:
            _out(_encodable(f"Q: {question}"))
            _print_answer(answer)
            _out()
        sys.stdout.flush()
    return 1 if failures else 0


def cmd_add(args: argparse.Namespace) -> int:
    """Copy reports into the corpus folder (checked first; nothing is written for a bad file), then index."""
    from qa.ingest import add_report

    settings = _settings(args)
    if args.name and len(args.files) != 1:
        raise QAError("--name は 1 ファイルのときだけ使えます / --name takes exactly one FILE")
    added: list[Path] = []
    failures = 0
    for file in args.files:
        try:
            path = add_report(Path(file), settings.corpus_dir, name=args.name)
        except QAError as exc:
            failures += 1
            sys.stderr.write(f"Error: {exc}\n")
            continue
        added.append(path)
        _out(f"added {file} → {path}")
    if added and not args.no_index:
        from qa.api import build

        report = build(settings, progress=None if args.quiet else _progress_bar())
        names = {p.name for p in added}
        refused = [line for line in report.skipped if line.split(":")[0] in names]
        for line in refused:
            failures += 1
            sys.stderr.write(f"Error: not indexed: {line}\n")
        _out(f"indexed {report.cards} cards in {report.seconds:.1f} s; re-embedded: {', '.join(report.reembedded) or 'none'}")
    return 1 if failures else 0


def _encodable(text: str) -> str:
    """`text` with lone surrogates (from JSON "\\ud800" escapes) replaced, so that it can be written as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


# Characters JSON leaves raw that str.splitlines() (and JavaScript, for the last two) take as line breaks:
# escaped, so that one answer stays one line of the JSONL output whatever a question echoes.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_line(obj: Any, pretty: bool) -> str:
    indent = 2 if pretty else None
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere in the echoed input: \u-escape everything
        return json.dumps(obj, ensure_ascii=True, indent=indent)
    if any(ch in text for ch in _LINE_BREAKS):
        for ch, escaped in _LINE_BREAKS.items():
            text = text.replace(ch, escaped)
    return text


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

    p = sub.add_parser("index", help="build or update the index (only changed reports are re-embedded)")
    p.add_argument("--full", action="store_true", help="rebuild everything")
    p.add_argument("--embedding-model", help="a local sentence-transformers folder (default: built-in chiVe)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="ranked chunks for a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--card", action="append", help="restrict to a card (id, prefix, municipality or 事務); repeatable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations (no question: one per line of stdin)")
    p.add_argument("question", nargs="?", help="the question; leave out to read questions from stdin")
    p.add_argument("--card", action="append", help="restrict to a card (id, prefix, municipality or 事務); repeatable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("add", help="add report files to the corpus folder and index them")
    p.add_argument("files", nargs="+", metavar="FILE", help="text, HTML, Markdown or TSV reports (at most 20 MB each)")
    p.add_argument("--name", help="store the file under this name (one FILE only)")
    p.add_argument("--no-index", action="store_true", help="only copy; run `qa index` later")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("batch", help="answer a JSONL file of questions")
    p.add_argument("input", help='JSONL with {"id": …, "question": …} per line ("-" for stdin)')
    p.add_argument("output", help='JSONL output ("-" for stdout)')
    p.add_argument("-k", type=int, default=10, help="retrieved chunks kept per answer")
    p.add_argument("--pretty", action="store_true", help="indented JSON (one object per several lines)")
    p.add_argument("--text", action="store_true", help="answers and citations for people, not JSON")
    from qa.cli_batch import cmd_batch

    p.set_defaults(func=cmd_batch)

    for module, name in (
        ("qa.evaluation", "add_eval_command"), ("qa.fitting", "add_fit_command"),
        ("qa.fitting", "add_fit_ranker_command"), ("qa.webapp", "add_serve_command")
    ):
        try:
            register = getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError):
            continue
        register(sub)
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
        sys.stderr.write(f"Error: {terminal_safe(str(exc))}\n".replace("\n", " ").rstrip() + "\n")
        return 1
    except OSError as exc:  # an environment error no command turned into a QAError: still one line
        if isinstance(exc, BrokenPipeError):  # `qa inspect | head`
            sys.stderr.close()
            return 0
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"Error: {terminal_safe(os_reason(exc))}{where}: check the path, its permissions "
                         "and the free disk space\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
