"""Render Adaptive Cards with Microsoft's ``adaptivecards`` renderer (npm, ``tests/node``) in headless Chromium.

A page loads the renderer over file://, parses each card with a ``SerializationContext`` (parse problems
such as an unknown element type surface there, not through ``validateProperties``), renders it, and writes
what it rendered (text, height, parse warnings, script errors) into the DOM, which ``--dump-dom`` hands
back. The same page, sized to the card, gives the screenshot. The host configuration approximates Teams'
light theme; Teams itself renders with its own.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RENDERER = ROOT / "tests" / "node" / "node_modules" / "adaptivecards" / "dist"
CHROMIUM = "/usr/bin/chromium"
# sdk-notes section 6: no network, no first-run work, a fresh profile per run.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--allow-file-access-from-files",
    "--hide-scrollbars",
    "--virtual-time-budget=3000",
)
WIDTH = 560  # about a Teams channel message
MARGIN = 16

_OUT = re.compile(r'<pre id="out"[^>]*>(.*?)</pre>', re.S)

# Close to Teams' light theme (Segoe UI is not on Linux: DejaVu Sans stands in).
HOST_CONFIG: dict[str, Any] = {
    "fontFamily": "'Segoe UI', 'DejaVu Sans', sans-serif",
    "fontSizes": {"small": 12, "default": 14, "medium": 14, "large": 18, "extraLarge": 24},
    "fontWeights": {"lighter": 200, "default": 400, "bolder": 600},
    "spacing": {"small": 4, "default": 8, "medium": 16, "large": 20, "extraLarge": 24, "padding": 16},
    "separator": {"lineThickness": 1, "lineColor": "#E0E0E0"},
    "factSet": {
        "title": {"weight": "Bolder", "maxWidth": 160},
        "value": {"wrap": True},
        "spacing": 12,
    },
    "actions": {"maxActions": 5, "buttonSpacing": 8, "actionsOrientation": "Horizontal", "actionAlignment": "Left"},
    "containerStyles": {
        name: {
            "backgroundColor": background,
            "foregroundColors": {
                "default": {"default": "#242424", "subtle": "#616161"},
                "accent": {"default": "#5B5FC7", "subtle": "#4F52B2"},
                "good": {"default": "#0E700E", "subtle": "#0E700E"},
                "warning": {"default": "#835B00", "subtle": "#835B00"},
                "attention": {"default": "#C4314B", "subtle": "#C4314B"},
            },
        }
        for name, background in {
            "default": "#FFFFFF",
            "emphasis": "#F5F5F5",
            "good": "#E7F2DA",
            "attention": "#FDE7E9",
            "warning": "#FFF4CE",
            "accent": "#E8EBFA",
        }.items()
    },
}

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>rendering</title>
<link rel="stylesheet" href="{css}">
<script src="{js}"></script>
<style>
  body {{ margin: 0; background: #F5F5F5; font-family: 'Segoe UI', 'DejaVu Sans', sans-serif; }}
  .frame {{ width: {width}px; margin: {margin}px; background: #FFFFFF; border-radius: 6px; overflow: hidden;
           box-shadow: 0 1px 3px rgba(0, 0, 0, 0.18); }}
  /* Fact titles on one line, as Teams shows them (adaptivecards 3.0.6 ignores factSet.title.wrap). */
  .ac-fact-title .ac-textBlock {{ white-space: nowrap; }}
  .ac-pushButton {{ font-family: inherit; font-size: 14px; font-weight: 600; padding: 6px 12px; border-radius: 4px;
                    border: 1px solid #D1D1D1; background: #FFFFFF; color: #242424; }}
</style></head>
<body><div id="cards"></div><pre id="out" hidden></pre>
<script type="application/json" id="input">{cards}</script>
<script>
  const out = {{ results: [], errors: [] }};
  window.addEventListener("error", (e) => out.errors.push(String(e.message)));
  try {{
    const hostConfig = new AdaptiveCards.HostConfig({host_config});
    for (const json of JSON.parse(document.getElementById("input").textContent)) {{
      const context = new AdaptiveCards.SerializationContext();
      const card = new AdaptiveCards.AdaptiveCard();
      card.hostConfig = hostConfig;
      card.parse(json, context);
      const frame = document.createElement("div");
      frame.className = "frame";
      document.getElementById("cards").appendChild(frame);
      const element = card.render();
      if (element) frame.appendChild(element);
      const warnings = [];
      for (let i = 0; i < context.eventCount; i++) warnings.push(context.getEventAt(i).message);
      out.results.push({{ text: element ? element.innerText : "", height: frame.offsetHeight, warnings }});
    }}
  }} catch (e) {{
    out.errors.push(String(e && e.stack || e));
  }}
  document.getElementById("out").textContent = JSON.stringify(out);
  document.title = "rendered";
</script></body></html>
"""


class RenderError(RuntimeError):
    """Chromium or the renderer could not render the cards."""


@dataclass(frozen=True)
class Rendered:
    """What the renderer made of one card: its visible text, height in pixels, and parse warnings."""

    text: str
    height: int
    warnings: tuple[str, ...]


def render_cards(cards: Sequence[Mapping[str, Any]], *, width: int = WIDTH) -> list[Rendered]:
    """Render every card in one Chromium run; raise ``RenderError`` when the page itself failed."""
    with tempfile.TemporaryDirectory(prefix="cards-") as work:
        page = _page(Path(work), cards, width=width)
        dom = _chromium(Path(work), "--dump-dom", page.as_uri())
    match = _OUT.search(dom)
    if match is None or not match.group(1):
        raise RenderError(f"the page produced no result; the DOM starts with {dom[:300]!r}")
    out = json.loads(html.unescape(match.group(1)))
    if out["errors"]:
        raise RenderError(f"script errors while rendering: {out['errors']}")
    return [Rendered(r["text"], int(r["height"]), tuple(r["warnings"])) for r in out["results"]]


def screenshot(card: Mapping[str, Any], path: Path, *, width: int = WIDTH) -> Rendered:
    """Render one card to a PNG at ``path``, cropped to the card; return what was rendered."""
    rendered = render_cards([card], width=width)[0]
    if rendered.warnings:
        raise RenderError(f"the renderer warned: {rendered.warnings}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="card-") as work:
        page = _page(Path(work), [card], width=width)
        shot = Path(work) / "card.png"
        size = f"--window-size={width + 2 * MARGIN},{rendered.height + 2 * MARGIN}"
        _chromium(Path(work), size, f"--screenshot={shot}", page.as_uri())
        if not shot.is_file():
            raise RenderError("Chromium wrote no screenshot")
        shutil.copyfile(shot, path)
    return rendered


def _page(work: Path, cards: Sequence[Mapping[str, Any]], *, width: int) -> Path:
    if not (RENDERER / "adaptivecards.min.js").is_file():
        raise RenderError(f"the adaptivecards renderer is not installed at {RENDERER}: run `make setup`")
    # "</" cannot appear inside a <script> element: JSON allows it escaped.
    embedded = json.dumps(list(cards)).replace("</", "<\\/")
    page = work / "render.html"
    page.write_text(
        _PAGE.format(
            css=(RENDERER / "adaptivecards.css").as_uri(),
            js=(RENDERER / "adaptivecards.min.js").as_uri(),
            cards=embedded,
            host_config=json.dumps(HOST_CONFIG),
            width=width,
            margin=MARGIN,
        )
    )
    return page


def _chromium(work: Path, *args: str) -> str:
    if not Path(CHROMIUM).is_file():
        raise RenderError(f"{CHROMIUM} is missing: run `make setup` (it installs Debian's chromium)")
    profile = work / "profile"
    try:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RenderError("Chromium did not finish within 60 s") from err
    if done.returncode != 0:
        raise RenderError(f"Chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout
