"""A local stand-in for a Teams Workflows webhook: accepts posts, keeps and saves each message, answers 202.

A Workflows webhook ("When a Teams webhook request is received") answers 202 Accepted and posts the card
later. This receiver does the first half: it records every message (with its arrival time, for tests of
pacing and retries), writes it to ``<directory>/NNN.json``, and answers 202, or, for tests, the scripted
replies it was given first (a 429 with ``Retry-After``, a 500).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Shaped like a real Workflows trigger URL, signature included: tests check it never reaches a log.
WEBHOOK_PATH = (
    "/workflows/5d1e0c2b9a8f4e7d/triggers/manual/paths/invoke"
    "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zq3xV8nT1kLm0pR4sW7yB2cF5hJ9dG6aE1uI3oK8vN0"
)


@dataclass(frozen=True)
class Reply:
    """A scripted answer: an HTTP status and, optionally, a ``Retry-After`` header."""

    status: int
    retry_after: str | None = None


@dataclass(frozen=True)
class Received:
    """One POST as it arrived: when (``time.monotonic()``), the status it got, and the JSON body."""

    at: float
    status: int
    message: Any

    @property
    def cards(self) -> list[dict[str, Any]]:
        attachments = self.message.get("attachments", []) if isinstance(self.message, dict) else []
        contents = (a.get("content") for a in attachments if isinstance(a, dict))
        return [content for content in contents if isinstance(content, dict)]


class TeamsReceiver:
    """Serves ``POST <WEBHOOK_PATH>`` on loopback; ``url`` is what ``TEAMS_WEBHOOK_URL`` should be."""

    def __init__(self, directory: Path | None = None, *, replies: Iterable[Reply] = ()) -> None:
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="teams-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.received: list[Received] = []
        self._replies = list(replies)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="teams-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{WEBHOOK_PATH}"

    @property
    def messages(self) -> list[Any]:
        """The messages that were accepted (202), in arrival order."""
        with self._lock:
            return [r.message for r in self.received if r.status == 202]

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The cards of the accepted messages, in arrival order."""
        with self._lock:
            return [card for r in self.received if r.status == 202 for card in r.cards]

    def __enter__(self) -> TeamsReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _record(self, path: str, body: bytes) -> tuple[int, str | None]:
        at = time.monotonic()
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        with self._lock:
            if path != WEBHOOK_PATH or message is None:
                status, retry_after = (404 if path != WEBHOOK_PATH else 400), None
            elif self._replies:
                reply = self._replies.pop(0)
                status, retry_after = reply.status, reply.retry_after
            else:
                status, retry_after = 202, None
            self.received.append(Received(at, status, message))
            if status == 202:
                count = sum(1 for r in self.received if r.status == 202)
                (self.directory / f"{count:03d}.json").write_text(json.dumps(message, indent=2) + "\n")
        return status, retry_after

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, retry_after = receiver._record(self.path, self.rfile.read(length))
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints the cards, not the requests."""

        return Handler
