"""The report browser: how each report was understood (metadata, sections, records, fields).

A field the parser could not read is shown as 「読み取れません」 with its raw lines, never as a value.
"Could not read" is decided from what the parser left, by rules that hold for any report:
- an option mark left alone: the value is only marks (○, brackets, a stray number) with no option chosen,
  or its brackets do not pair up (the mark came loose from its option);
- a value of the wrong kind: a count range (「1万人以上10万人未満」) under a label that is not a count;
- a value without its label: the field is named after its block (「提供先2 市町村長」), the label was lost.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

from qa.parsing.template import CHANGE_KIND
from qa.webapp_text import md_escape

if TYPE_CHECKING:
    from qa.api import Assistant
    from qa.parsing import Card, Field, Record

UNREADABLE = "読み取れません"
ALL_KINDS = "（変更箇所以外のすべて）"
META_NAMES = {"id": "ID", "source": "ファイル", "kind": "種類", "number": "評価書番号", "title": "評価書名",
              "evaluator": "評価実施機関名", "municipality": "自治体", "published": "公表日", "affair": "事務"}
_MARKS = re.compile(r"[\s\[\]()（）［］【】○◯●〇✓✔☑☐□■・,、]")
_OPTION_MARK = re.compile(r"[○◯●〇✓✔☑\[\]［］]")
_COUNT_RANGE = re.compile(r"^\[?\s*(\d[\d,]*\s*(万|千)?\s*人\s*(以上|未満)\s*)+\]?$")
_COUNT_LABEL = re.compile(r"数|規模|件")
# What the parser writes in English (card.warnings), for the reader.
_WARNINGS = {
    "no (別添) 変更箇所 section": "変更箇所の節がありません。ファイルが途中で切れている可能性があります。",
}
MAX_RAW_LINES = 4


def unreadable_reason(f: Field, owner: str = "") -> str | None:
    """Why the parser's reading of this field cannot be shown as a value; None when it can."""
    value = unicodedata.normalize("NFKC", f.value or "").strip()
    if not value or f.selected:
        return None
    if _OPTION_MARK.search(value):
        rest = _MARKS.sub("", value)
        if not rest or rest.isdigit():
            return "選択肢の印だけが残り、どの選択肢かを読み取れません"
        if not _brackets_pair(value):
            return "選択肢の印が選択肢から離れています"
    label = unicodedata.normalize("NFKC", f.label or "")
    if _COUNT_RANGE.match(value) and not _COUNT_LABEL.search(label):
        return "人数の範囲が、人数ではない項目に付いています"
    return None


def label_lost(f: Field, owner: str) -> bool:
    """The field carries its block's name instead of a label: the parser lost which field this is."""
    label = " ".join((f.label or "").split())
    return bool(owner) and label == " ".join(owner.split())


def _brackets_pair(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch in "[［":
            depth += 1
        elif ch in "]］":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def raw_lines(assistant: Assistant, card_id: str, f: Field) -> str:
    """The field's lines as they stand in the file, numbered (at most MAX_RAW_LINES)."""
    try:
        lines = assistant.source(card_id).lines
    except Exception:  # noqa: BLE001 - the browser still shows the parse; the raw text is a bonus
        return ""
    first = max(1, f.line)
    last = min(len(lines), max(f.end_line or f.line, first), first + MAX_RAW_LINES - 1)
    numbers = [n for n in range(first, last + 1) if lines[n - 1].strip()]
    # The value may stand on a line of its own near the label (004's layout): show that line too.
    value = unicodedata.normalize("NFKC", f.value or "").strip()
    if value and not any(value in unicodedata.normalize("NFKC", lines[n - 1]) for n in numbers):
        near = sorted(range(max(1, first - 30), min(len(lines), last + 30) + 1), key=lambda n: abs(n - first))
        found = next((n for n in near if value in unicodedata.normalize("NFKC", lines[n - 1])), None)
        if found is not None:
            numbers = sorted({*numbers, found})
    return " ／ ".join(f"{n}行: {lines[n - 1].strip()}" for n in numbers)


def field_row(assistant: Assistant, card: Card, f: Field, owner: str) -> tuple[str, str, str, str]:
    """(label, value, chosen, note) as the browser shows them."""
    label = f.label
    if label_lost(f, owner):
        label = f"（{UNREADABLE}: 項目名）"
    why = unreadable_reason(f, owner)
    chosen = "、".join(f.selected) if f.selected else ""
    if why is None:
        value = f.value if f.value.strip() else "（空欄）"
        note = "項目名が読み取れず、どの項目の値か分かりません" if label != f.label else ""
        return label, value, chosen, note
    raw = raw_lines(assistant, card.id, f)
    return label, f"【{UNREADABLE}】", "", f"{why}。原文: {raw}" if raw else why


def browse_rows(assistant: Assistant, card: Card, kind: str | None) -> dict[str, Any]:
    """Everything the browser's tables show for one card."""
    meta = [[META_NAMES.get(k, k), v if v is not None else f"（{NOT_STATED_META}）"] for k, v in card.metadata().items()]
    sections = [
        ["\u3000" * (len(s.path) - 1) + s.title, s.breadcrumb, s.line, s.end_line, len(s.fields), len(s.records)]
        for s in card.walk()
    ]
    kinds = sorted({r.kind for r in card.records()})
    wanted = kind if kind in kinds else ALL_KINDS
    records: list[list[Any]] = []
    unreadable = 0
    for r in card.records():
        if (wanted == ALL_KINDS and r.kind == CHANGE_KIND) or (wanted != ALL_KINDS and r.kind != wanted):
            continue
        if not r.fields:
            records.append([r.title, r.breadcrumb, "", "（項目なし）", "", r.line, ""])
        for i, f in enumerate(r.fields):
            label, value, chosen, note = field_row(assistant, card, f, _owner(r))
            unreadable += value.startswith(f"【{UNREADABLE}")
            # The path once per record: the rows below it are the same block's fields.
            records.append([r.title, r.breadcrumb if i == 0 else "〃", label, value, chosen, f.line, note])
    fields = []
    for s in card.walk():
        for f in s.fields:
            label, value, chosen, note = field_row(assistant, card, f, s.title)
            fields.append([s.breadcrumb, label, value, chosen, f.line, note])
    counts = {k: len(card.records(k)) for k in kinds}
    summary = [f"**{md_escape(card.label)}** — ファイル {md_escape(card.source)}",
               "記録: " + ("、".join(f"{md_escape(k)} {n} 件" for k, n in counts.items()) or "なし")]
    if unreadable:
        summary.append(f"表示中の記録のうち {unreadable} 項目は、原文のレイアウトが崩れていて「{UNREADABLE}」と表示しています（右端の列に原文）。")
    for w in card.warnings:
        summary.append("読み取りの注意: " + md_escape(next((ja for en, ja in _WARNINGS.items() if w.startswith(en)), w)))
    return {"meta": meta, "sections": sections, "records": records, "fields": fields,
            "kinds": [ALL_KINDS, *kinds], "kind": wanted, "summary": "\n\n".join(summary)}


NOT_STATED_META = "記載なし"


def _owner(r: Record) -> str:
    """The block's name as a lost label would carry it: 「提供先2 市町村長」, 「システム1」."""
    return f"{r.title} {r.name}" if r.name and r.name not in r.title else r.title
