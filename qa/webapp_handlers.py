"""The app's event handlers: one chat turn, opening a citation, the report browser, adding a report.

Plain methods on `ChatHandlers`, so that tests call them without a browser. Nothing here raises to the
page: bad input and failures become a Japanese message.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.webapp_loader import AssistantLoader
from qa.webapp_reports import ALL_KINDS, browse_rows
from qa.webapp_text import CONTROL, md_escape
from qa.webapp_viewer import EMPTY_VIEWER, answer_record, card_choices, card_label, parse_ref, render_answer_message, render_sources

if TYPE_CHECKING:
    from qa.api import Assistant

log = logging.getLogger(__name__)

EXAMPLES = [
    "生活保護関係情報を受け取る提供先はどこか",
    "川崎市の児童手当の評価書はいつ公表されましたか",
    "松戸市の住民基本台帳の事務の委託先はどこですか",
    "熊谷市の子育て支援に関する事務の評価書の公表日は",
    "豊中市の子ども医療費の事務の委託先をすべて教えてください",
    "公表日が最も新しい評価書はどれ？",
]
# A follow-up that asks across reports must not be narrowed to the previous answer's card.
_CONTROL = CONTROL
SCOPE_NONE = "対象: すべての評価書（質問に含まれる自治体名・事務名から判断します）"
MAX_UPLOAD = "20mb"


def _user_message(question: str) -> dict[str, str]:
    shown = question if len(question) <= 500 else question[:500] + f"…（全 {len(question):,} 文字）"
    return {"role": "user", "content": md_escape(CONTROL.sub("�", shown)) or "（空の質問）"}


def _assistant_message(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def question_error(raw: Any, max_chars: int) -> str:
    """Why a question was refused, in Japanese (clean_question's own message leads in English)."""
    if not isinstance(raw, str):
        why = "質問は文字で入力してください。"
    elif not CONTROL.sub("", raw).strip():
        why = "質問が空です。評価書についての質問を入力してください。"
    elif len(CONTROL.sub("", raw).strip()) > max_chars:
        why = f"質問が長すぎます（{len(CONTROL.sub('', raw).strip()):,} 文字）。{max_chars} 文字以内で入力してください。"
    else:
        why = "この質問は受け付けられません。言い換えてお試しください。"
    return f"【入力エラー】{why}"


@dataclass
class _Turn:
    cards: list[str] | None
    note: str


class ChatHandlers:
    """The app's event handlers, as plain methods so tests call them without a browser."""

    RECORD_KINDS_ALL = ALL_KINDS

    def __init__(self, loader: AssistantLoader, wait_step: float = 1.0) -> None:
        self.loader = loader
        self.wait_step = wait_step
        self._adding = threading.Lock()  # one report added (and indexed) at a time

    # -- the chat ----------------------------------------------------------------------------------------
    def _is_across(self, question: str) -> bool:
        from qa.reading import normalize

        from qa.catalog import catalog

        q = normalize(question).lower()
        cat = catalog()
        return any(w in q for w in (*cat.cross_cues, *cat.most_cues))

    def _names_no_card(self, assistant: Assistant, question: str) -> bool:
        """True when the question names no report (no municipality, no 事務): all cards are in scope."""
        scope = assistant.searcher.scope(question)
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
        """Stream one turn: (chat history, viewer HTML, session state, new textbox value) per step.

        Never raises: bad input and failures become a message in the chat. The answer is kept in the
        session under its number, so that its [n] links open its own sources later.
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
        viewer = self.open_citation(session.get("open"), session)[0]
        try:
            text = clean_question(question, max_chars)
        except QuestionError:
            history.append(_assistant_message(question_error(question, max_chars)))
            keep = CONTROL.sub("", raw) if raw.strip() and len(raw) <= 20_000 else ""
            yield list(history), viewer, session, keep
            return
        stripped_note = "質問に含まれていた制御文字を取り除いて検索しました。" if CONTROL.search(raw) else ""

        # The assistant may still be loading (or building the index): say so while waiting.
        history.append(_assistant_message("検索しています…"))
        while not self.loader.settled:
            history[-1] = _assistant_message(self.loader.status() + "\n\n（準備ができ次第お答えします）")
            yield list(history), viewer, session, ""
            self.loader.wait(self.wait_step)
        assistant = self.loader.assistant
        if assistant is None:
            history[-1] = _assistant_message(self.loader.status())
            yield list(history), viewer, session, ""
            return

        answer = None
        turn = _Turn(None, "")
        try:
            turn = self.plan(assistant, text, selected, session)
            yield list(history), viewer, session, ""
            for piece in assistant.stream(text, cards=turn.cards):
                if isinstance(piece, str):
                    history[-1] = _assistant_message(md_escape(piece) + " ▌")
                    yield list(history), viewer, session, ""
                else:
                    answer = piece
        except QuestionError:
            history[-1] = _assistant_message(question_error(text, max_chars))
        except CardNotFoundError:
            history[-1] = _assistant_message("【エラー】絞り込みに選んだ評価書が見つかりません。ページを再読み込みして選び直してください。")
        except QAError as exc:
            history[-1] = _assistant_message(f"【エラー】回答できませんでした。管理者に連絡してください（詳細: {md_escape(str(exc))}）")
        except Exception:  # noqa: BLE001 - the reader gets a message, the log gets the traceback
            log.exception("answering %r failed", text[:200])
            history[-1] = _assistant_message(
                "【エラー】内部エラーのため回答できませんでした。時間をおいて再度お試しください（詳細はサーバーのログにあります）。"
            )
        if answer is None:
            yield list(history), viewer, session, ""
            return
        number = int(session.get("count", 0)) + 1
        record = answer_record(answer, assistant)
        session["answers"] = {**session.get("answers", {}), str(number): record}
        session["count"] = number
        session["open"] = f"{number}-1"
        note = " ".join(x for x in (turn.note, md_escape(stripped_note)) if x)
        history[-1] = _assistant_message(render_answer_message(record, assistant, note, answer_no=number))
        if answer.cards:
            session["cards"] = list(answer.cards)
        session["last_question"] = text
        yield list(history), render_sources(record, assistant, text, 1, number), session, ""

    def open_citation(self, ref: str | None, session: dict | None) -> tuple[str, dict]:
        """The viewer for "k-n" (answer k's citation n); an unknown reference shows the latest answer."""
        session = dict(session or {})
        answers = session.get("answers") or {}
        parsed = parse_ref(ref)
        if parsed is None or str(parsed[0]) not in answers:
            if not answers:
                return EMPTY_VIEWER, session
            parsed = (int(session.get("count", 0)), 1)
        number, n = parsed
        record = answers.get(str(number))
        if record is None:
            return EMPTY_VIEWER, session
        n = min(max(n, 1), max(len(record["citations"]), 1))
        session["open"] = f"{number}-{n}"
        return render_sources(record, self.loader.assistant, record["question"], n, number), session

    def reset(self) -> tuple[list, str, dict, list]:
        """新しい会話 / the chat's clear button: the conversation, its answers and its report scope go. The question
        box is left alone: what is typed while the reset travels to the server and back is not wiped."""
        return [], EMPTY_VIEWER, {}, []

    def scope(self, session: dict | None) -> str:
        """The line under the chat saying which report a follow-up question will be about."""
        cards = (session or {}).get("cards") or []
        assistant = self.loader.assistant
        if not cards or assistant is None:
            return SCOPE_NONE
        names = "、".join(md_escape(card_label(assistant, c)) for c in cards)
        return f"対象: {names}（続けての質問もこの評価書について答えます。変えるときは「新しい会話」）"

    def exports(self, session: dict | None) -> tuple[Any, Any]:
        """The two download buttons for the answer shown in the viewer: Markdown always, CSV for lists."""
        import gradio as gr

        from qa.webapp_export import write_exports

        session = session or {}
        ref = parse_ref(session.get("open"))
        record = (session.get("answers") or {}).get(str(ref[0])) if ref else None
        if record is None:
            return gr.DownloadButton(value=None, visible=False), gr.DownloadButton(value=None, visible=False)
        md, csv_path = write_exports(record, ref[0])  # type: ignore[index]
        return (gr.DownloadButton(value=str(md), visible=True, label=f"回答 {ref[0]} を Markdown で保存"),  # type: ignore[index]
                gr.DownloadButton(value=str(csv_path) if csv_path else None, visible=csv_path is not None,
                                  label=f"回答 {ref[0]} の一覧を CSV で保存"))  # type: ignore[index]

    # -- page status ---------------------------------------------------------------------------------------
    def refresh(self) -> tuple[Any, ...]:
        """Status line, the two card pickers' choices once ready, and whether to keep polling."""
        import gradio as gr

        status = self.loader.status()
        if self.loader.ready:
            assert self.loader.assistant is not None
            choices = card_choices(self.loader.assistant)
            return status, gr.Dropdown(choices=choices), gr.Dropdown(choices=choices), gr.Timer(active=False)
        return status, gr.Dropdown(), gr.Dropdown(), gr.Timer(active=not self.loader.failed)

    # -- the report browser --------------------------------------------------------------------------------
    def browse(self, card_id: str | None, kind: str | None = None) -> tuple[Any, ...]:
        """Metadata, section tree, records (one row per field) and section fields of one card."""
        import gradio as gr

        assistant = self.loader.assistant
        empty = ([], [], [], [], gr.Dropdown())
        if assistant is None or not card_id:
            return (*empty, "評価書を選んでください。" if assistant else self.loader.status())
        card = assistant.cards.get(card_id)
        if card is None:
            return (*empty, f"評価書 {md_escape(card_id)} は索引にありません。")
        rows = browse_rows(assistant, card, kind)
        return (rows["meta"], rows["sections"], rows["records"], rows["fields"],
                gr.Dropdown(choices=rows["kinds"], value=rows["kind"]), rows["summary"])

    # -- adding a report -----------------------------------------------------------------------------------
    def add(self, file: Any, progress: Callable[..., Any] | None = None) -> tuple[Any, ...]:
        """Copy an uploaded report into the corpus folder, index it, and serve it: (message, pickers).

        A bad file is refused with a Japanese message and the folder and index are left as they were.
        """
        import gradio as gr

        from qa.api import Assistant, build
        from qa.errors import QAError
        from qa.ingest import add_report, remove_report
        from qa.webapp_loader import STAGES

        same = (gr.Dropdown(), gr.Dropdown())
        assistant = self.loader.assistant
        if assistant is None:
            return (f"【エラー】まだ準備中です。{self.loader.status()}", *same)
        path = _upload_path(file)
        if path is None:
            return ("【エラー】ファイルを選んでから「追加する」を押してください。", *same)
        settings = assistant.settings
        report = progress if progress is not None else (lambda *a, **k: None)
        if not self._adding.acquire(timeout=600):
            return ("【エラー】ほかの評価書を追加中です。しばらくしてからお試しください。", *same)
        try:
            report(0.02, desc="ファイルを確認しています")
            try:
                stored = add_report(path, settings.corpus_dir, name=path.name)
            except QAError as exc:
                return (f"【追加できません】{md_escape(str(exc))}", *same)
            if stored.stem in assistant.cards:
                return (f"この評価書（{md_escape(stored.name)}）は既に登録されています。", *same)

            def step(stage: str, done: int, total: int) -> None:
                low, high = _BANDS.get(stage, (0.05, 0.9))
                report(low + (high - low) * done / max(total, 1), desc=f"索引を更新: {STAGES.get(stage, stage)} {done}/{total}")

            try:
                built = build(settings, progress=step)
                refused = [s for s in built.skipped if s.split(":")[0] == stored.name]
                if refused:
                    raise QAError(refused[0])
                report(0.92, desc="新しい索引を読み込んでいます")
                fresh = Assistant.load(settings=settings)
                fresh.warm_up()
            except QAError as exc:
                remove_report(stored, settings.corpus_dir)
                return (f"【追加できません】{md_escape(stored.name)} を索引に登録できませんでした（{md_escape(str(exc))}）。", *same)
            self.loader.replace(fresh)
        finally:
            self._adding.release()
        card = fresh.cards[stored.stem]
        choices = card_choices(fresh)
        message = (f"**追加しました**: {md_escape(card.label)}（ファイル {md_escape(stored.name)}、"
                   f"評価書は全部で {len(fresh.cards)} 件）。「質問」で絞り込みに選べます。")
        return message, gr.Dropdown(choices=choices), gr.Dropdown(choices=choices, value=stored.stem)


# Where each build stage sits on the upload's progress bar.
_BANDS = {"reading": (0.05, 0.35), "embedding": (0.35, 0.7), "bm25": (0.7, 0.8), "faiss": (0.8, 0.85),
          "writing": (0.85, 0.9)}


def _upload_path(file: Any) -> Path | None:
    """The uploaded file's path, whatever form gradio handed it in (path, FileData, dict)."""
    if file is None:
        return None
    if isinstance(file, (list, tuple)):
        file = file[0] if file else None
    if isinstance(file, dict):
        file = file.get("path") or file.get("name")
    value = getattr(file, "path", None) or getattr(file, "name", None) or file
    return Path(value) if isinstance(value, (str, os.PathLike)) and str(value) else None
