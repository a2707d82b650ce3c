"""Reliability under faults: every invocation ends within its deadline, reports what happened, and asks to be
retried when it could not finish. Faults come from localarm (``/_localarm/faults``) and from webhook and
topic stand-ins that misbehave; the handler is the real one.

Event Grid waits 30 s for the function (the handler keeps 25 s for itself); these tests give the handler a
few seconds instead, so that every case runs quickly, and check it ends within them (with one second of slack
for the test machine).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from localarm.faults import Fault
from localarm.server import LocalArm
from remediation import triggers
from remediation.alerts import RateLimit, TeamsAlerts
from remediation.audit import AuditTrail
from remediation.config import load_config
from remediation.events import ResourceChange
from remediation.findings import FindingKind
from remediation.reconcile import ClusterResult
from tests.conftest import AKS_SUBNET, FIREWALL, POLICY, REMEDIATOR, ROUTE_TABLE
from tests.landing_zone import DEFAULT_ROUTE, OWNED_GROUP, Operator, write_config
from tests.test_audit import Topic, topic  # noqa: F401 - the fixture
from tests.test_function_app import event_grid_event, make_runtime

CLUSTER = {
    "location": "westeurope",
    "firewall": str(FIREWALL),
    "routeTable": str(ROUTE_TABLE),
    "subnets": [str(AKS_SUBNET)],
}
SECONDS = 4.0
SLACK = 1.0
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
FAILURE = "Microsoft.Resources.ResourceWriteFailure"


class Told:
    """A sink that records what each invocation told."""

    def __init__(self) -> None:
        self.events: list[tuple[list[ClusterResult], ResourceChange | None]] = []

    def __call__(self, results: Sequence[ClusterResult], change: ResourceChange | None) -> None:
        self.events.append((list(results), change))

    def kinds(self) -> set[str]:
        return {str(f.kind) for results, _ in self.events for r in results for f in r.findings}


@pytest.fixture
def converged(arm: LocalArm, tmp_path: Path) -> Iterator[tuple[triggers.Runtime, Told]]:
    rt = make_runtime(write_config(tmp_path), arm)
    triggers.run_sweep(rt=rt)
    arm.advance_clock(1)
    told = Told()
    rt.on_event.append(told)
    arm.requests.clear()
    yield rt, told


def drift_the_default_route(arm: LocalArm, operator: Operator) -> None:
    operator.edit(
        DEFAULT_ROUTE, lambda b: b["properties"].update({"nextHopType": "Internet", "nextHopIpAddress": None})
    )
    arm.advance_clock(1)
    arm.requests.clear()


def handle(
    rt: triggers.Runtime, operation: str, resource: object, *, event_type: str = WRITE, caller: str | None = None
) -> tuple[float, object]:
    """Run the handler within ``SECONDS``; what it returned or raised, and how long it took."""
    options = {"caller": caller} if caller else {}
    data = event_grid_event(operation, resource, **options).get_json()  # type: ignore[arg-type]
    started = time.monotonic()
    try:
        outcome: object = triggers.handle_event(event_id="e1", event_type=event_type, data=data, rt=rt, seconds=SECONDS)
    except triggers.RetryLater as err:
        outcome = err
    return time.monotonic() - started, outcome


@pytest.fixture
def operator_of(operator: object) -> Operator:
    return Operator(operator)  # type: ignore[arg-type]


# --- ARM that makes the handler wait ----------------------------------------------------------------------


def test_a_retry_after_longer_than_the_deadline_is_not_slept_and_the_event_comes_again(
    arm: LocalArm, converged: tuple[triggers.Runtime, Told], operator_of: Operator
) -> None:
    rt, told = converged
    drift_the_default_route(arm, operator_of)
    arm.faults.add(Fault(kind="throttle", method="GET", path="azureFirewalls", times=5, retry_after=120))

    took, outcome = handle(rt, "Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE)

    assert took < SECONDS + SLACK
    assert isinstance(outcome, triggers.RetryLater)
    assert FindingKind.OUT_OF_TIME in told.kinds()  # reported before asking Event Grid to come again


def test_an_arm_answer_that_never_comes_is_cut_off_by_the_deadline(
    arm: LocalArm, converged: tuple[triggers.Runtime, Told], operator_of: Operator
) -> None:
    rt, told = converged
    drift_the_default_route(arm, operator_of)
    arm.faults.add(Fault(kind="delay", method="GET", path="routeTables", times=3, seconds=60))

    took, outcome = handle(rt, "Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE)

    assert took < SECONDS + SLACK
    assert isinstance(outcome, triggers.RetryLater)
    assert told.events  # what it found before the cut is told


# --- Writes that fail ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["error", "drop"])  # a 500 each time; a connection closed without an answer
def test_a_write_that_keeps_failing_is_retried_until_the_deadline_then_reported_and_the_event_comes_again(
    arm: LocalArm, converged: tuple[triggers.Runtime, Told], operator_of: Operator, fault: str
) -> None:
    rt, told = converged
    drift_the_default_route(arm, operator_of)
    failing = Fault(kind=fault, method="PUT", path="routeTables", times=100)
    arm.faults.add(failing)

    took, outcome = handle(rt, "Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE)

    assert took < SECONDS + SLACK
    assert isinstance(outcome, triggers.RetryLater)
    [[result]] = [results for results, _ in told.events]
    assert [a.status for a in result.actions] == ["failed"]
    assert {"wrong-next-hop", "out-of-time"} <= told.kinds()  # the drift stays reported, with why it stays
    assert failing.hits > 1  # retried, as azure-core retries these


def test_a_long_running_write_that_ends_failed_comes_back_as_an_event_and_is_written_again(
    arm: LocalArm, converged: tuple[triggers.Runtime, Told], operator_of: Operator
) -> None:
    rt, told = converged
    operator_of.edit(OWNED_GROUP, lambda body: [c.update(rules=[]) for c in body["properties"]["ruleCollections"]])
    arm.advance_clock(1)
    arm.faults.add(Fault(kind="fail", method="PUT", path="ruleCollectionGroups/aks-egress-baseline", times=1))
    arm.events.clear()
    arm.requests.clear()

    _, outcome = handle(rt, "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write", OWNED_GROUP)
    assert isinstance(outcome, triggers.EventOutcome) and outcome.status == "handled"  # accepted, not waited for
    arm.advance_clock(1)  # the operation ends Failed, and ARM says so
    [failure] = [e for e in arm.events if e["eventType"] == FAILURE]
    assert failure["data"]["claims"]["appid"] == REMEDIATOR

    _, again = handle(rt, failure["data"]["operationName"], OWNED_GROUP, event_type=FAILURE, caller=REMEDIATOR)

    assert isinstance(again, triggers.EventOutcome) and again.status == "handled"  # not skipped as its own
    assert "firewall-failed" in told.kinds()
    puts = [r for r in arm.requests if r["method"] == "PUT" and r["path"] == str(OWNED_GROUP)]
    assert len(puts) == 2  # written again, as Azure advises for a Failed update


def test_the_command_line_waits_and_sees_a_long_running_write_end_failed(
    arm: LocalArm, tmp_path: Path, operator_of: Operator
) -> None:
    from remediation.reconcile import reconcile_cluster
    from tests.conftest import make_network

    config = write_config(tmp_path)
    arm.faults.add(Fault(kind="fail", method="PUT", path="routeTables", times=1))

    result = reconcile_cluster(config.clusters[0], config=config, network=make_network(arm), wait=True)

    assert "write-failed" in {str(f.kind) for f in result.outstanding}
    assert not result.compliant


# --- Sinks that misbehave -------------------------------------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An HTTPS-less endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}/workflows/hook"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_hanging_teams_webhook_and_a_failing_audit_topic_share_one_deadline_however_many_clusters(
    arm: LocalArm,
    tmp_path: Path,
    black_hole: str,
    topic: Topic,  # noqa: F811 - the fixture
) -> None:
    clusters = [{**CLUSTER, "name": f"aks-{n}"} for n in range(8)]  # eight clusters behind the one hub firewall
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump({"mode": "enforce", "profile": "seed-2020", "clusters": clusters}))
    rt = make_runtime(load_config(path), arm)
    teams = TeamsAlerts(black_hole, rate=RateLimit(), attempt_timeout_seconds=5.0, budget_seconds=10.0)
    topic.status = 503
    audit = AuditTrail(topic.url, principal_id=REMEDIATOR, ca_bundle=str(topic.ca_bundle), retries=5)
    told = Told()
    rt.on_event += [told, teams.on_event, audit.on_event]

    took, outcome = handle(rt, "Microsoft.Network/firewallPolicies/write", POLICY)

    assert took < SECONDS + SLACK  # eight clusters, one card, one audit batch: one budget, not 8 x 10 s
    assert isinstance(outcome, triggers.EventOutcome) and outcome.status == "handled"
    [(results, _)] = told.events
    assert sorted(r.cluster for r in results) == sorted(c["name"] for c in clusters)
    assert 1 <= len(topic.requests) <= 6  # tried, retried within the deadline, then given up


def test_a_sink_that_raises_does_not_stop_the_others_or_the_answer(
    arm: LocalArm, converged: tuple[triggers.Runtime, Told], operator_of: Operator
) -> None:
    rt, told = converged

    def broken(results: Sequence[ClusterResult], change: ResourceChange | None) -> None:
        raise RuntimeError("a bug in a sink")

    rt.on_event.insert(0, broken)
    drift_the_default_route(arm, operator_of)

    _, outcome = handle(rt, "Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE)

    assert isinstance(outcome, triggers.EventOutcome) and outcome.status == "handled"
    [[result]] = [results for results, _ in told.events]
    assert result.compliant and result.changed
