"""The one Assistant of the web app, loaded (or built) in a background thread while the page already answers.

Also swapped for a new one when a report is added from the page: sessions that are answering keep the
one they started with; the next question uses the new one.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from qa.webapp_text import md_escape

if TYPE_CHECKING:
    from qa.api import Assistant

log = logging.getLogger(__name__)

STAGES = {"reading": "評価書を読み込み中", "embedding": "意味検索のためのベクトルを計算中", "bm25": "語句の索引を作成中",
          "faiss": "意味検索の索引を作成中", "writing": "索引を保存中"}


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
        self._callbacks_done: list[Callable[[Assistant], None]] = []  # every callback, for replace()
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
            self._callbacks_done.append(callback)
            if self.assistant is None:
                self._callbacks.append(callback)
                return
        callback(self.assistant)

    def replace(self, assistant: Assistant) -> None:
        """Hand out `assistant` from now on (after a report was added); the on-ready callbacks run again."""
        with self._lock:
            self.assistant = assistant
            callbacks = list(self._callbacks_done)
        for callback in callbacks:
            callback(assistant)

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
            what = STAGES.get(self.stage, self.stage)
            return f"**準備中**: 索引を作成しています: {what} {self.done}/{self.total}（{elapsed:.0f} 秒経過）"
        return f"**準備中**: 索引を読み込んでいます…（{elapsed:.0f} 秒経過）"
