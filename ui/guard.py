"""What the server refuses before Gradio sees a request: uploads to a read-only app, and login guessing.

An ASGI middleware, so a refused upload is never read (not one byte reaches Gradio's temp folder) and a
throttled login costs nothing. Wrong logins from one client address are free up to `free` times; after
that each one makes the next wait twice as long, up to `max_wait` seconds, and an address that stops
failing is forgotten after `forget_after` seconds: the right user is slowed, never locked out for good.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class LoginThrottle:
    """Failed logins per client address, and how long that address must wait before the next try."""

    free: int = 5
    max_wait: float = 60.0
    forget_after: float = 900.0
    max_clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait before its next login is even checked (0: go ahead)."""
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
            now = self.clock()
            if count and now - last > self.forget_after:
                del self._failures[client]
                return 0.0
            if count < self.free:
                return 0.0
            return max(0.0, last + min(self.max_wait, 2.0 ** (count - self.free)) - now)

    def record(self, client: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures.pop(client, None)
                return
            count = self._failures.pop(client, (0, 0.0))[0] + 1
            self._failures[client] = (count, self.clock())
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        if count >= self.free:
            log.warning("%d failed logins in a row from %s; slowing it down", count, client)


async def _discard_body(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _refuse(send: Send, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    body = text.encode()
    raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The middleware: `Middleware(Guard, read_only=..., throttle=...)` in Gradio's `app_kwargs`."""

    def __init__(self, app: ASGIApp, read_only: bool = False, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.read_only = read_only
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).rstrip("/")
        if self.read_only and path.endswith("/upload"):
            await _discard_body(receive)  # read and dropped, so the client gets the answer, not a reset
            await _refuse(send, 403, "This app is read-only: it accepts no uploads.")
            return
        if not path.endswith("/login"):
            await self.app(scope, receive, send)
            return
        client = str((scope.get("client") or ("unknown",))[0])
        wait = self.throttle.wait(client)
        if wait > 0:
            seconds = math.ceil(wait)
            await _refuse(
                send, 429, f"Too many failed logins: try again in {seconds} s.", {"retry-after": str(seconds)}
            )
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, watch)
        if status:
            self.throttle.record(client, ok=status[0] < 400)
