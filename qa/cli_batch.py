"""`qa batch`: JSONL questions in, JSONL (or text) answers out. A bad line is reported with its number and
the rest are still answered; the output file appears whole or not at all. Split from qa.cli, whose helpers it
uses (looked up there at call time, so a test's patch of qa.cli reaches them)."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from qa import cli
from qa.errors import QAError, WriteError, os_reason


class _Output:
    """Where `qa batch` writes: stdout, a device or pipe (written directly), or a regular file, written to a
    temporary file beside it and renamed over it at the end, so that an existing file is never half-replaced.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.final: Path | None = None
        self.tmp: Path | None = None
        if name == "-":
            self.file: Any = sys.stdout
            return
        path = Path(name)
        try:
            direct = path.exists() and not path.is_file()  # /dev/stdout, a named pipe
            if direct:
                self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115
                return
            import tempfile

            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise WriteError(path, os_reason(exc), "check the folder exists and is writable") from exc
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it owner-only; the answers are an ordinary file
        self.file = os.fdopen(fd, "w", encoding="utf-8")
        self.final, self.tmp = path, Path(tmp)

    @property
    def is_stdout(self) -> bool:
        return self.file is sys.stdout

    def finish(self) -> None:
        """Close and put the answers in place (also after an interruption: what was written is valid JSONL)."""
        if self.is_stdout:
            self.file.flush()
            return
        self.file.close()
        if self.tmp is not None and self.final is not None:
            os.replace(self.tmp, self.final)
            self.tmp = None

    def discard(self) -> None:
        if not self.is_stdout:
            try:
                self.file.close()
            except OSError:
                pass
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


def _batch_paths(args: argparse.Namespace) -> None:
    """Refuse, before anything is loaded, an input that is missing or a folder and an output that is a
    folder or the input itself (by any path: relative, a link): the answers would overwrite the questions."""
    src = None if args.input == "-" else Path(args.input)
    if src is not None:
        if src.is_dir():
            raise QAError(f"{args.input} is a folder: give the JSONL file of questions (or - for stdin)")
        if not src.exists():
            raise QAError(f"no file {args.input}: give a JSONL file of questions (or - for stdin)")
    if args.output == "-":
        return
    out = Path(args.output)
    if out.is_dir():
        raise QAError(f"{args.output} is a folder: give a file name for the answers, e.g. {out / 'answers.jsonl'}")
    if src is not None and out.exists():
        try:
            same = os.path.samefile(src, out)
        except OSError:
            same = False
        if same:
            raise QAError(f"{args.output} is the input file: write the answers to another file")


def cmd_batch(args: argparse.Namespace) -> int:
    """JSONL in, JSONL out; a bad line is reported with its number and the rest are still answered."""
    from qa.api import clean_cards
    from qa.errors import CardNotFoundError, QuestionError

    _batch_paths(args)
    assistant = cli._assistant(args)
    if args.input == "-":  # bytes, decoded line by line: one undecodable line must not stop the batch
        stdin_bytes = getattr(sys.stdin, "buffer", None)
        source = stdin_bytes if stdin_bytes is not None else io.BytesIO(sys.stdin.read().encode("utf-8", "replace"))
    else:
        try:
            source = open(args.input, "rb")  # noqa: SIM115
        except OSError as exc:
            raise QAError(f"cannot read {args.input} ({os_reason(exc)}): check the file name and its permissions") from exc
    try:
        rows = list(enumerate(source, start=1))
    finally:
        if args.input != "-":
            source.close()
    output = _Output(args.output)
    sink = output.file
    where = "stdout" if output.is_stdout else str(output.final or args.output)
    total = sum(1 for _, data in rows if data.strip())
    if total > 1:
        assistant.warm_up()
    failures = written = 0
    first_line_of: dict[str, int] = {}
    try:
        iterator: Any = rows
        if len(rows) > 20 and not output.is_stdout:
            from tqdm import tqdm

            iterator = tqdm(rows, desc="questions", unit="q")
        for lineno, data in iterator:
            if not data.strip():
                continue
            try:
                # utf-8-sig: a file saved by Notepad starts with a byte-order mark.
                line = data.decode("utf-8-sig" if lineno == 1 else "utf-8")
                item = json.loads(line)
                if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                    raise ValueError('each line must be an object with a "question" string')
                _note_duplicate_id(args.input, lineno, item.get("id"), first_line_of)
                answer = assistant.ask(item["question"], cards=clean_cards(item.get("cards")))
            except UnicodeDecodeError as exc:
                failures += 1
                sys.stderr.write(f"{args.input}:{lineno}: not UTF-8 text (byte {exc.start}); skipped\n")
                continue
            except (ValueError, QuestionError, CardNotFoundError, RecursionError) as exc:
                failures += 1
                why = "nested too deeply" if isinstance(exc, RecursionError) else cli._encodable(str(exc))[:500]
                sys.stderr.write(cli.terminal_safe(f"{args.input}:{lineno}: {why}") + "\n")
                continue
            out = {k: v for k, v in item.items() if k not in ("question",)}
            out.update(
                {
                    "id": item.get("id"),
                    "question": item["question"],
                    "answer": answer.answer,
                    "abstained": answer.abstained,
                    "citations": [
                        {k: c.to_dict()[k] for k in ("card", "title", "source", "section", "quote", "line")}
                        for c in answer.citations
                    ],
                    "retrieved": [r.to_dict() for r in answer.retrieved[: max(args.k, 0)]],
                    "latency_ms": round(answer.latency_ms, 1),
                }
            )
            if args.text:
                sink.write(cli._encodable(cli.terminal_safe(f"Q{item.get('id') or lineno}: {item['question']}")) + "\n")
                cli._print_answer(answer, sink)
                sink.write("\n")
            else:
                sink.write(cli._json_line(out, args.pretty) + "\n")
            sink.flush()
            written += 1
        output.finish()
    except KeyboardInterrupt:
        try:
            output.finish()
        except OSError:
            output.discard()
            written = 0
        sys.stderr.write(f"\ninterrupted: {written} of {total} questions written to {where}\n")
        return 130
    except OSError as exc:
        output.discard()
        if isinstance(exc, BrokenPipeError):
            raise
        raise WriteError(where, os_reason(exc), "free some disk space or write the answers elsewhere") from exc
    except BaseException:
        output.discard()
        raise
    if failures:
        sys.stderr.write(f"{failures} line(s) could not be answered; the others were\n")
    return 0


def _note_duplicate_id(name: str, lineno: int, qid: Any, first_line_of: dict[str, int]) -> None:
    """Warn about an id used before; both answers are kept, in order."""
    if qid is None:
        return
    key = json.dumps(qid, ensure_ascii=False, sort_keys=True)
    first = first_line_of.setdefault(key, lineno)
    if first != lineno:
        sys.stderr.write(f"{name}:{lineno}: duplicate id {qid!r} (first on line {first}); both answers kept\n")
