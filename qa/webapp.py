"""The Gradio app: a chat over the reports with checkable sources, and a browser of the parsed reports.

    python app.py [--host 127.0.0.1] [--port 7860]        # or: qa serve
    QA_AUTH="user:password" python app.py                  # optional login

One `Assistant` per process, shared by every session (it is thread-safe); what belongs to one user
(the chat, the cards the conversation is about) lives in that session's `gr.State`. The index is loaded
(or built, when missing or stale) in a background thread while the page already answers, with a status
line; questions asked meanwhile wait for it.

Everything shown comes from the reports, so every piece of text is escaped before it reaches the page:
HTML-escaped in the sources panel, Markdown-escaped in the chat.
"""

from __future__ import annotations

import html
import inspect
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from a tool for privacy officers

if TYPE_CHECKING:
    import argparse

    import gradio as gr

    from qa.answering.answer import Answer
    from qa.api import Assistant
    from qa.config import Settings

log = logging.getLogger(__name__)

NOT_STATED = "記載なし / not stated"
EXAMPLES = [
    "生活保護関係情報を受け取る提供先はどこか",
    "川崎市の児童手当の評価書はいつ公表されましたか",
    "松戸市の住民基本台帳の事務の委託先はどこですか",
    "熊谷市の子育て支援に関する事務の評価書の公表日は",
    "豊中市の子ども医療費の事務の委託先をすべて教えてください",
    "公表日が最も新しい評価書はどれ？",
]
# A follow-up that asks across reports must not be narrowed to the previous answer's card.
_ACROSS = (
    "どの評価書", "評価書はどれ", "どれですか", "すべての評価書", "全ての評価書", "各評価書", "評価書はいくつ", "いくつの評価書",
    "最も新しい", "最も古い", "一番新しい", "一番古い", "どの自治体", "どの市", "どこの自治体", "他の評価書", "ほかの評価書",
    "which report", "all reports", "every report", "most recent", "newest", "oldest", "across",
)
# What the API strips from a question (qa.api.clean_question); tabs and newlines are ordinary text.
# Lone surrogates too: they come from JSON "\ud800" escapes and no response encoder accepts them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff\ud800-\udfff]")
_HIRAGANA_ONLY = re.compile(r"^[\u3041-\u309f\u30fcー]+$")
_STOP_TERMS = {
    "評価書", "重点項目評価書", "全項目評価書", "特定個人情報保護評価書", "どこ", "どれ", "いつ", "教え", "教える", "ください",
    "事務", "関する", "について", "which", "what", "where", "when", "who", "how", "the", "and", "was", "were", "are",
    "does", "report", "reports", "most", "with", "from", "that", "this", "there", "情報", "特定個人情報", "関係",
    "ファイル", "特定個人情報ファイル", "名称", "記載", "場合",
}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")
SOURCE_CONTEXT_LINES = 2

CSS = """
#qa-chat .bubble-wrap { padding-top: 2.4rem; }  /* keep the first message clear of the chat's buttons */
.qa-status { font-size: 0.95em; }
.qa-sources { font-size: 0.95em; line-height: 1.6; }
.qa-sources h3 { margin: 0.2em 0 0.4em; font-size: 1.05em; }
.qa-cite, .qa-near { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 0.5em 0.8em;
  margin: 0 0 0.6em; }
.qa-cite .qa-num { font-weight: bold; margin-right: 0.4em; }
.qa-card { font-weight: bold; }
.qa-section { display: block; font-size: 0.92em; }
.qa-quote { margin: 0.4em 0; padding: 0.2em 0.6em; border-left: 3px solid var(--color-accent);
  white-space: pre-wrap; font-size: 1.02em; }
.qa-file { font-family: var(--font-mono); font-size: 0.88em; }
.qa-line { font-weight: bold; }
.qa-score { font-size: 0.85em; opacity: 0.8; }
.qa-sources mark { background: #ffe58a; color: #000; padding: 0 1px; }
.qa-abstain { font-weight: bold; font-size: 1.1em; border: 2px solid #d97706; border-radius: 6px;
  padding: 0.4em 0.8em; margin-bottom: 0.6em; background: rgba(217, 119, 6, 0.08); }
.qa-context { font-family: var(--font-mono); font-size: 0.85em; margin: 0.3em 0; }
.qa-ctx-line { white-space: pre-wrap; }
.qa-ctx-line.qa-hit { background: rgba(255, 229, 138, 0.35); }
.qa-lineno { display: inline-block; min-width: 3.5em; text-align: right; opacity: 0.7; user-select: none; }
.qa-empty { opacity: 0.8; }
"""


# -- the one Assistant, loaded in the background --------------------------------------------------------


class AssistantLoader:
    """Calls the factory once in a background thread; reports its progress; hands out the Assistant.

    The factory is `factory(progress=callback)` when it accepts a `progress` argument (the callback takes
    stage, done, total), else `factory()`. An Assistant instance may be given instead of a factory.
    """

    def __init__(self, factory: Callable[..., Assistant] | Assistant, console: bool = False) -> None:
        self._factory = factory
        self._console = console
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self.assistant: Assistant | None = None
        self.error: BaseException | None = None
        self.stage = "starting"
        self.done = 0
        self.total = 0
        self.started_at = time.perf_counter()
        self.seconds: float | None = None
        self._callbacks: list[Callable[[Assistant], None]] = []
        if not callable(factory):  # an Assistant already
            self.assistant = factory  # type: ignore[assignment]
            self.seconds = 0.0
            self._started = True
            self._ready.set()

    def start(self) -> AssistantLoader:
        with self._lock:
            if self._started:
                return self
            self._started = True
        threading.Thread(target=self._run, name="qa-assistant-loader", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            factory = self._factory
            takes_progress = False
            try:
                params = inspect.signature(factory).parameters  # type: ignore[arg-type]
                takes_progress = "progress" in params or any(
                    p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
                )
            except (TypeError, ValueError):
                pass
            assistant = factory(progress=self._progress) if takes_progress else factory()  # type: ignore[operator]
            with self._lock:
                self.assistant = assistant
                callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(assistant)
                except Exception:  # noqa: BLE001
                    log.exception("an on-ready callback failed")
            self.stage = "ready"
        except BaseException as exc:  # noqa: BLE001 - shown in the status line instead of killing the thread
            log.exception("the assistant could not be loaded")
            self.error = exc
            self.stage = "failed"
        finally:
            self.seconds = time.perf_counter() - self.started_at
            if self._console:
                sys.stderr.write("\n" if self.stage != "failed" else f"\nError: {self.error}\n")
                sys.stderr.flush()
            self._ready.set()

    def on_ready(self, callback: Callable[[Assistant], None]) -> None:
        """Call `callback(assistant)` once loaded (now, if it already is), before questions are answered."""
        with self._lock:
            if self.assistant is None:
                self._callbacks.append(callback)
                return
        callback(self.assistant)

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total
        if self._console:
            sys.stderr.write(f"\r[index] {stage} {done}/{total}        ")
            sys.stderr.flush()

    @property
    def settled(self) -> bool:
        """Loading has finished, well or badly."""
        return self._ready.is_set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.assistant is not None

    @property
    def failed(self) -> bool:
        return self._ready.is_set() and self.assistant is None

    def wait(self, timeout: float | None = None) -> Assistant | None:
        self._ready.wait(timeout)
        return self.assistant

    def status(self) -> str:
        """One line for the page: building/loading with progress, ready, or failed with what to do."""
        if self.ready:
            assert self.assistant is not None
            n = len(self.assistant.cards)
            took = f"（読み込み {self.seconds:.1f} 秒）" if self.seconds else ""
            return f"**準備完了**: 評価書 {n} 件を検索できます{took}"
        if self.failed:
            return f"**【エラー】索引を読み込めませんでした**: {md_escape(str(self.error))}。 サーバーのログを確認し、`qa index` を実行してから再起動してください。"
        elapsed = time.perf_counter() - self.started_at
        if self.total:
            what = {"reading": "評価書を読み込み中", "embedding": "ベクトル化中", "bm25": "BM25 索引を作成中",
                    "faiss": "ベクトル索引を作成中", "writing": "索引を保存中"}.get(self.stage, self.stage)
            return f"**準備中**: 索引を作成しています: {what} {self.done}/{self.total}（{elapsed:.0f} 秒経過）"
        return f"**準備中**: 索引を読み込んでいます…（{elapsed:.0f} 秒経過）"


# -- text helpers: terms, escaping, highlighting ---------------------------------------------------------


def md_code(text: str) -> str:
    """`text` (a file name) in code style, shown literally: no backtick can close it, no entity is decoded
    twice, no Markdown inside it is rendered."""
    return f"<code>{md_escape(text)}</code>"


def md_escape(text: str) -> str:
    """Text shown literally by a Markdown renderer: HTML-escaped, Markdown punctuation backslash-escaped."""
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def question_terms(question: str) -> list[str]:
    """The question's content words, longest first, for highlighting: no particles, no generic words."""
    from qa.reading import normalize
    from qa.segment import default_segmenter

    text = _CONTROL.sub("", question or "")[:2000]
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


def _term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
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
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def highlight(text: str, terms: list[str]) -> str:
    """`text` as HTML, every occurrence of a term wrapped in <mark>; everything else escaped."""
    out: list[str] = []
    pos = 0
    for s, e in _term_spans(text, terms):
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _shorten(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- what the chat shows -----------------------------------------------------------------------------------


def card_label(assistant: Assistant | None, card_id: str, fallback: str = "") -> str:
    """"熊谷市 子育て支援に関する事務 重点項目評価書"; the id when the card is unknown."""
    card = assistant.cards.get(card_id) if assistant is not None else None
    if card is None:
        return fallback or card_id
    return card.label


def card_choices(assistant: Assistant) -> list[tuple[str, str]]:
    return [(f"{card.label}（{cid[:3]}）", cid) for cid, card in assistant.cards.items()]


def _source_context(assistant: Assistant, card_id: str, line: int, quote: str, terms: list[str]) -> str:
    """The file's lines around the quote, numbered, the quote's lines marked: the claim in its context."""
    if not line:
        return ""
    try:
        lines = assistant.source(card_id).lines
    except Exception as exc:  # noqa: BLE001 - a changed or unreadable file: say so instead of the context
        return f'<div class="qa-empty">原文を表示できません: {html.escape(str(exc))}</div>'
    last_quote = min(len(lines), line + quote.count("\n"))
    first = max(1, line - SOURCE_CONTEXT_LINES)
    last = min(len(lines), last_quote + SOURCE_CONTEXT_LINES)
    rows = []
    for n in range(first, last + 1):
        body = highlight(lines[n - 1], terms) or "&nbsp;"
        cls = "qa-ctx-line qa-hit" if line <= n <= last_quote else "qa-ctx-line"
        rows.append(f'<div class="{cls}"><span class="qa-lineno">{n}</span> {body}</div>')
    return (
        f"<details><summary>原文の前後（{first}–{last} 行）</summary>"
        f'<div class="qa-context">{"".join(rows)}</div></details>'
    )


def render_sources(answer: Answer | None, assistant: Assistant | None, question: str = "") -> str:
    """The sources panel: each citation (card, section breadcrumb, highlighted quote, file and line)."""
    if answer is None:
        return '<div class="qa-sources"><div class="qa-empty">質問すると、回答の根拠（評価書・節・原文の引用・行番号）がここに表示されます。</div></div>'
    terms = question_terms(question or answer.question)
    parts = ['<div class="qa-sources">']
    if answer.abstained:
        parts.append(
            f'<div class="qa-abstain">【{NOT_STATED}】 評価書にこの質問への記載が見つかりませんでした。</div>'
        )
    if answer.citations:
        parts.append(f"<h3>出典 {len(answer.citations)} 件（評価書の原文からの引用）</h3>")
        for i, c in enumerate(answer.citations, start=1):
            card = assistant.cards.get(c.card) if assistant is not None else None
            municipality = (card.municipality if card is not None else None) or "（自治体の記載なし）"
            title = (card.title if card is not None else None) or c.title or c.card
            context = _source_context(assistant, c.card, c.line, c.quote, terms) if assistant is not None else ""
            parts.append(
                '<div class="qa-cite">'
                f'<span class="qa-num">[{i}]</span>'
                f'<span class="qa-card">{html.escape(municipality)} ・ {html.escape(title)}</span>'
                f'<span class="qa-section">節: {html.escape(c.section or "（節なし）")}</span>'
                f'<blockquote class="qa-quote">{highlight(c.quote, terms)}</blockquote>'
                f'<span class="qa-file">{html.escape(c.source)}</span> '
                f'<span class="qa-line">{c.line} 行目</span>'
                f"{context}"
                "</div>"
            )
    elif not answer.abstained:
        parts.append('<div class="qa-empty">この回答には引用がありません。下の検索結果で確認してください。</div>')
    near = answer.retrieved[:5]
    if near:
        heading = "最も近い節（参考）" if answer.abstained else "検索で見つかった節（参考）"
        items = []
        for r in near:
            label = card_label(assistant, r.card)
            line = f'<span class="qa-line">{r.line} 行目</span>' if r.line else ""
            items.append(
                '<div class="qa-near">'
                f'<span class="qa-card">{html.escape(label)}</span>'
                f'<span class="qa-section">節: {html.escape(r.section or "（節なし）")}</span>'
                f'<div class="qa-quote">{highlight(_shorten(r.text, 300), terms)}</div>'
                f'<span class="qa-file">{html.escape(r.source)}</span> {line}'
                f'<span class="qa-score">（スコア {r.score:.3f}）</span>'
                "</div>"
            )
        opened = " open" if answer.abstained else ""
        parts.append(f"<details{opened}><summary><b>{heading}</b></summary>{''.join(items)}</details>")
    parts.append("</div>")
    return "".join(parts)


def render_answer_message(answer: Answer, assistant: Assistant | None, note: str = "") -> str:
    """The chat bubble: the answer (escaped), a marker if it abstains, short source references."""
    lines: list[str] = []
    if answer.abstained:
        lines.append(f"**【{NOT_STATED}】**")
        lines.append("")
    lines.append(md_escape(answer.answer.strip()) or md_escape("（回答なし）"))
    # Short references, grouped by report: [1] 提供先1（994 行目）; the full quotes are in the sources panel.
    groups: dict[str, list[str]] = {}
    for i, c in enumerate(answer.citations, start=1):
        where = c.section.split(" > ")[-1] if c.section else ""
        groups.setdefault(c.card, []).append(f"\\[{i}\\] {md_escape(where)}（{c.line} 行目）")
    if groups:
        lines += ["", "出典（引用と原文の前後は下の「出典」欄に）:"]
        for cid, refs in groups.items():
            lines.append(f"- {md_escape(card_label(assistant, cid))}: " + "、".join(refs))
    meta = []
    if answer.cards:
        meta.append("対象の評価書: " + "、".join(md_escape(card_label(assistant, c)) for c in answer.cards))
    meta.append(f"{answer.latency_ms:.0f} ms")
    lines += ["", f"<small>{' ・ '.join(meta)}</small>"]
    if note:
        lines += ["", f"<small>{note}</small>"]
    return "\n".join(lines)


def _user_message(question: str) -> dict[str, str]:
    shown = question if len(question) <= 500 else question[:500] + f"…（全 {len(question):,} 文字）"
    return {"role": "user", "content": md_escape(_CONTROL.sub("�", shown)) or "（空の質問）"}


def _assistant_message(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@dataclass
class _Turn:
    cards: list[str] | None
    note: str


class ChatHandlers:
    """The app's event handlers, as plain methods so tests call them without a browser."""

    def __init__(self, loader: AssistantLoader, wait_step: float = 1.0) -> None:
        self.loader = loader
        self.wait_step = wait_step

    # -- the chat ----------------------------------------------------------------------------------------
    def _is_across(self, question: str) -> bool:
        from qa.reading import normalize

        q = normalize(question).lower()
        return any(w.lower() in q for w in _ACROSS)

    def _names_no_card(self, assistant: Assistant, question: str) -> bool:
        """True when the question names no report (no municipality, no 事務): all cards are in scope."""
        try:
            scope = assistant.searcher.scope(question)
        except Exception:  # noqa: BLE001 - an older/newer searcher: treat as naming nothing
            log.debug("scope failed", exc_info=True)
            return True
        return scope.inferred and set(scope.cards) >= set(assistant.cards)

    def plan(self, assistant: Assistant, question: str, selected: list[str] | None, session: dict) -> _Turn:
        """Which cards to ask about: the user's filter; else the previous answer's cards for a follow-up
        that names no report; else none (the answerer decides from the question)."""
        chosen = [c for c in (selected or []) if c]
        if chosen:
            names = "、".join(md_escape(card_label(assistant, c)) for c in chosen)
            return _Turn(chosen, f"絞り込み: {names}")
        previous = [c for c in (session.get("cards") or []) if c in assistant.cards]
        if previous and not self._is_across(question) and self._names_no_card(assistant, question):
            names = "、".join(md_escape(card_label(assistant, c)) for c in previous)
            return _Turn(
                previous,
                f"前の質問と同じ評価書（{names}）について答えました。別の評価書について聞くときは自治体名や事務名を入れるか、「新しい会話」を押してください。",
            )
        return _Turn(None, "")

    def respond(
        self, question: str | None, history: list | None, selected: list[str] | None, session: dict | None
    ) -> Iterator[tuple[list, str, dict, Any]]:
        """Stream one turn: (chat history, sources HTML, session state, new textbox value) per step.

        Never raises: bad input and failures become a message in the chat.
        """
        from qa.api import clean_question
        from qa.errors import CardNotFoundError, QAError, QuestionError

        history = [m for m in (history or []) if isinstance(m, dict)]
        session = dict(session or {})
        raw = question if isinstance(question, str) else ""
        history.append(_user_message(raw))
        max_chars = 2000
        if self.loader.assistant is not None:
            max_chars = self.loader.assistant.settings.max_question_chars
        try:
            text = clean_question(question, max_chars)
        except QuestionError as exc:
            history.append(_assistant_message(f"【入力エラー】質問を受け付けられませんでした: {md_escape(str(exc))}"))
            keep = _CONTROL.sub("", raw) if raw.strip() and len(raw) <= 20_000 else ""
            yield list(history), render_sources(None, None), session, keep
            return
        stripped_note = ""
        if _CONTROL.search(raw):
            stripped_note = "質問に含まれていた制御文字を取り除いて検索しました。"

        # The assistant may still be loading (or building the index): say so while waiting.
        history.append(_assistant_message("検索しています…"))
        while not self.loader.settled:
            history[-1] = _assistant_message(self.loader.status() + "\n\n（準備ができ次第お答えします）")
            yield list(history), render_sources(None, None), session, ""
            self.loader.wait(self.wait_step)
        assistant = self.loader.assistant
        if assistant is None:
            history[-1] = _assistant_message(self.loader.status())
            yield list(history), render_sources(None, None), session, ""
            return

        answer = None
        turn = _Turn(None, "")
        try:
            turn = self.plan(assistant, text, selected, session)
            history[-1] = _assistant_message("検索しています…")
            yield list(history), render_sources(None, None), session, ""
            for piece in assistant.stream(text, cards=turn.cards):
                if isinstance(piece, str):
                    history[-1] = _assistant_message(md_escape(piece) + " ▌")
                    yield list(history), render_sources(None, None), session, ""
                else:
                    answer = piece
        except QuestionError as exc:
            history[-1] = _assistant_message(f"【入力エラー】質問を受け付けられませんでした: {md_escape(str(exc))}")
        except CardNotFoundError as exc:
            history[-1] = _assistant_message(f"【エラー】絞り込みの評価書が見つかりません: {md_escape(str(exc))}")
        except QAError as exc:
            history[-1] = _assistant_message(f"【エラー】回答できませんでした: {md_escape(str(exc))}")
        except Exception:  # noqa: BLE001 - the reader gets a message, the log gets the traceback
            log.exception("answering %r failed", text[:200])
            history[-1] = _assistant_message(
                "【エラー】内部エラーのため回答できませんでした。時間をおいて再度お試しください（詳細はサーバーのログにあります）。"
            )
        if answer is None:
            yield list(history), render_sources(None, None), session, ""
            return
        note = " ".join(x for x in (turn.note, md_escape(stripped_note)) if x)
        history[-1] = _assistant_message(render_answer_message(answer, assistant, note))
        if answer.cards:
            session["cards"] = list(answer.cards)
        session["last_question"] = text
        yield list(history), render_sources(answer, assistant, text), session, ""

    def reset(self) -> tuple[list, str, dict, str, list]:
        return [], render_sources(None, None), {}, "", []

    # -- page status ---------------------------------------------------------------------------------------
    def refresh(self) -> tuple[Any, ...]:
        """Status line, the two card pickers' choices once ready, and whether to keep polling."""
        import gradio as gr

        status = self.loader.status()
        if self.loader.ready:
            assert self.loader.assistant is not None
            choices = card_choices(self.loader.assistant)
            return (
                status,
                gr.Dropdown(choices=choices),
                gr.Dropdown(choices=choices),
                gr.Timer(active=False),
            )
        return status, gr.Dropdown(), gr.Dropdown(), gr.Timer(active=not self.loader.failed)

    # -- the report browser --------------------------------------------------------------------------------
    RECORD_KINDS_ALL = "（変更箇所以外のすべて）"

    def browse(self, card_id: str | None, kind: str | None = None) -> tuple[Any, ...]:
        """Metadata, section tree, records (one row per field) and section fields of one card."""
        import gradio as gr

        assistant = self.loader.assistant
        empty = ([], [], [], [], gr.Dropdown(), "")
        if assistant is None or not card_id:
            return empty[:-1] + ("評価書を選んでください。" if assistant else self.loader.status(),)
        card = assistant.cards.get(card_id)
        if card is None:
            return empty[:-1] + (f"評価書 {md_escape(card_id)} は索引にありません。",)
        meta_names = {"id": "ID", "source": "ファイル", "kind": "種類", "number": "評価書番号", "title": "評価書名",
                      "evaluator": "評価実施機関名", "municipality": "自治体", "published": "公表日", "affair": "事務"}
        meta = [[meta_names.get(k, k), v if v is not None else f"({NOT_STATED})"] for k, v in card.metadata().items()]
        sections = [
            ["\u3000" * (len(s.path) - 1) + s.title, s.breadcrumb, s.line, s.end_line, len(s.fields), len(s.records)]
            for s in card.walk()
        ]
        kinds = sorted({r.kind for r in card.records()})
        wanted = kind or self.RECORD_KINDS_ALL
        records = []
        for r in card.records():
            if wanted == self.RECORD_KINDS_ALL and r.kind == "変更箇所":
                continue
            if wanted != self.RECORD_KINDS_ALL and r.kind != wanted:
                continue
            for f in r.fields or [None]:
                if f is None:
                    records.append([r.title, r.breadcrumb, "", "", "", r.line])
                    continue
                chosen = "、".join(f.selected) if f.selected else ""
                records.append([r.title, r.breadcrumb, f.label, f.value, chosen, f.line])
        fields = [
            [s.breadcrumb, f.label, f.value, "、".join(f.selected) if f.selected else "", f.line]
            for s in card.walk()
            for f in s.fields
        ]
        counts = {k: len(card.records(k)) for k in kinds}
        summary = [f"**{md_escape(card.label)}** — {md_code(card.source)}",
                   "記録: " + ("、".join(f"{md_escape(k)} {n}" for k, n in counts.items()) or "なし")]
        if card.warnings:
            summary.append("読み取りの注意: " + "； ".join(md_escape(w) for w in card.warnings))
        kind_choices = [self.RECORD_KINDS_ALL, *kinds]
        return (
            meta,
            sections,
            records,
            fields,
            gr.Dropdown(choices=kind_choices, value=wanted if wanted in kind_choices else self.RECORD_KINDS_ALL),
            "\n\n".join(summary),
        )


# -- the Blocks app -----------------------------------------------------------------------------------------


def build_app(
    assistant_factory: Callable[..., Assistant] | Assistant | AssistantLoader,
    *,
    concurrency: int = 8,
    max_queue: int = 200,
    console: bool = False,
    start: bool = True,
) -> gr.Blocks:
    """The app. `assistant_factory` is called once, in the background (see AssistantLoader).

    With start=False the caller starts `demo.qa_loader` itself (serve() does, once the server is up:
    loading competes with the server's start-up for the interpreter). The handlers are reachable as
    `demo.qa_handlers` (a ChatHandlers) for in-process use.
    """
    import gradio as gr

    loader = assistant_factory if isinstance(assistant_factory, AssistantLoader) else AssistantLoader(
        assistant_factory, console=console
    )
    if start:
        loader.start()
    handlers = ChatHandlers(loader)
    ready_now = loader.wait(0.05 if start else 0) is not None
    choices = card_choices(loader.assistant) if ready_now and loader.assistant is not None else []

    with gr.Blocks(title="特定個人情報保護評価書 QA", analytics_enabled=False) as demo:
        gr.Markdown(
            "## 特定個人情報保護評価書 QA\n"
            "評価書（マイナンバーを扱う事務の特定個人情報保護評価書）の記載から答えます。"
            "回答の根拠は下の「出典」欄に、評価書名・節・原文の引用・行番号で示します。"
            f"評価書に記載がなければ「{NOT_STATED}」と答えます。"
        )
        status = gr.Markdown(loader.status(), elem_id="qa-status", elem_classes=["qa-status"])
        session = gr.State({})
        with gr.Tab("質問 / Chat", id="chat"):
            chatbot = gr.Chatbot(
                label="会話",
                elem_id="qa-chat",
                height=460,
                latex_delimiters=[],
                sanitize_html=True,
                feedback_options=None,
                buttons=["copy", "copy_all"],
                placeholder="評価書について質問してください（例は下にあります）。",
            )
            with gr.Row():
                question = gr.Textbox(
                    label="質問",
                    placeholder="例: 生活保護関係情報を受け取る提供先はどこか",
                    lines=2,
                    max_lines=6,
                    scale=5,
                    elem_id="qa-question",
                    submit_btn=False,
                )
                with gr.Column(scale=1, min_width=140):
                    send = gr.Button("質問する", variant="primary", elem_id="qa-send")
                    clear = gr.Button("新しい会話", elem_id="qa-clear")
            cards = gr.Dropdown(
                choices=choices,
                value=[],
                multiselect=True,
                label="評価書で絞り込む（空なら質問から判断）",
                info="選ぶと、その評価書だけから答えます。空のままなら、質問に含まれる自治体名・事務名から判断し、続けての質問では前の回答の評価書を引き継ぎます。",
                elem_id="qa-cards",
            )
            examples = gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="質問の例（クリックで質問）")
            sources = gr.HTML(render_sources(None, None), elem_id="qa-sources", label="出典", js_on_load=None)

        with gr.Tab("評価書の中身 / Reports", id="reports"):
            gr.Markdown(
                "評価書がどう読み取られたか（`qa inspect` と同じ内容）: 表紙の情報、節の構成、提供先・移転先・委託事項などの記録。"
                "行番号は評価書ファイルの行です。"
            )
            with gr.Row():
                card_pick = gr.Dropdown(choices=choices, label="評価書", elem_id="qa-card-pick", scale=3)
                kind_pick = gr.Dropdown(
                    choices=[ChatHandlers.RECORD_KINDS_ALL], value=ChatHandlers.RECORD_KINDS_ALL,
                    label="記録の種類", scale=2, elem_id="qa-kind-pick",
                )
            summary = gr.Markdown()
            meta = gr.Dataframe(headers=["項目", "値"], datatype=["str", "str"], label="メタデータ", interactive=False,
                                wrap=True, elem_id="qa-meta", column_widths=["20%", "80%"])
            with gr.Accordion("節の構成", open=True):
                tree = gr.Dataframe(
                    headers=["節", "パス", "開始行", "終了行", "項目数", "記録数"],
                    datatype=["str", "str", "number", "number", "number", "number"],
                    interactive=False, wrap=True, max_height=420, elem_id="qa-tree",
                    column_widths=["34%", "42%", "6%", "6%", "6%", "6%"],
                )
            with gr.Accordion("記録（提供先・移転先・委託事項・システムなど）", open=True):
                records = gr.Dataframe(
                    headers=["記録", "パス", "項目", "値", "選択", "行"],
                    datatype=["str", "str", "str", "str", "str", "number"],
                    interactive=False, wrap=True, max_height=520, elem_id="qa-records",
                    column_widths=["13%", "20%", "15%", "40%", "7%", "5%"],
                )
            with gr.Accordion("節の項目", open=False):
                fields = gr.Dataframe(
                    headers=["節", "項目", "値", "選択", "行"],
                    datatype=["str", "str", "str", "str", "number"],
                    interactive=False, wrap=True, max_height=520, elem_id="qa-fields",
                    column_widths=["25%", "18%", "44%", "8%", "5%"],
                )
        timer = gr.Timer(1.0, active=not loader.settled)

        def _set_choices(assistant: Assistant) -> None:
            # New sessions (and API clients, which never see the page's load event) validate against these.
            cards.choices = card_pick.choices = card_choices(assistant)

        loader.on_ready(_set_choices)

        chat_io = dict(
            fn=handlers.respond,
            inputs=[question, chatbot, cards, session],
            outputs=[chatbot, sources, session, question],
            show_progress="minimal",
            concurrency_id="chat",
        )
        gr.on([question.submit, send.click], api_name="chat", **chat_io)
        examples.load_input_event.then(api_visibility="private", **chat_io)
        clear.click(handlers.reset, None, [chatbot, sources, session, question, cards], api_visibility="private",
                    queue=False)

        refresh_io = dict(fn=handlers.refresh, inputs=None, outputs=[status, cards, card_pick, timer],
                          show_progress="hidden", api_visibility="private", concurrency_limit=None)
        demo.load(**refresh_io)
        timer.tick(**refresh_io)

        browse_io = dict(fn=handlers.browse, inputs=[card_pick, kind_pick],
                         outputs=[meta, tree, records, fields, kind_pick, summary],
                         show_progress="minimal", concurrency_limit=None)
        card_pick.change(api_visibility="private", **browse_io)
        kind_pick.input(api_visibility="private", **browse_io)

        # A plain endpoint for scripts: the Answer as JSON.
        def ask_json(q: str, only: list[str] | None = None) -> dict:
            from qa.errors import QAError

            assistant = loader.wait(600)
            if assistant is None:
                return {"error": loader.status()}
            if only is not None and not (isinstance(only, list) and all(isinstance(c, str) for c in only)):
                return {"error": "only: a list of card ids, e.g. [\"003\"], or null"}
            try:
                return assistant.ask(q, cards=only or None).to_dict()
            except QAError as exc:
                return {"error": str(exc)}

        api_q = gr.Textbox(visible=False)
        api_cards = gr.JSON(visible=False)
        api_out = gr.JSON(visible=False)
        api_btn = gr.Button(visible=False)
        api_btn.click(ask_json, [api_q, api_cards], api_out, api_name="ask", concurrency_id="chat")

    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    demo.qa_handlers = handlers  # type: ignore[attr-defined]
    demo.qa_loader = loader  # type: ignore[attr-defined]
    return demo


# -- launching ---------------------------------------------------------------------------------------------


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """QA_AUTH: "user:password", several separated by commas; None or empty: no login."""
    if not value or not value.strip():
        return None
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            from qa.errors import QAError

            raise QAError('QA_AUTH must be "user:password" (several separated by commas)')
        pairs.append((user, password))
    return pairs


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    auth: list[tuple[str, str]] | None = None,
    block: bool = True,
    quiet: bool = False,
) -> Any:
    """Start the server: local only unless told, never shared publicly, no uploads, no telemetry."""
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        auth_message="評価書 QA にログインしてください" if auth else None,
        prevent_thread_lock=not block,
        inbrowser=False,
        show_error=False,
        quiet=quiet,
        css=CSS,
        footer_links=["api"],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        max_file_size="1kb",  # the app takes no files
        # Request bodies limited to 1 MiB and logins throttled per client (qa/webguard.py).
        app_kwargs={"middleware": [_guard_middleware()]},
    )


def _guard_middleware() -> Any:
    from starlette.middleware import Middleware

    from qa.webguard import RequestGuard

    return Middleware(RequestGuard)


def serve(
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    auth: list[tuple[str, str]] | None | str = "env",
    concurrency: int = 8,
    block: bool = True,
    quiet: bool = False,
) -> gr.Blocks:
    """Load (or build) the index in the background, and serve the app on host:port.

    auth="env" reads QA_AUTH; a list of (user, password) pairs or None sets it directly.
    """
    from qa.api import Assistant
    from qa.config import Settings

    settings = settings or Settings.load()
    if auth == "env":
        auth = parse_auth(os.environ.get("QA_AUTH"))
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        log.warning("serving on %s without a login: anyone who can reach this host can use the app (set QA_AUTH)", host)

    def factory(progress: Callable[[str, int, int], None]) -> Assistant:
        return Assistant.load(settings=settings, build_if_needed=True, progress=progress)

    if not quiet:
        sys.stderr.write(f"loading the index from {settings.index_dir} (built first if missing or stale)\n")
    demo = build_app(factory, concurrency=concurrency, console=not quiet, start=False)
    launch(demo, host, port, auth=auth, block=False, quiet=quiet)  # type: ignore[arg-type]
    demo.qa_loader.start()  # type: ignore[attr-defined]
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("QA_HOST", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("QA_PORT", "7860")), help="default 7860")
    parser.add_argument("--concurrency", type=int, default=8, help="questions answered at once (default 8)")


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qa.config import Settings

    settings = Settings.load(
        root=Path(args.root) if getattr(args, "root", None) else None,
        corpus_dir=getattr(args, "corpora", None),
        index_dir=getattr(args, "index", None),
        embedding_model=getattr(args, "embedding_model", None),
    )
    serve(settings, args.host, args.port, concurrency=args.concurrency)
    return 0


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """`qa serve`: wire into qa.cli's subparsers (`add_serve_command(sub)`)."""
    p = subparsers.add_parser("serve", help="start the web app (chat with sources, report browser)")
    _add_arguments(p)
    p.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python app.py`: same as `qa serve`, with --root/--index too."""
    import argparse

    from qa.errors import QAError

    parser = argparse.ArgumentParser(prog="app.py", description="Web app: questions over 特定個人情報保護評価書")
    parser.add_argument("--root", help="project folder (default: found from the current folder)")
    parser.add_argument("--corpora", help="folder of reports (default: <root>/corpora)")
    parser.add_argument("--index", help="index folder (default: <root>/index)")
    parser.add_argument("-v", "--verbose", action="store_true")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return cmd_serve(args)
    except QAError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
