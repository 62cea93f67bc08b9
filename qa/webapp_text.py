"""Text helpers of the web app: escaping for Markdown and HTML, the question's words, highlighting.

Everything shown comes from the reports or from the user, so every piece of text is escaped before it
reaches the page: HTML-escaped in the viewer, Markdown-escaped in the chat.
"""

from __future__ import annotations

import html
import logging
import re

log = logging.getLogger(__name__)

# What the API strips from a question (qa.api.clean_question); tabs and newlines are ordinary text.
# Lone surrogates too: they come from JSON "\ud800" escapes and no response encoder accepts them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff\ud800-\udfff]")
_HIRAGANA_ONLY = re.compile(r"^[\u3041-\u309f\u30fcー]+$")
_STOP_TERMS = {
    "評価書", "重点項目評価書", "全項目評価書", "特定個人情報保護評価書", "どこ", "どれ", "いつ", "教え", "教える", "ください",
    "事務", "関する", "について", "which", "what", "where", "when", "who", "how", "the", "and", "was", "were", "are",
    "does", "report", "reports", "most", "with", "from", "that", "this", "there", "情報", "特定個人情報", "関係",
    "ファイル", "特定個人情報ファイル", "名称", "記載", "場合",
}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")
# Counts of the answerer's internal units ("（35ブロック）", "4 distinct, 4 blocks") mean nothing to a reader.
_JARGON = re.compile(r"[（(]\s*\d+\s*(ブロック|blocks?)\s*[）)]|\(\s*\d+\s*distinct,\s*\d+\s*blocks?\s*\)")


def md_escape(text: str) -> str:
    """Text shown literally by a Markdown renderer: HTML-escaped, Markdown punctuation backslash-escaped."""
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def reader_text(text: str) -> str:
    """An answer as a reader sees it: without counts of the answerer's internal units."""
    return re.sub(r"\s{2,}", " ", _JARGON.sub("", text)).strip()


def question_terms(question: str) -> list[str]:
    """The question's content words, longest first, for highlighting: no particles, no generic words."""
    from qa.reading import normalize
    from qa.segment import default_segmenter

    text = CONTROL.sub("", question or "")[:2000]
    try:
        tokens = default_segmenter().surface_tokens(text)
        words = [t.surface for t in tokens] + [t.normalized for t in tokens]
        # Runs of adjacent content words, as one phrase: 生活保護 関係 情報 → 生活保護関係情報.
        run: list[str] = []
        last_end = -1
        for t in [*tokens, None]:
            content = t is not None and not _HIRAGANA_ONLY.match(t.surface)
            if content and (not run or t.start == last_end):
                run.append(t.surface)
            else:
                if len(run) > 1:
                    words.append("".join(run))
                run = [t.surface] if content else []
            if t is not None:
                last_end = t.end
    except Exception:  # noqa: BLE001 - highlighting is a nicety; fall back to whitespace words
        log.warning("segmenter unavailable for highlighting", exc_info=True)
        words = re.findall(r"\w+", text)
    terms: set[str] = set()
    for word in words:
        w = normalize(word).strip()
        if len(w) < 2 or _HIRAGANA_ONLY.match(w) or w.lower() in _STOP_TERMS or w.isdigit():
            continue
        if w.isascii() and len(w) < 3:
            continue
        terms.add(w)
    return sorted(terms, key=lambda t: (-len(t), t))


def term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Raw character ranges of `text` where a term occurs (matched on the NFKC view), merged."""
    if not terms or not text:
        return []
    from qa.reading import normalize_with_map

    norm, back = normalize_with_map(text)
    low = norm.lower()
    spans: list[tuple[int, int]] = []
    for term in terms:
        t = term.lower()
        start = low.find(t)
        while start != -1:
            end = start + len(t)
            spans.append((back[start], back[end - 1] + 1))
            start = low.find(t, end)
    return merge_spans(spans)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def mark_spans(text: str, spans: list[tuple[int, int]], cls: str = "") -> str:
    """`text` as HTML with each span wrapped in <mark>; everything else escaped."""
    out: list[str] = []
    pos = 0
    attr = f' class="{cls}"' if cls else ""
    for s, e in merge_spans(spans):
        if e <= pos:
            continue
        s = max(s, pos)
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark{attr}>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


def highlight(text: str, terms: list[str]) -> str:
    """`text` as HTML, every occurrence of a term wrapped in <mark>; everything else escaped."""
    return mark_spans(text, term_spans(text, terms))


def shorten(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
