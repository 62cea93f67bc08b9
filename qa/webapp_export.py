"""Exporting an answer with its citations: Markdown for any answer, CSV for a list answer (提供先, 委託先, …).

Both are built from the session's record of the answer (webapp_viewer.answer_record), so an earlier
answer exports exactly what was shown. The CSV is UTF-8 with a byte-order mark, which Excel needs to
read Japanese text.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from qa.webapp_text import reader_text
from qa.webapp_viewer import NOT_STATED

_EXPORT_DIR: Path | None = None


def export_dir() -> Path:
    """One temporary folder per process for the files offered for download."""
    global _EXPORT_DIR
    if _EXPORT_DIR is None or not _EXPORT_DIR.is_dir():
        _EXPORT_DIR = Path(tempfile.mkdtemp(prefix="qa-export-"))
    return _EXPORT_DIR


def _md_text(text: str) -> str:
    """Report text inside Markdown: its own line breaks kept, Markdown punctuation escaped."""
    return re.sub(r"([\\`*_\[\]#|<>])", r"\\\1", text).replace("\n", " ")


def to_markdown(record: dict[str, Any]) -> str:
    labels = record.get("labels", {})
    out = [f"# 質問: {_md_text(record['question'])}", ""]
    if record["abstained"]:
        out += [f"**【{NOT_STATED}】** 評価書にこの質問への記載が見つかりませんでした。", ""]
    out += ["## 回答", "", _md_text(reader_text(record["answer"])), ""]
    if record["citations"]:
        out += ["## 出典", ""]
        for n, c in enumerate(record["citations"], start=1):
            out.append(f"{n}. 「{_md_text(c['quote'])}」")
            out.append(f"   - 評価書: {_md_text(labels.get(c['card']) or c.get('title') or c['card'])}")
            out.append(f"   - 節: {_md_text(c.get('section') or '（節なし）')}")
            out.append(f"   - ファイル: `{c['source']}` {c['line']} 行目")
        out.append("")
    out.append(f"_{time.strftime('%Y-%m-%d %H:%M')} に 特定個人情報保護評価書 QA で作成。引用は評価書の原文のままです。_")
    return "\n".join(out) + "\n"


def is_list(record: dict[str, Any]) -> bool:
    return record.get("kind") == "list" and len(record["citations"]) > 0


def to_csv(record: dict[str, Any]) -> str:
    labels = record.get("labels", {})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["番号", "値（原文の引用）", "項目", "節", "評価書", "ファイル", "行"])
    for n, c in enumerate(record["citations"], start=1):
        section = c.get("section") or ""
        writer.writerow([n, c["quote"], section.split(" > ")[-1], section,
                         labels.get(c["card"]) or c.get("title") or c["card"], c["source"], c["line"]])
    return buf.getvalue()


def write_exports(record: dict[str, Any], answer_no: int) -> tuple[Path, Path | None]:
    """The Markdown file, and the CSV file for a list answer (else None), ready for download."""
    folder = export_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{answer_no}-{time.perf_counter_ns() % 10**6}"
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"回答{answer_no}.md"
    md.write_text(to_markdown(record), encoding="utf-8")
    if not is_list(record):
        return md, None
    path = folder / f"回答{answer_no}_一覧.csv"
    path.write_text(to_csv(record), encoding="utf-8-sig")
    return md, path
