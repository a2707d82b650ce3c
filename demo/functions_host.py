"""A stand-in for the Azure Functions host: Event Grid webhook deliveries in, decorated functions called.

The real host receives Event Grid's POST at ``/runtime/webhooks/EventGrid?functionName=<name>``, turns
each element of the JSON array into a ``func.EventGridEvent`` and calls the function; a function that
raises makes the delivery fail (HTTP 500), so Event Grid delivers the event again later. This does the
same for ``function_app.py``, so that the demo runs the exact code Azure would.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

import function_app


def _event(raw: dict[str, Any]) -> func.EventGridEvent:
    time = raw.get("eventTime")
    # As the host does: fields are passed through as they came, whatever their shape.
    fields: dict[str, Any] = {
        "id": raw.get("id"),
        "data": raw.get("data"),
        "topic": raw.get("topic"),
        "subject": raw.get("subject"),
        "event_type": raw.get("eventType"),
        "event_time": dt.datetime.fromisoformat(time.replace("Z", "+00:00")) if isinstance(time, str) else None,
        "data_version": raw.get("dataVersion"),
    }
    return func.EventGridEvent(**fields)


class FunctionsHost:
    """Serves ``POST /runtime/webhooks/EventGrid`` on loopback and records every invocation: the event, whether
    it succeeded, what the function returned or raised, and how long it took. ``function`` is the function
    the host calls (``function_app.on_resource_change``; the soak benchmark passes ``triggers.handle_delivery``,
    which it calls, to see each outcome)."""

    def __init__(self, function: Callable[[func.EventGridEvent], object] = function_app.on_resource_change) -> None:
        self.function = function
        self.invocations: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/runtime/webhooks/EventGrid?functionName=on_resource_change"

    def __enter__(self) -> FunctionsHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _invoke(self, raw: dict[str, Any]) -> bool:
        started = time.monotonic()
        try:
            returned = self.function(_event(raw))
        except Exception as err:  # the host logs it and fails the delivery
            outcome = {"event": raw, "ok": False, "error": f"{type(err).__name__}: {err}", "raised": err}
        else:
            outcome = {"event": raw, "ok": True, "returned": returned}
        outcome["seconds"] = time.monotonic() - started
        with self._lock:
            self.invocations.append(outcome)
        return bool(outcome["ok"])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (
                    query.get("functionName") != ["on_resource_change"]
                    or self.headers.get("aeg-event-type") != "Notification"
                ):
                    self._answer(404)
                    return
                try:
                    events = json.loads(body)
                except ValueError:
                    self._answer(400)
                    return
                ok = all(host._invoke(raw) for raw in events if isinstance(raw, dict))
                self._answer(200 if ok else 500)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
