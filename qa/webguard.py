"""An ASGI middleware in front of the web app: a request-body size limit and login throttling per client.

Gradio checks passwords as fast as they arrive and reads any request body whole. The app's own requests
are a few kilobytes (a question is at most 2,000 characters), so a body over `max_body_bytes` is refused
with 413 as soon as its declared or streamed size passes the limit; the upload route (a report added from
the page) has `max_upload_bytes`. After `max_failures` wrong logins in
a row from one client address, that client's logins are refused with 429 and a Retry-After for a lock-out
that doubles with each further lock-out (up to `max_lockout` seconds); a successful login clears the count.
Behind a reverse proxy every user shares the proxy's address: configure the proxy to throttle instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
LOGIN_PATHS = ("/login", "/login/")
# Gradio's upload route takes a report added from the page: its own, larger limit (the file and the
# multipart framing around it).
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/upload/")


@dataclass
class _Failures:
    count: int = 0
    lockouts: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed logins per client address and says how long a client is locked out (thread-safe)."""

    def __init__(self, max_failures: int = 5, lockout: float = 30.0, max_lockout: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.clock = clock
        self._clients: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait_for(self, client: str) -> float:
        """Seconds `client` must still wait before it may try to log in again (0: it may now)."""
        with self._lock:
            state = self._clients.get(client)
            return max(0.0, state.locked_until - self.clock()) if state else 0.0

    def failed(self, client: str) -> None:
        with self._lock:
            state = self._clients.setdefault(client, _Failures())
            state.count += 1
            if state.count >= self.max_failures:
                seconds = min(self.max_lockout, self.lockout * 2 ** state.lockouts)
                state.locked_until = self.clock() + seconds
                state.lockouts += 1
                state.count = 0
                log.warning("login: %s locked out for %.0f s after %d failed attempts", client, seconds,
                            self.max_failures)
            if len(self._clients) > 10_000:  # forget clients that are not locked out, oldest first
                now = self.clock()
                for key in [k for k, v in self._clients.items() if v.locked_until < now][:5_000]:
                    del self._clients[key]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


class RequestGuard:
    """The middleware: `FastAPI(middleware=[Middleware(RequestGuard, ...)])` (Gradio: `app_kwargs`)."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, max_upload_bytes: int | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.max_upload_bytes if path in UPLOAD_PATHS else self.max_body_bytes
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = True
            if too_large:
                await _respond(send, 413, {"detail": f"request body over {limit} bytes"})
                return
        login = scope.get("method") == "POST" and path in LOGIN_PATHS
        client = (scope.get("client") or ("unknown", 0))[0]
        if login:
            wait = self.throttle.wait_for(client)
            if wait > 0:
                await _respond(send, 429, {"detail": f"too many failed logins: try again in {wait:.0f} s"},
                               [(b"retry-after", str(max(1, round(wait))).encode())])
                return

        # The body is read here, up to the limit, and handed on whole: the app never sees a byte over it
        # (refusing from inside the app's own reads would come out as its parse errors, 400 or 422).
        body: list[Message] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            received += len(message.get("body", b""))
            if received > limit:
                await _respond(send, 413, {"detail": f"request body over {limit} bytes"})
                return
            body.append(message)
            more = bool(message.get("more_body", False))

        async def replay() -> Message:
            return body.pop(0) if body else await receive()

        status = 0

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, replay, watched_send)
        if login:
            if status == 200:
                self.throttle.succeeded(client)
            elif 400 <= status < 500:
                self.throttle.failed(client)


async def _respond(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": data})
