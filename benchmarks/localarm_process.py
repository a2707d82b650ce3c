"""localarm in a process of its own, for the benchmarks: its work must not share their process's GIL."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REMEDIATOR = "0f5e7c1a-9d3b-4e2f-8a6c-1b2d3e4f5a6b"


class Localarm:
    """``python -m localarm serve`` from a scenario document, with ARM's throttling on."""

    def __init__(
        self,
        document: dict[str, Any],
        workdir: Path,
        *,
        lro_seconds: float = 0.0,
        events_url: str | None = None,
        event_deliveries: int = 1,
    ) -> None:
        scenario = workdir / "estate.json"
        scenario.write_text(json.dumps(document))
        ready = workdir / "ready.json"
        ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "localarm", "serve", "--scenario-file", str(scenario), "--throttle"]
        command += ["--lro-seconds", str(lro_seconds), "--ready-file", str(ready)]
        if events_url:
            command += ["--events-url", events_url, "--event-deliveries", str(event_deliveries)]
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError("localarm did not start")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.endpoint, self.ca_bundle = info["endpoint"], info["caBundle"]

    def control(self, route: str, body: Any = None, method: str = "GET") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoint}/_localarm/{route}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        context = ssl.create_default_context(cafile=self.ca_bundle)
        with urllib.request.urlopen(request, context=context) as response:
            text = response.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
