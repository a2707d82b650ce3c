"""Teams alerts: one card per remediation as data, the sweep's one digest, the size limit, and the poster
against a local Workflows webhook (retries, Retry-After, a dead webhook, the rate limit, the secret URL)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from demo.teams_receiver import WEBHOOK_PATH, Reply, TeamsReceiver
from remediation.alerts import (
    CARD_CONTENT_TYPE,
    MAX_LISTED,
    MAX_MESSAGE_BYTES,
    PORTAL,
    Outcome,
    RateLimit,
    TeamsAlerts,
    digest_card,
    outcome_of,
    remediation_card,
    render_text,
    teams_message,
)
from remediation.config import Mode
from remediation.events import Caller
from remediation.findings import Finding, FindingKind
from remediation.reconcile import SweepResult
from remediation.settings import SettingsError
from tests.render import samples

TEAMS_LIMIT = 28 * 1024


def facts(card: dict[str, Any], list_id: str = "details") -> dict[str, str]:
    return {f["title"]: f["value"] for f in find(card, list_id)["facts"]}


def find(card: dict[str, Any], element_id: str) -> dict[str, Any]:
    return next(e for e in card["body"] if e.get("id") == element_id)


def headline(card: dict[str, Any]) -> str:
    return str(card["body"][0]["items"][0]["text"])


def more(factset: dict[str, Any]) -> int:
    last = factset["facts"][-1]
    return int(last["value"].split()[0][1:]) if last["title"] == "" and last["value"].endswith(" more") else 0


def size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())


# ------------------------------------------------------------------------------------ cards


@pytest.mark.parametrize(
    ("sample", "outcome", "title"),
    [
        ("restored", Outcome.RESTORED, "Restored: aks-prod-weu"),
        ("would-restore-check", Outcome.WOULD_RESTORE, "Would restore (audit mode): aks-prod-weu"),
        ("busy", Outcome.BUSY, "Busy, will retry: aks-prod-weu"),
        ("failed", Outcome.FAILED, "Failed, will retry: aks-prod-weu"),
        ("conflict", Outcome.CONFLICT, "Conflict: aks-prod-weu"),
    ],
)
def test_the_headline_says_the_outcome_at_a_glance(sample: str, outcome: Outcome, title: str) -> None:
    result, change = samples.REMEDIATIONS[sample]()
    card = remediation_card(result, change)
    assert outcome_of(result) is outcome
    assert card is not None
    assert headline(card) == title
    assert card["fallbackText"] == title


def test_a_failure_that_comes_again_says_when_and_one_that_needs_a_person_does_not() -> None:
    retried, change = samples.failed()  # a write ARM refused: the event fails, so Event Grid delivers it again
    card = remediation_card(retried, change)
    assert card is not None and retried.retry_reason
    assert "Event Grid will deliver the event again" in json.dumps(card)
    gone = Finding(FindingKind.ERROR, samples.FIREWALL, "the firewall does not exist")
    needs_a_person = samples.result([gone], [])
    card = remediation_card(needs_a_person, change)
    assert card is not None and headline(card) == "Failed: aks-prod-weu"
    assert "again" not in json.dumps(card)


def test_a_reconcile_that_found_nothing_makes_no_card() -> None:
    quiet = samples.result([], [])
    assert outcome_of(quiet) is None
    assert remediation_card(quiet, None) is None


def test_an_informational_finding_alone_makes_no_card() -> None:
    note = Finding(FindingKind.PRIORITY_TAKEN, samples.GROUP, "priority 200 is taken: using 210")
    assert remediation_card(samples.result([note], []), None) is None


def test_an_outstanding_dnat_conflict_makes_the_outcome_conflict_even_when_the_rest_was_restored() -> None:
    restored, change = samples.restored()
    conflict = Finding(FindingKind("dnat-conflict"), samples.GROUP, "TCP 443 on 20.61.15.9 is taken by legacy-web")
    result = replace(restored, findings=(*restored.findings, conflict))
    card = remediation_card(result, change)
    assert card is not None
    assert headline(card) == "Conflict: aks-prod-weu"
    assert "legacy-web" in card["body"][0]["items"][1]["text"]


def test_audit_mode_with_a_finding_no_write_would_fix_is_failed_not_would_restore() -> None:
    gone = Finding(FindingKind.RESOURCE_NOT_FOUND, samples.FIREWALL, "the cluster's firewall does not exist")
    assert outcome_of(samples.result([gone], [], mode=Mode.AUDIT)) is Outcome.FAILED


def test_finding_kinds_are_shown_generically_whatever_the_kind() -> None:
    kinds = ["missing-dnat", "stale-dnat", "missing-host-route", "dnat-limit"]
    findings = [Finding(FindingKind(k), samples.GROUP, f"detail of {k}") for k in kinds]
    card = remediation_card(samples.result(findings, [], mode=Mode.AUDIT, trigger="check"), None)
    assert card is not None
    drifted = {f["title"]: f["value"] for f in find(card, "findings")["facts"]}
    assert drifted == {k: f"detail of {k}" for k in kinds}


def test_an_event_caused_card_names_the_resource_operation_caller_time_and_correlation_id() -> None:
    card = remediation_card(*samples.restored())
    assert card is not None
    assert facts(card) == {
        "Cluster": "aks-prod-weu",
        "Resource": "fwpol-hub/aks-egress-baseline (ruleCollectionGroups, rg-hub)",
        "Operation": "delete",
        "Changed by": "Dana Okafor (dana@contoso.example)",
        "App ID": samples.AZURE_CLI,
        "Client IP": "203.0.113.24",
        "When": "2026-05-18 14:03:12 UTC",
        "Trigger": "ARM change event, enforce mode",
        "Correlation ID": samples.CORRELATION,
        "Reconcile": "0.42 s, 5 ARM reads, 1 write",
    }


def test_the_card_links_to_the_changed_resource_in_the_azure_portal_with_open_url_actions_only() -> None:
    card = remediation_card(*samples.restored())
    assert card is not None
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open fwpol-hub in the Azure portal", "url": PORTAL + samples.POLICY}
    ]
    assert samples.POLICY.startswith("/subscriptions/")


def test_a_child_resource_links_to_its_top_level_resource_and_written_resources_get_links_too() -> None:
    result, change = samples.route_hijacked()
    result = replace(result, actions=(*result.actions, replace(result.actions[0], resource=samples.SUBNET)))
    card = remediation_card(result, change)
    assert card is not None
    urls = [a["url"] for a in card["actions"]]
    vnet = samples.SUBNET.rsplit("/subnets/", 1)[0]
    assert urls == [PORTAL + samples.ROUTE_TABLE, PORTAL + vnet]
    assert {a["type"] for a in card["actions"]} == {"Action.OpenUrl"}


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (samples.PIPELINE, {"App ID": samples.PIPELINE.app_id, "Client IP": "198.51.100.7"}),
        (Caller(upn="sam@contoso.example"), {"Changed by": "sam@contoso.example"}),
        (Caller(name="Sam Lee"), {"Changed by": "Sam Lee"}),
        (Caller(), {}),
    ],
)
def test_only_the_caller_fields_present_in_the_event_are_shown(caller: Caller, expected: dict[str, str]) -> None:
    result, change = samples.restored()
    assert change is not None
    card = remediation_card(result, replace(change, caller=caller))
    assert card is not None
    shown = {k: v for k, v in facts(card).items() if k in ("Changed by", "App ID", "Client IP")}
    assert shown == expected


def test_a_sweep_or_command_line_card_has_no_event_facts_and_the_reconcile_start_as_its_time() -> None:
    card = remediation_card(*samples.enforced_from_cli())
    assert card is not None
    shown = facts(card)
    assert shown["When"] == "2026-05-18 14:03:14 UTC"
    assert shown["Trigger"] == "command line, enforce mode"
    assert shown["Resource"] == "fwpol-hub/aks-egress-baseline (ruleCollectionGroups, rg-hub)"
    assert not {"Operation", "Changed by", "App ID", "Client IP", "Correlation ID"} & shown.keys()


def test_the_card_lists_what_drifted_and_what_was_done_with_status() -> None:
    card = remediation_card(*samples.restored())
    assert card is not None
    drifted = find(card, "findings")["facts"]
    assert [f["title"] for f in drifted] == ["missing-rule"] * 5
    assert "aks-prod-weu-tunnel-udp-1194 is missing" in drifted[2]["value"]
    assert "UDP 1194" in drifted[2]["value"]
    done = find(card, "actions")["facts"]
    assert done[0]["title"] == "accepted"
    assert done[0]["value"].startswith("PUT fwpol-hub/aks-egress-baseline (ruleCollectionGroups, rg-hub): create")


def test_an_audit_mode_card_says_nothing_was_written_and_what_would_be_done() -> None:
    card = remediation_card(*samples.audit_event())
    assert card is not None
    texts = [e.get("text") for e in card["body"]]
    assert "What would be done" in texts
    assert card["body"][0]["items"][1]["text"].startswith("Nothing was written.")
    assert find(card, "actions")["facts"][0]["title"] == "would-apply"


def test_a_busy_card_caused_by_an_event_says_event_grid_will_deliver_it_again() -> None:
    card = remediation_card(*samples.busy())
    assert card is not None
    assert "Event Grid will deliver the event again" in card["body"][0]["items"][1]["text"]


def test_after_a_partial_restore_the_findings_still_there_are_marked() -> None:
    restored, change = samples.restored()
    failed = Finding(FindingKind.WRITE_FAILED, samples.DEFAULT_ROUTE, "AuthorizationFailed")
    card = remediation_card(replace(restored, findings=(*restored.findings, failed)), change)
    assert card is not None
    values = [f["value"] for f in find(card, "findings")["facts"]]
    assert values[-1] == "AuthorizationFailed (not restored)"
    assert not any(v.endswith("(not restored)") for v in values[:-1])


def test_every_card_is_version_1_5_at_most() -> None:
    for name, card in samples.cards().items():
        assert card["version"] == "1.5", name
        assert card["type"] == "AdaptiveCard"


# ----------------------------------------------------------------------------------- digest


def test_the_digest_counts_clusters_checked_compliant_fixed_and_failed() -> None:
    card = digest_card(samples.sweep())
    assert headline(card) == "Nightly sweep: 3 of 8 clusters need attention"
    assert facts(card, "counts") == {
        "Checked": "8",
        "Compliant": "4",
        "Fixed": "1",
        "Busy, will retry": "1",
        "Conflict": "1",
        "Failed": "1",
    }


def test_the_digest_lists_the_worst_first_and_leaves_out_compliant_clusters() -> None:
    clusters = find(digest_card(samples.sweep()), "clusters")["facts"]
    assert [f["title"] for f in clusters] == ["aks-shop-weu", "aks-dev-neu", "aks-batch-weu", "aks-prod-weu"]
    assert clusters[0]["value"] == "Conflict: dnat-conflict"
    assert clusters[3]["value"] == "Restored: missing-rule (5)"


def test_a_quiet_night_still_posts_a_digest_saying_all_is_compliant() -> None:
    quiet = SweepResult(
        tuple(samples.result([], [], cluster=f"c{i}", trigger="sweep") for i in range(3)), samples.STARTED, 2.0
    )
    card = digest_card(quiet)
    assert headline(card) == "Nightly sweep: all 3 clusters compliant"
    assert not [e for e in card["body"] if e.get("id") == "clusters"]


def test_a_digest_of_many_clusters_ends_in_plus_n_more() -> None:
    many = SweepResult(
        tuple(samples.group_deleted(cluster=f"aks-{i:03d}", trigger="sweep") for i in range(100)), samples.STARTED, 60.0
    )
    clusters = find(digest_card(many), "clusters")
    assert len(clusters["facts"]) == MAX_LISTED + 1
    assert more(clusters) == 100 - MAX_LISTED


# ------------------------------------------------------------------------------- the limit


def test_a_result_with_hundreds_of_findings_fits_one_teams_message_and_says_how_many_are_left_out() -> None:
    result, change = samples.giant()
    message = teams_message(remediation_card(result, change) or {})
    card = message["attachments"][0]["content"]
    assert size(message) <= MAX_MESSAGE_BYTES < TEAMS_LIMIT
    findings = find(card, "findings")
    shown = len(findings["facts"]) - 1
    assert more(findings) > 0
    assert shown + more(findings) == 400
    actions = find(card, "actions")
    assert len(actions["facts"]) - (1 if more(actions) else 0) + more(actions) == 60


def test_teams_message_cuts_the_longest_list_to_fit_and_keeps_count_of_what_it_cut() -> None:
    facts_ = [{"title": f"fact-{i}", "value": "v" * 300} for i in range(500)]
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "FactSet", "id": "findings", "facts": facts_}],
    }
    message = teams_message(card, max_bytes=20_000)
    factset = message["attachments"][0]["content"]["body"][0]
    assert size(message) <= 20_000
    assert len(factset["facts"]) - 1 + more(factset) == 500
    assert factset["facts"][0] == facts_[0]
    assert card["body"][0]["facts"] is facts_ and len(facts_) == 500  # the card given is not changed


def test_a_card_that_cannot_be_cut_small_enough_keeps_its_headline_and_says_where_the_rest_is() -> None:
    card = remediation_card(*samples.restored())
    assert card is not None
    card["body"].insert(1, {"type": "TextBlock", "text": "z" * 40_000})
    message = teams_message(card)
    body = message["attachments"][0]["content"]["body"]
    assert size(message) <= MAX_MESSAGE_BYTES
    assert body[0]["items"][0]["text"] == "Restored: aks-prod-weu"
    assert "too large for Teams" in body[-1]["text"]


def test_the_envelope_is_a_message_with_one_adaptive_card_attachment() -> None:
    card = remediation_card(*samples.restored())
    assert teams_message(card or {}) == {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }
    assert CARD_CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"


def test_render_text_is_a_compact_console_rendering_with_headline_facts_and_lists() -> None:
    text = render_text(remediation_card(*samples.restored()) or {})
    lines = text.splitlines()
    assert lines[0] == "Restored: aks-prod-weu"
    assert "Changed by: Dana Okafor (dana@contoso.example)" in text
    assert "  missing-rule  network rule aks-prod-weu-tunnel-udp-1194 is missing" in text
    assert len(lines) < 20
    side_by_side = [line for line in lines if " · " in line]
    assert side_by_side and all(len(line) <= 110 for line in side_by_side)


# --------------------------------------------------------------------------------- posting


@pytest.fixture
def receiver() -> Iterator[TeamsReceiver]:
    with TeamsReceiver() as server:
        yield server


def poster(url: str, **options: Any) -> TeamsAlerts:
    """A poster with its own rate limit and a short backoff (0.1 s, 0.2 s, ...), to keep the tests quick."""
    options.setdefault("rate", RateLimit())
    options.setdefault("backoff_seconds", 0.1)
    return TeamsAlerts(url, **options)


def test_on_event_posts_one_envelope_with_the_card_and_saves_it(receiver: TeamsReceiver) -> None:
    result, change = samples.restored()
    poster(receiver.url).on_event([result], change)
    assert receiver.messages == [teams_message(remediation_card(result, change) or {})]
    saved = sorted(receiver.directory.glob("*.json"))
    assert [json.loads(p.read_text()) for p in saved] == receiver.messages


def test_a_reconcile_that_found_nothing_posts_nothing(receiver: TeamsReceiver) -> None:
    poster(receiver.url).on_event([samples.result([], [])], None)
    assert receiver.received == []


def test_sweep_results_post_no_card_of_their_own_and_the_sweep_posts_one_digest(receiver: TeamsReceiver) -> None:
    alerts = poster(receiver.url)
    sweep = samples.sweep()
    for result in sweep.results:
        alerts.on_event([result], None)
    alerts.on_sweep(sweep)
    assert [headline(card) for card in receiver.cards] == ["Nightly sweep: 3 of 8 clusters need attention"]


def test_an_event_delivered_again_with_the_same_outcome_is_not_posted_twice(receiver: TeamsReceiver) -> None:
    alerts = poster(receiver.url)
    result, change = samples.busy()
    alerts.on_event([result], change)
    alerts.on_event([result], change)
    restored, _ = samples.restored()
    alerts.on_event([restored], change)
    assert [headline(card) for card in receiver.cards] == ["Busy, will retry: aks-prod-weu", "Restored: aks-prod-weu"]


def test_a_card_teams_did_not_take_is_posted_again_when_the_event_comes_again() -> None:
    with TeamsReceiver(replies=[Reply(400)]) as receiver:
        alerts = poster(receiver.url)
        result, change = samples.busy()
        alerts.on_event([result], change)
        alerts.on_event([result], change)
    assert [r.status for r in receiver.received] == [400, 202]


def test_429_is_retried_after_the_retry_after_delay() -> None:
    with TeamsReceiver(replies=[Reply(429, retry_after="1")]) as receiver:
        assert poster(receiver.url).post(remediation_card(*samples.restored()) or {})
    first, second = receiver.received
    assert (first.status, second.status) == (429, 202)
    assert second.at - first.at >= 0.95


def test_5xx_is_retried_with_backoff_until_accepted() -> None:
    with TeamsReceiver(replies=[Reply(503), Reply(502)]) as receiver:
        assert poster(receiver.url).post(remediation_card(*samples.restored()) or {})
    assert [r.status for r in receiver.received] == [503, 502, 202]
    assert receiver.received[2].at - receiver.received[1].at >= receiver.received[1].at - receiver.received[0].at


def test_a_retry_after_longer_than_the_budget_gives_up_at_once(caplog: pytest.LogCaptureFixture) -> None:
    with TeamsReceiver(replies=[Reply(429, retry_after="60")]) as receiver:
        delivered = poster(receiver.url, budget_seconds=5.0).post(remediation_card(*samples.restored()) or {})
    assert not delivered
    assert [r.status for r in receiver.received] == [429]
    assert "would pass the 5 s budget" in caplog.text


def test_a_rejected_card_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with TeamsReceiver(replies=[Reply(400)]) as receiver:
        poster(receiver.url).on_event(*samples.one_event(samples.restored()))
    assert [r.status for r in receiver.received] == [400]
    assert "HTTP 400" in caplog.text


def test_a_webhook_failing_forever_costs_at_most_the_budget_and_logs_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TeamsReceiver(replies=[Reply(500)] * 50) as receiver:
        poster(receiver.url, budget_seconds=0.5).on_event(*samples.one_event(samples.restored()))
    attempts = receiver.received
    assert len(attempts) >= 2
    assert attempts[-1].at - attempts[0].at < 0.5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not delivered" in warnings[0].getMessage()
    assert "HTTP 500" in warnings[0].getMessage()


def test_a_webhook_that_refuses_connections_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    alerts = poster(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", budget_seconds=0.5)
    alerts.on_event(*samples.one_event(samples.restored()))
    alerts.on_sweep(samples.sweep())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("not delivered" in w and "Connection refused" in w for w in warnings)


def test_every_poster_in_the_process_shares_four_requests_per_second(receiver: TeamsReceiver) -> None:
    card = remediation_card(*samples.restored()) or {}
    first, second = TeamsAlerts(receiver.url), TeamsAlerts(receiver.url)
    for _ in range(3):
        first.post(card)
        second.post(card)
    times = [r.at for r in receiver.received]
    assert len(times) == 6
    # Any five consecutive requests span at least a second (receiver clock; 50 ms for scheduling).
    assert all(times[i + 4] - times[i] >= 0.95 for i in range(len(times) - 4))


def test_the_webhook_url_never_appears_in_any_log_or_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TeamsReceiver(replies=[Reply(429, retry_after="0.1"), Reply(500), Reply(400)]) as receiver:
        url = receiver.url
        alerts = TeamsAlerts.from_environment({"TEAMS_WEBHOOK_URL": url}, rate=RateLimit(), backoff_seconds=0.1)
        assert alerts is not None
        alerts.on_event(*samples.one_event(samples.restored()))
        alerts.on_event(*samples.one_event(samples.busy()))
        alerts.on_sweep(samples.sweep())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}{WEBHOOK_PATH}"
    TeamsAlerts(dead, budget_seconds=0.3, rate=RateLimit()).on_event(*samples.one_event(samples.restored()))
    with pytest.raises(SettingsError) as bad:
        TeamsAlerts.from_environment({"TEAMS_WEBHOOK_URL": "ftp://example.org" + WEBHOOK_PATH})
    secret = WEBHOOK_PATH.split("sig=")[1]
    written = caplog.text + str(bad.value) + repr(alerts) + json.dumps(receiver.messages)
    assert len(receiver.received) == 5
    assert caplog.records  # the test saw the log lines it checks
    for fragment in (url, WEBHOOK_PATH, "/workflows/", secret):
        assert fragment not in written


def test_without_the_setting_alerting_is_off_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert TeamsAlerts.from_environment({}) is None
    lines = [r for r in caplog.records if r.name == "remediation.alerts"]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, "Teams alerts: off (TEAMS_WEBHOOK_URL is not set)")
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://prod-17.westeurope.logic.azure.com/workflows/abc?sig=s3cr3t", "https://"),
        ("not-a-url", "https://"),
        ("https://prod-17.westeurope.logic.azure.com/workflows/abc?sig=s3cr3t\nabc", "control characters"),
        ("@Microsoft.KeyVault(SecretUri=https://kv-remediator.vault.azure.net/secrets/teams/)", "Key Vault"),
    ],
)
def test_an_unusable_webhook_url_is_a_settings_error_that_does_not_quote_it(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as error:
        TeamsAlerts.from_environment({"TEAMS_WEBHOOK_URL": value})
    assert "TEAMS_WEBHOOK_URL" in str(error.value)
    assert says in str(error.value)
    assert value not in str(error.value)
    assert "s3cr3t" not in str(error.value)
