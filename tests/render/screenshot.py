"""``python -m tests.render.screenshot``: render the README's sample cards to ``docs/card.png`` (a restored
remediation) and ``docs/digest.png`` (a nightly sweep) with the same renderer the tests use."""

from __future__ import annotations

import sys

from remediation.alerts import teams_message
from tests.render import samples
from tests.render.harness import ROOT, screenshot

SHOTS = {"card.png": "restored", "digest.png": "digest"}


def main() -> int:
    cards = samples.cards()
    for filename, name in SHOTS.items():
        path = ROOT / "docs" / filename
        card = teams_message(cards[name])["attachments"][0]["content"]
        rendered = screenshot(card, path)
        print(f"{path.relative_to(ROOT)}: the {name} card, {rendered.height} px high")
    return 0


if __name__ == "__main__":
    sys.exit(main())
