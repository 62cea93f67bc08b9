"""Typed extraction from a passage: dates, durations, frequencies, counts, ranges, phone numbers; and the
sentences of a passage.

Pure functions of normalised text. The patterns describe how the forms write values (和暦の日付, 「N年間」,
「年2回」, 「1万人以上10万人未満」), not how questions are phrased.
"""

from __future__ import annotations

import re

from qa.reading import NAME_CHARS

DATE = re.compile(r"(?:令和|平成|昭和)\s*(?:\d{1,2}|元)\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?|\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?|\d{4}/\d{1,2}/\d{1,2}")
DURATION = re.compile(
    r"(?:\d[\d,.]*|[一二三四五六七八九十百]+)\s*(?:年|か月|ヶ月|カ月|ケ月|箇月|週間|営業日|日|時間|分)(?:間)?(?:後|以内|経過後)?|永年|永久"
)
FREQUENCY = re.compile(
    r"(?:年|月|週|日)\s*(?:\d+|[一二三四五六七八九十]+)\s*回(?:以上)?|\d+\s*(?:分|時間|日|週間|か月|ヶ月|年)\s*(?:間隔|ごと|毎)|"
    r"(?:\d+\s*)?(?:年|月|週|日)ごと|毎(?:年|月|週|日|年度|営業日)(?:\s*\d+\s*回)?|随時|都度|常時|必要に応じて(?:都度)?|定期的に"
)
COUNT = re.compile(r"\(?\s*[\d,]+\s*\)?\s*(?:件|人|世帯|名|項目|か所|箇所|回|部|台|課|所)")
RANGE = re.compile(r"[\d,]+\s*万?\s*人以上(?:\s*[\d,]+\s*万?\s*人未満)?|[\d,]+\s*万?\s*人未満")
PHONE = re.compile(r"\d{2,5}\s*[-‐－ー]\s*\d{1,4}\s*[-‐－ー]\s*\d{3,4}")
_SENTENCE = re.compile(r"(?<=[。！？])|\n|(?<=\S)\s+(?=[・○●◆■□※]\s*\S)")

PATTERNS = {
    "date": DATE,
    "duration": DURATION,
    "frequency": FREQUENCY,
    "number": COUNT,
    "range": RANGE,
    "contact": PHONE,
}


# Names and nouns: what singles a block or a passage out (not verbs, not particles).
NOUN = re.compile(f"[{NAME_CHARS}・]{{2,}}")


UNFILLED_DATE = re.compile(r"(?:令和|平成|昭和)\s*(?:\d{1,2}|元)?\s*年\s*月|月\s+日")


def unfilled_date(text: str) -> bool:
    """A date the form leaves to be filled in (「令和6年 月 日」): its month or day has no number."""
    return UNFILLED_DATE.search(text) is not None


def extract(text: str, kind: str) -> list[str]:
    """Every value of answer type `kind` in `text`, in order; [] for types without a pattern."""
    pattern = PATTERNS.get(kind)
    if pattern is None:
        return []
    return [m.group(0).strip() for m in pattern.finditer(text)]


# Every kind of value the form writes with a pattern (a count, a range, a phone number, a date, a period, a frequency).
VALUE_KINDS = ("number", "range", "contact", "date", "duration", "frequency")


def holds_value(text: str) -> bool:
    """Whether `text` holds any value of a pattern: a count may be written as a range or a delay (1営業日後)."""
    return any(PATTERNS[k].search(text) for k in VALUE_KINDS)


def sentences(text: str) -> list[str]:
    """A passage cut at sentence ends, line ends and bullet marks; pieces of at least two characters."""
    return [s.strip() for s in _SENTENCE.split(text) if s and len(s.strip()) >= 2]


_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925}


def date_key(text: str | None) -> tuple[int, int, int]:
    """令和7年7月31日 → (2025, 7, 31), for comparing dates the reports write in Japanese eras."""
    if not text:
        return (0, 0, 0)
    m = re.search(r"(令和|平成|昭和)\s*(\d+|元)\s*年\s*(\d+)?\s*月?\s*(\d+)?", text)
    if m:
        year = 1 if m.group(2) == "元" else int(m.group(2))
        return (_ERAS[m.group(1)] + year, int(m.group(3) or 0), int(m.group(4) or 0))
    m = re.search(r"(\d{4})\s*[年/]\s*(\d{1,2})\s*[月/]\s*(\d{1,2})?", text)
    if m:
        return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return (0, 0, 0)


def number_key(text: str | None) -> float | None:
    """The first quantity of a value, for comparing: "1,000人以上1万人未満" → 1000, "30万人以上" → 300000."""
    if not text:
        return None
    m = re.search(r"([\d,]+(?:\.\d+)?)\s*(万)?", text)
    if not m:
        return None
    value = float(m.group(1).replace(",", ""))
    return value * 10_000 if m.group(2) else value
