"""The audit trail: events published through the real ``EventGridPublisherClient`` to a local HTTPS topic."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from remediation.audit import (
    DATA_VERSION,
    REMEDIATION_COMPLETED,
    SWEEP_COMPLETED,
    SWEEP_SUBJECT,
    AuditTrail,
    remediation_event,
    sweep_event,
)
from remediation.settings import SettingsError
from tests.render import samples

PRINCIPAL = "0f5e7c1a-9d3b-4e2f-8a6c-1b2d3e4f5a6b"
TOPIC_PATH = "/api/events"


@dataclass
class Topic:
    """A local Event Grid custom topic over HTTPS: records each POST and answers ``status``."""

    url: str
    ca_bundle: Path
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.requests for event in request["body"]]


@pytest.fixture
def topic(tmp_path: Path) -> Iterator[Topic]:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    state: dict[str, Topic] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            current = state["topic"]
            current.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(current.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state["topic"] = Topic(f"https://127.0.0.1:{server.server_address[1]}{TOPIC_PATH}", tmp_path / "ca.pem")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state["topic"]
    server.shutdown()
    server.server_close()


def trail(topic: Topic, **options: Any) -> AuditTrail:
    env = {
        "AUDIT_EVENTGRID_ENDPOINT": topic.url,
        "AUDIT_EVENTGRID_CA_BUNDLE": str(topic.ca_bundle),
        "REMEDIATOR_PRINCIPAL_ID": PRINCIPAL,
    }
    audit = AuditTrail.from_environment(env, **options)
    assert audit is not None
    return audit


def claims(authorization: str) -> dict[str, Any]:
    scheme, token = authorization.split(" ", 1)
    assert scheme == "Bearer"
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_a_remediation_is_published_as_one_event_grid_event_with_the_local_token(topic: Topic) -> None:
    trail(topic).on_event(*samples.one_event(samples.restored()))
    (request,) = topic.requests
    assert request["path"] == f"{TOPIC_PATH}?api-version=2018-01-01"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert claims(request["headers"]["Authorization"])["oid"] == PRINCIPAL
    (event,) = request["body"]
    assert event["eventType"] == REMEDIATION_COMPLETED == "AksEgressRemediator.RemediationCompleted"
    assert event["subject"] == samples.GROUP
    assert event["dataVersion"] == DATA_VERSION == "1.0"
    assert {"id", "eventTime", "data"} <= event.keys()


def test_the_remediation_data_holds_findings_actions_caller_timings_mode_cluster_and_correlation(topic: Topic) -> None:
    trail(topic).on_event(*samples.one_event(samples.restored()))
    data = topic.events[0]["data"]
    assert data["cluster"] == "aks-prod-weu"
    assert data["outcome"] == "restored"
    assert data["mode"] == "enforce"
    assert data["trigger"] == "event"
    assert data["compliant"] is True
    assert [f["kind"] for f in data["findings"]] == ["missing-rule"] * 5
    assert all(f["resolved"] for f in data["findings"])
    assert data["findings"][2]["rule"] == "aks-prod-weu-tunnel-udp-1194"
    assert data["actions"] == [
        {
            "resource": samples.GROUP,
            "method": "PUT",
            "summary": "create rule collection group aks-egress-baseline (priority 200); create aks-egress-net with 5 rule(s)",
            "status": "accepted",
        }
    ]
    assert data["caller"] == {
        "name": "Dana Okafor",
        "upn": "dana@contoso.example",
        "appId": samples.AZURE_CLI,
        "ipAddress": "203.0.113.24",
    }
    assert data["correlationId"] == samples.CORRELATION
    assert data["cause"] == {
        "eventId": "evt-1",
        "eventType": "Microsoft.Resources.ResourceDeleteSuccess",
        "operation": "Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete",
        "resource": samples.GROUP,
        "caller": data["caller"],
        "correlationId": samples.CORRELATION,
        "eventTime": samples.EVENT_TIME,
    }
    assert data["started"] == "2026-05-18T14:03:14.250000+00:00"
    assert data["durationSeconds"] == 0.42
    assert data["armCalls"] == {"reads": 5, "writes": 1, "polls": 0}


def test_without_an_event_the_subject_is_the_clusters_firewall(topic: Topic) -> None:
    trail(topic).on_event(*samples.one_event(samples.audit_check()))
    (event,) = topic.events
    assert event["subject"] == samples.FIREWALL
    assert event["data"]["outcome"] == "would-restore"
    assert event["data"]["mode"] == "audit"
    assert (event["data"]["cause"], event["data"]["caller"], event["data"]["correlationId"]) == (None, None, None)


def test_a_result_without_a_firewall_gets_a_subject_of_its_own() -> None:
    result, _ = samples.audit_check()
    event = remediation_event(dataclasses.replace(result, firewall=""), None)
    assert event is not None
    assert event.subject == "/aksEgressRemediator/clusters/aks-prod-weu"


def test_every_reconcile_with_findings_is_published_sweep_results_included_in_one_request(topic: Topic) -> None:
    trail(topic).on_sweep(samples.sweep())

    remediations = [e for e in topic.events if e["eventType"] == REMEDIATION_COMPLETED]
    assert sorted(e["data"]["cluster"] for e in remediations) == [
        "aks-batch-weu",
        "aks-dev-neu",
        "aks-prod-weu",
        "aks-shop-weu",
    ]
    assert len({e["id"] for e in topic.events}) == 5  # and the SweepCompleted event
    assert len(topic.requests) == 1


def test_a_reconcile_that_found_nothing_publishes_nothing(topic: Topic) -> None:
    trail(topic).on_event([samples.result([], [])], None)
    assert topic.requests == []


def test_the_sweep_is_published_with_its_summary(topic: Topic) -> None:
    trail(topic).on_sweep(samples.sweep())
    (event,) = [e for e in topic.events if e["eventType"] == SWEEP_COMPLETED]
    assert event["eventType"] == SWEEP_COMPLETED == "AksEgressRemediator.SweepCompleted"
    assert event["subject"] == SWEEP_SUBJECT == "/aksEgressRemediator/sweeps"
    data = event["data"]
    assert (data["checked"], data["compliant"], data["fixed"], data["failed"]) == (8, 4, 1, 3)
    assert data["durationSeconds"] == 12.6
    first = data["clusters"][0]
    assert first == {
        "cluster": "aks-dev-neu",
        "outcome": "failed",
        "compliant": False,
        "mode": "enforce",
        "findings": 2,
        "actions": 1,
        "durationSeconds": 0.42,
    }
    assert [c["outcome"] for c in data["clusters"]][-4:] == ["compliant"] * 4


def test_the_sweep_event_matches_its_pure_description() -> None:
    event = sweep_event(samples.sweep())
    assert (event.event_type, event.subject) == (SWEEP_COMPLETED, SWEEP_SUBJECT)
    assert len(event.data["clusters"]) == 8
    json.dumps(event.data)  # plain JSON, as Event Grid needs


def test_a_failing_topic_is_logged_and_never_raises(topic: Topic, caplog: pytest.LogCaptureFixture) -> None:
    topic.status = 500
    audit = trail(topic, retries=1)
    audit.on_event(*samples.one_event(samples.restored()))
    audit.on_sweep(samples.sweep())
    assert len(topic.requests) == 4  # each event: the first try and one retry
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("not published" in w for w in warnings)


def test_an_unreachable_topic_is_logged_and_never_raises(topic: Topic, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    audit = AuditTrail(f"https://127.0.0.1:{port}{TOPIC_PATH}", principal_id=PRINCIPAL, retries=0)
    audit.on_event(*samples.one_event(samples.restored()))
    assert "not published" in caplog.text


def test_without_the_setting_the_audit_trail_is_off_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert AuditTrail.from_environment({}) is None
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "remediation.audit"]
    assert lines == [(logging.INFO, "audit trail: off (AUDIT_EVENTGRID_ENDPOINT is not set)")]


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"AUDIT_EVENTGRID_ENDPOINT": "http://topic.westeurope-1.eventgrid.azure.net/api/events"},
            "AUDIT_EVENTGRID_ENDPOINT",
        ),
        (
            {
                "AUDIT_EVENTGRID_ENDPOINT": "https://topic.westeurope-1.eventgrid.azure.net/api/events",
                "AUDIT_EVENTGRID_CA_BUNDLE": __file__,
            },
            "AUDIT_EVENTGRID_CA_BUNDLE",
        ),
        (
            {
                "AUDIT_EVENTGRID_ENDPOINT": "https://127.0.0.1:4443/api/events",
                "AUDIT_EVENTGRID_CA_BUNDLE": "/nonexistent/ca.pem",
            },
            "AUDIT_EVENTGRID_CA_BUNDLE",
        ),
    ],
)
def test_a_bad_audit_setting_is_a_settings_error_naming_it(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        AuditTrail.from_environment(env)
