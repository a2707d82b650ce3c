"""Every card the product makes is a valid Adaptive Card 1.5 and renders cleanly in Microsoft's own renderer
(``adaptivecards`` from npm, in headless Chromium): no parse warnings, and the text a reader needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from remediation.alerts import render_text, teams_message
from tests.render import samples
from tests.render.harness import Rendered, render_cards

SCHEMA = Path(__file__).parent / "fixtures" / "teams" / "adaptive-card-1.5.schema.json"
CARDS = samples.cards()
# What Teams receives: the cards as cut to fit a message (only the giant one is cut).
SENT = {name: teams_message(card)["attachments"][0]["content"] for name, card in CARDS.items()}


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    """Every representative card rendered in one Chromium run (about a second)."""
    return dict(zip(SENT, render_cards(list(SENT.values())), strict=True))


def test_the_schema_is_the_adaptive_card_1_5_draft_6_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    Draft6Validator.check_schema(schema)


@pytest.mark.parametrize("name", list(SENT))
def test_every_card_validates_against_the_adaptive_card_1_5_schema(name: str) -> None:
    errors = sorted(Draft6Validator(json.loads(SCHEMA.read_text())).iter_errors(SENT[name]), key=str)
    assert [e.message for e in errors] == []
    assert SENT[name]["version"] == "1.5"
    assert {a["type"] for a in SENT[name].get("actions", [])} <= {"Action.OpenUrl"}


def test_the_schema_check_would_catch_a_card_teams_cannot_take() -> None:
    bad = json.loads(json.dumps(CARDS["restored"]))
    bad["body"].append({"type": "FactSet", "facts": [{"title": "no value"}]})
    assert list(Draft6Validator(json.loads(SCHEMA.read_text())).iter_errors(bad))


@pytest.mark.parametrize("name", list(SENT))
def test_every_card_renders_without_parse_warnings(name: str, rendered: dict[str, Rendered]) -> None:
    assert rendered[name].warnings == ()
    assert rendered[name].height > 100


def test_the_renderer_reports_an_element_it_does_not_know() -> None:
    bogus: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Bogus"}]}
    (result,) = render_cards([bogus])
    assert any('Unknown element type "Bogus"' in w for w in result.warnings)


def test_the_restored_card_renders_what_a_reader_needs(rendered: dict[str, Rendered]) -> None:
    text = rendered["restored"].text
    for expected in (
        "Restored: aks-prod-weu",
        "Dana Okafor (dana@contoso.example)",
        "fwpol-hub/aks-egress-baseline (ruleCollectionGroups, rg-hub)",
        "2026-05-18 14:03:12 UTC",
        samples.CORRELATION,
        "What had drifted",
        "network rule aks-prod-weu-tunnel-udp-1194 is missing",
        "What was done",
        "accepted",
        "Open fwpol-hub in the Azure portal",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("would-restore-check", ["Would restore (audit mode): aks-prod-weu", "What would be done", "would-apply"]),
        ("busy", ["Busy, will retry: aks-prod-weu", "Event Grid will deliver the event again"]),
        ("failed", ["Failed, will retry: aks-prod-weu", "AuthorizationFailed", "198.51.100.7"]),
        ("conflict", ["Conflict: aks-prod-weu", "dnat-conflict", "legacy-web"]),
        ("giant", ["Failed: aks-prod-weu", " more"]),
        ("digest", ["Nightly sweep: 3 of 8 clusters need attention", "Clusters, worst first", "aks-shop-weu"]),
    ],
)
def test_each_outcome_renders_its_headline_and_details(
    name: str, expected: list[str], rendered: dict[str, Rendered]
) -> None:
    for text in expected:
        assert text in rendered[name].text


def test_the_console_rendering_and_the_browser_agree_on_the_headline(rendered: dict[str, Rendered]) -> None:
    for name, card in SENT.items():
        assert rendered[name].text.startswith(render_text(card).splitlines()[0]), name
