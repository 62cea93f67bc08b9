"""What the chat shows: the answer bubble with its [n] links, and the source viewer beside it.

An answer is kept in the session as a plain record (`answer_record`): its text, its citations and what
retrieval found, so that every answer in the history can reopen its own sources later. A citation is
referred to as "k-n": answer k of the conversation, citation n of that answer; the [n] links carry it
(`href="#qa-cite-k-n"`) and a small script (VIEWER_JS) hands it to the server, which renders the viewer.
"""

from __future__ import annotations

import html
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from qa.webapp_text import highlight, md_escape, question_terms, reader_text, shorten, term_spans, mark_spans

if TYPE_CHECKING:
    from qa.answering.answer import Answer
    from qa.api import Assistant

NOT_STATED = "記載なし"
CONTEXT_LINES = 6  # lines of the report shown before and after the quoted ones
_LONG_LINE = 600  # a context line longer than this is shortened (some reports hold whole tables on one line)


def card_label(assistant: Assistant | None, card_id: str, fallback: str = "") -> str:
    """How a person names a report: municipality and 事務 ("熊谷市 子育て支援に関する事務 重点項目評価書")."""
    card = assistant.cards.get(card_id) if assistant is not None else None
    if card is None:
        return fallback or card_id
    return card.label


def card_choices(assistant: Assistant) -> list[tuple[str, str]]:
    """(title, card id) for the pickers; two reports with the same title are told apart by their file."""
    from collections import Counter

    seen = Counter(card.label for card in assistant.cards.values())
    return [(card.label if seen[card.label] == 1 else f"{card.label}（{card.source.rsplit('/', 1)[-1]}）", cid)
            for cid, card in assistant.cards.items()]


# -- the session's record of an answer --------------------------------------------------------------------


def answer_record(answer: Answer, assistant: Assistant | None) -> dict[str, Any]:
    """An Answer as the session keeps it: JSON-like, with the report titles it needs to be shown again."""
    citations = [asdict(c) if is_dataclass(c) else dict(c) for c in answer.citations]
    retrieved = [
        {"card": r.card, "source": r.source, "section": r.section, "text": shorten(r.text, 300), "line": r.line}
        for r in answer.retrieved[:5]
    ]
    ids = {c["card"] for c in citations} | {r["card"] for r in retrieved} | set(answer.cards or [])
    return {
        "question": answer.question,
        "answer": answer.answer,
        "abstained": answer.abstained,
        "kind": getattr(answer, "kind", "span"),
        "cards": list(answer.cards or []),
        "citations": citations,
        "retrieved": retrieved,
        "labels": {cid: card_label(assistant, cid, fallback=_title_of(citations, cid)) for cid in ids},
        "latency_ms": answer.latency_ms,
    }


def _title_of(citations: list[dict[str, Any]], card_id: str) -> str:
    return next((c.get("title") or "" for c in citations if c.get("card") == card_id), "")


def parse_ref(ref: str | None) -> tuple[int, int] | None:
    """"3-2" (or "3-2|nonce") → (3, 2); anything else → None."""
    head = (ref or "").split("|")[0].strip()
    parts = head.split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _ref_link(k: int | None, n: int, current: bool = False) -> str:
    if k is None:
        return f'<span class="qa-num">[{n}]</span>'
    cls = "qa-ref qa-current" if current else "qa-ref"
    return f'<a class="{cls}" href="#qa-cite-{k}-{n}" title="出典 [{n}] を原文表示で開く">[{n}]</a>'


# -- the chat bubble --------------------------------------------------------------------------------------


def render_answer_message(
    answer: Answer | dict[str, Any], assistant: Assistant | None, note: str = "", answer_no: int | None = None
) -> str:
    """The chat bubble: the answer (escaped), a marker if it abstains, and [n] links to its sources."""
    record = answer if isinstance(answer, dict) else answer_record(answer, assistant)
    labels = record.get("labels", {})
    lines: list[str] = []
    if record["abstained"]:
        lines += [f"**【{NOT_STATED}】** 評価書にこの質問への記載が見つかりませんでした。", ""]
    lines.append(md_escape(reader_text(record["answer"])) or "（回答なし）")
    groups: dict[str, list[str]] = {}
    for n, c in enumerate(record["citations"], start=1):
        where = c["section"].split(" > ")[-1] if c.get("section") else ""
        groups.setdefault(c["card"], []).append(f"{_ref_link(answer_no, n)} {md_escape(where)}（{c['line']} 行目）")
    if groups:
        lines += ["", "出典（番号を押すと、右に原文を表示します）:"]
        for cid, refs in groups.items():
            lines.append(f"- {md_escape(labels.get(cid) or card_label(assistant, cid))}: " + "、".join(refs))
    meta = []
    if record.get("cards"):
        meta.append("対象の評価書: " + "、".join(md_escape(labels.get(c) or card_label(assistant, c)) for c in record["cards"]))
    meta.append(f"回答時間 {record.get('latency_ms', 0) / 1000:.2f} 秒")
    lines += ["", f"<small>{' ・ '.join(meta)}</small>"]
    if note:
        lines += ["", f"<small>{note}</small>"]
    return "\n".join(lines)


# -- the viewer -------------------------------------------------------------------------------------------

EMPTY_VIEWER = (
    '<div class="qa-sources"><div class="qa-empty">質問すると、回答の根拠がここに表示されます。'
    "回答の [1] [2] … を押すと、その出典の原文（前後の行を含む）をここで確認できます。</div></div>"
)


def render_sources(
    answer: Answer | dict[str, Any] | None,
    assistant: Assistant | None,
    question: str = "",
    open_n: int = 1,
    answer_no: int | None = None,
) -> str:
    """The panel beside the chat: citation `open_n` in its report (breadcrumb, file, line, the lines
    around it with the quote marked), then every citation of the answer as [n] links, then what
    retrieval found when the answer has no (or few) citations."""
    if answer is None:
        return EMPTY_VIEWER
    record = answer if isinstance(answer, dict) else answer_record(answer, assistant)
    citations = record["citations"]
    labels = record.get("labels", {})
    terms = question_terms(question or record["question"])
    parts = ['<div class="qa-sources">']
    if answer_no is not None:
        parts.append(f'<div class="qa-for">質問 {answer_no}:「{html.escape(shorten(record["question"], 80))}」の出典</div>')
    if record["abstained"]:
        parts.append(f'<div class="qa-abstain">【{NOT_STATED}】 評価書にこの質問への記載が見つかりませんでした。</div>')
    if citations:
        n = min(max(open_n, 1), len(citations))
        parts.append(_viewer(citations[n - 1], n, len(citations), assistant, labels, terms, answer_no))
        parts.append(f"<h3>この回答の出典 {len(citations)} 件</h3><ol class='qa-cite-list'>")
        previous_card = None
        for i, c in enumerate(citations, start=1):
            label = labels.get(c["card"]) or card_label(assistant, c["card"], c.get("title", ""))
            # The report's title once per run of citations from it; the place as its last two steps.
            card = f'<span class="qa-card-small">{html.escape(label)}</span> ' if c["card"] != previous_card else ""
            previous_card = c["card"]
            parts.append(
                f'<li class="qa-cite{" qa-open" if i == n else ""}">{_ref_link(answer_no, i, current=i == n)} '
                f'<span class="qa-quote-short">「{highlight(shorten(c["quote"], 80), terms)}」</span>'
                f'<span class="qa-section" title="{html.escape(_crumb(c))}">{html.escape(_crumb_tail(c))}</span>'
                f'{card}<span class="qa-file">{html.escape(c["source"])}</span> <span class="qa-line">{c["line"]} 行目</span>'
                "</li>"
            )
        parts.append("</ol>")
    elif not record["abstained"]:
        parts.append('<div class="qa-empty">この回答には引用がありません。下の「検索で見つかった箇所」で確認してください。</div>')
    near = record.get("retrieved") or []
    if near:
        heading = "近い記載（参考）" if record["abstained"] else "検索で見つかった箇所（参考）"
        items = []
        for r in near:
            label = labels.get(r["card"]) or card_label(assistant, r["card"])
            line = f'<span class="qa-line">{r["line"]} 行目</span>' if r.get("line") else ""
            items.append(
                '<div class="qa-near">'
                f'<span class="qa-card">{html.escape(label)}</span>'
                f'<span class="qa-section">{html.escape(r["section"] or "（節なし）")}</span>'
                f'<div class="qa-quote">{highlight(r["text"], terms)}</div>'
                f'<span class="qa-file">{html.escape(r["source"])}</span> {line}'
                "</div>"
            )
        opened = " open" if record["abstained"] or not citations else ""
        parts.append(f"<details{opened}><summary><b>{heading}</b></summary>{''.join(items)}</details>")
    parts.append("</div>")
    return "".join(parts)


def _crumb(c: dict[str, Any]) -> str:
    """The citation's place: its section breadcrumb, and the field label when the answerer gives one."""
    crumb = c.get("section") or "（節なし）"
    label = c.get("label")
    if label and not crumb.endswith(label):
        crumb = f"{crumb} > {label}"
    return crumb


def _crumb_tail(c: dict[str, Any], steps: int = 2) -> str:
    parts = _crumb(c).split(" > ")
    return (" > ".join(parts[-steps:]) if len(parts) > steps else " > ".join(parts))


def _viewer(
    c: dict[str, Any], n: int, total: int, assistant: Assistant | None, labels: dict[str, str], terms: list[str],
    answer_no: int | None,
) -> str:
    label = labels.get(c["card"]) or card_label(assistant, c["card"], c.get("title", ""))
    first_q = int(c["line"])
    last_q = int(c.get("end_line") or first_q + c["quote"].count("\n"))
    nav = []
    if answer_no is not None and total > 1:
        if n > 1:
            nav.append(f'<a class="qa-ref qa-nav" href="#qa-cite-{answer_no}-{n - 1}" title="前の出典">‹ 前</a>')
        nav.append(f'<span class="qa-pos">{n} / {total}</span>')
        if n < total:
            nav.append(f'<a class="qa-ref qa-nav" href="#qa-cite-{answer_no}-{n + 1}" title="次の出典">次 ›</a>')
    head = (
        f'<div class="qa-viewer" data-ref="{answer_no or 0}-{n}">'
        f'<div class="qa-viewer-head"><span class="qa-num">[{n}]</span> <span class="qa-card">{html.escape(label)}</span>'
        f'<span class="qa-navs">{"".join(nav)}</span></div>'
        f'<div class="qa-section">{html.escape(_crumb(c))}</div>'
        f'<blockquote class="qa-quote">{highlight(c["quote"], terms)}</blockquote>'
        f'<div class="qa-where"><span class="qa-file">{html.escape(c["source"])}</span> '
        f'<span class="qa-line">{first_q}{f"–{last_q}" if last_q > first_q else ""} 行目</span></div>'
    )
    return head + _context(assistant, c, first_q, last_q) + "</div>"


def _context(assistant: Assistant | None, c: dict[str, Any], first_q: int, last_q: int) -> str:
    """The report's lines around the quote, numbered; the quoted lines highlighted, the quote marked."""
    if assistant is None or not first_q:
        return ""
    try:
        lines = assistant.source(c["card"]).lines
    except Exception as exc:  # noqa: BLE001 - a changed or unreadable file: say so instead of the context
        return f'<div class="qa-empty">原文を表示できません（{html.escape(type(exc).__name__)}）: 索引を作り直してください。</div>'
    last_q = min(max(last_q, first_q), len(lines))
    first = max(1, first_q - CONTEXT_LINES)
    last = min(len(lines), last_q + CONTEXT_LINES)
    quoted = "\n".join(lines[first_q - 1 : last_q])
    at = quoted.find(c["quote"])
    if at < 0:  # matched on the normalised text: mark its words instead
        spans_in_quote = term_spans(quoted, [c["quote"]]) or [(0, len(quoted))]
    else:
        spans_in_quote = [(at, at + len(c["quote"]))]
    rows = []
    offset = 0
    for no in range(first, last + 1):
        text = lines[no - 1]
        hit = first_q <= no <= last_q
        if hit:
            spans = [(max(s - offset, 0), min(e - offset, len(text))) for s, e in spans_in_quote
                     if s < offset + len(text) + 1 and e > offset]
            body = mark_spans(text, spans, "qa-q")
            offset += len(text) + 1
        else:
            body = html.escape(shorten(text, _LONG_LINE))
        cls = "qa-ctx-line qa-hit" if hit else "qa-ctx-line"
        rows.append(f'<div class="{cls}" data-line="{no}"><span class="qa-lineno">{no}</span>{body or "&nbsp;"}</div>')
    return (
        f'<div class="qa-doc-head">原文 {first}–{last} 行目（引用した行を色付きで表示）</div>'
        f'<div class="qa-doc">{"".join(rows)}</div>'
    )


CSS = """
.gradio-container { max-width: 1680px !important; }
#qa-layout { align-items: flex-start; }
#qa-side { position: sticky; top: 0.5rem; }
#qa-sources { max-height: calc(100vh - 2rem); overflow-y: auto; }
#qa-chat .bubble-wrap { padding-top: 2.4rem; }  /* keep the first message clear of the chat's buttons */
.qa-status { font-size: 0.95em; }
.qa-scope { font-size: 0.92em; }
.qa-hidden { display: none !important; }
.qa-sources { font-size: 0.95em; line-height: 1.6; }
.qa-sources h3 { margin: 0.8em 0 0.3em; font-size: 1.0em; }
.qa-for { font-size: 0.9em; opacity: 0.85; margin-bottom: 0.3em; }
.qa-viewer { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6em 0.8em; }
.qa-viewer-head { display: flex; gap: 0.4em; align-items: baseline; flex-wrap: wrap; }
.qa-navs { margin-left: auto; display: flex; gap: 0.6em; font-size: 0.9em; }
.qa-num { font-weight: bold; }
.qa-card { font-weight: bold; }
.qa-section { display: block; font-size: 0.9em; color: var(--body-text-color-subdued); }
.qa-viewer .qa-section { color: var(--body-text-color); font-weight: 600; margin-top: 0.2em; }
.qa-quote { margin: 0.4em 0; padding: 0.2em 0.6em; border-left: 3px solid var(--color-accent); white-space: pre-wrap; }
.qa-where { font-size: 0.88em; }
.qa-file { font-family: var(--font-mono); font-size: 0.88em; }
.qa-line { font-weight: bold; font-size: 0.9em; }
.qa-doc-head { font-size: 0.85em; margin-top: 0.5em; opacity: 0.85; }
.qa-doc { font-family: var(--font-mono); font-size: 0.82em; border: 1px solid var(--border-color-primary);
  border-radius: 6px; max-height: 26rem; overflow: auto; }
.qa-ctx-line { white-space: pre-wrap; word-break: break-all; padding: 0 0.4em; }
.qa-ctx-line.qa-hit { background: rgba(255, 214, 90, 0.35); border-left: 3px solid #d97706; }
.qa-lineno { display: inline-block; min-width: 3.2em; margin-right: 0.6em; text-align: right; opacity: 0.6; user-select: none; }
.qa-sources mark, #qa-chat mark { background: #ffe58a; color: #000; padding: 0 1px; }
mark.qa-q { background: #ffb938; }
.qa-cite-list { padding-left: 1.2em; margin: 0; }
.qa-cite { margin: 0.2em 0 0.5em; }
.qa-cite.qa-open { background: rgba(255, 214, 90, 0.15); }
.qa-card-small { font-size: 0.85em; opacity: 0.85; }
a.qa-ref { font-weight: bold; text-decoration: none; cursor: pointer; padding: 0 0.1em; border-radius: 3px; }
a.qa-ref:hover, a.qa-ref.qa-current { background: var(--color-accent-soft); }
.qa-abstain { font-weight: bold; border: 2px solid #d97706; border-radius: 6px; padding: 0.4em 0.8em;
  margin-bottom: 0.6em; background: rgba(217, 119, 6, 0.08); }
.qa-near { border: 1px dashed var(--border-color-primary); border-radius: 6px; padding: 0.4em 0.7em; margin: 0.4em 0; }
.qa-empty { opacity: 0.8; }
#qa-add-status { min-height: 5rem; }
#qa-records td, #qa-fields td { vertical-align: top; }
"""

# Clicking an [n] link anywhere (chat or viewer) opens that citation: the reference goes into a hidden
# textbox, whose input event runs the server's handler. Capture phase, so the chat's own link handling
# (a new tab) never sees the click.
# The page's built-in texts (copy, clear, upload…) are shown in Japanese whatever the browser's language:
# gradio picks its language from the browser, so its own locale switch (changeLocale, exported by its
# core module) is called once the page is up; two accessibility labels gradio leaves untranslated are
# set here too. If a gradio version moves these, the page still works, in the browser's language.
VIEWER_JS = """
async () => {
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#qa-cite-"]') : null;
    if (!a) return;
    ev.preventDefault();
    ev.stopPropagation();
    const ref = a.getAttribute('href').slice('#qa-cite-'.length);
    const box = document.querySelector('#qa-open-ref textarea, #qa-open-ref input');
    if (!box) return;
    box.value = ref + '|' + Date.now();
    box.dispatchEvent(new Event('input', { bubbles: true }));
  }, true);
  const labels = {
    'Gradio footer navigation': 'ページ下部のリンク', 'chatbot conversation': '会話',
    'Copy conversation': '会話をコピー', 'Copy message': 'メッセージをコピー',
    'Copied conversation': 'コピーしました', 'Copied message': 'コピーしました', 'Copied!': 'コピーしました', 'Close': '閉じる',
  };
  const relabel = () => {
    for (const [en, ja] of Object.entries(labels)) {
      for (const attr of ['aria-label', 'title']) {
        document.querySelectorAll('[' + attr + '="' + en + '"]').forEach((el) => el.setAttribute(attr, ja));
      }
    }
  };
  // The progress overlay's own words (gradio writes them in English whatever the language).
  const words = [
    [/^processing \\|/, '処理中 |'], [/^queue: /, '順番待ち: '], [/^Error\\s*$/, 'エラー'], [/^Warning\\s*$/, '注意'],
    [/^File\\(s\\) exceed the maximum allowed size of (.+?): (.*)$/, 'ファイルが大きすぎます（$1 まで）: $2'],
  ];
  const retext = () => {
    document.querySelectorAll('.progress-text, .meta-text, .meta-text-center, .toast-title, .toast-message-text').forEach((el) => {
      for (const node of el.childNodes) {
        if (node.nodeType !== 3) continue;
        for (const [en, ja] of words) {
          if (en.test(node.nodeValue)) node.nodeValue = node.nodeValue.replace(en, ja);
        }
      }
    });
  };
  const fix = () => { relabel(); retext(); };
  fix();
  new MutationObserver(fix).observe(document.body, { childList: true, subtree: true, characterData: true });
  try {
    const url = performance.getEntriesByType('resource').map((e) => e.name)
      .find((n) => /\\/assets\\/core-[^/]+\\.js(\\?|$)/.test(n));
    if (url) {
      const core = await import(url);
      if (core.changeLocale) core.changeLocale('ja');
    }
  } catch (e) { console.warn('qa: could not switch the page to Japanese', e); }
}
"""
