"""One hub, many spokes: Azure's unit is the shared resource, so the remediator plans and writes per resource.

An estate of 24 AKS spokes sharing one hub firewall and policy (localarm/estates.py), through the real SDK
against localarm, with policy writes kept in progress for a while as Azure keeps them for minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localarm import estates, scenarios
from localarm.server import LocalArm
from remediation import triggers
from remediation.config import Config, load_config
from remediation.network import AzureNetwork
from remediation.reconcile import reconcile, reconcile_clusters
from remediation.resource_id import ResourceId
from tests.conftest import OPERATOR, make_network
from tests.landing_zone import Operator
from tests.test_function_app import event_grid_event, make_runtime

SPOKES = 24
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
POLICY = ResourceId.parse(estates.spokes(1, 1)[0].firewall.replace("azureFirewalls/fw-0", "firewallPolicies/fwpol-0"))
OWNED_GROUP = POLICY.child("ruleCollectionGroups", "aks-egress-baseline")


@pytest.fixture
def estate(arm: LocalArm, tmp_path: Path) -> Iterator[Config]:
    arm.reset()
    scenarios.seed(estates.document(1, SPOKES), arm.store, label="hub")
    path = tmp_path / "remediation.yaml"
    path.write_text(yaml.safe_dump(estates.configuration(1, SPOKES)))
    yield load_config(path)


def reads_of(arm: LocalArm, path: str) -> int:
    return sum(1 for r in arm.requests if r["method"] == "GET" and r["path"].lower() == path.lower())


def owned_rule_names(network: AzureNetwork) -> set[str]:
    group = network.get(OWNED_GROUP)
    return {r["name"] for c in group.body["properties"]["ruleCollections"] for r in c["rules"]}


def test_the_converged_estate_is_compliant_for_every_spoke_with_no_write(
    arm: LocalArm, network: AzureNetwork, estate: Config
) -> None:
    results = reconcile(estate.clusters, config=estate, network=network)

    assert [r.cluster for r in results if not r.compliant] == []
    assert [r for r in arm.requests if r["method"] != "GET"] == []


def test_one_deleted_owned_group_is_restored_for_every_spoke_by_one_event_and_one_write(
    arm: LocalArm, estate: Config
) -> None:
    Operator(make_network(arm, principal_id=OPERATOR)).delete(OWNED_GROUP)
    arm.store.lro_seconds = 3.0  # the policy stays Updating after the write, as Azure keeps it for minutes
    arm.requests.clear()
    rt = make_runtime(estate, arm)

    outcome = triggers.handle_event(
        event_id="e1",
        event_type=DELETE,
        data=event_grid_event(
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete", OWNED_GROUP, delete=True
        ).get_json(),
        rt=rt,
    )

    assert outcome.status == "handled"  # no RetryLater: nothing waited for another write of its own
    assert [(r["method"], r["path"]) for r in arm.requests if r["method"] != "GET"] == [("PUT", str(OWNED_GROUP))]
    assert len(outcome.results) == SPOKES and all(r.compliant for r in outcome.results)
    arm.advance_clock(5)
    assert owned_rule_names(make_network(arm)) == {f"aks-{n}-aks-fqdn-tag" for n in range(SPOKES)}


def test_the_sweep_reads_the_shared_firewall_and_policy_once(
    arm: LocalArm, network: AzureNetwork, estate: Config
) -> None:
    firewall = estate.clusters[0].firewall

    sweep = reconcile_clusters(estate.clusters, config=estate, network=network, concurrency=4)

    assert sweep.compliant == SPOKES
    assert reads_of(arm, str(firewall)) == 1
    assert reads_of(arm, str(POLICY)) == 1
    assert reads_of(arm, f"{POLICY}/ruleCollectionGroups") == 1
    assert sum(1 for r in arm.requests if r["method"] == "GET") <= 2 * SPOKES + 5  # table + network per spoke


def test_an_event_on_one_spokes_route_table_reconciles_that_spoke_and_reads_the_hub_once(
    arm: LocalArm, estate: Config
) -> None:
    spoke = estate.clusters[7]
    rt = make_runtime(estate, arm)

    outcome = triggers.handle_event(
        event_id="e2",
        event_type=WRITE,
        data=event_grid_event("Microsoft.Network/routeTables/write", spoke.route_table).get_json(),
        rt=rt,
    )

    assert [r.cluster for r in outcome.results] == [spoke.name]
    assert reads_of(arm, str(spoke.firewall)) == reads_of(arm, str(POLICY)) == 1
    assert sum(1 for r in arm.requests if r["method"] == "GET" and "rt-aks-" in r["path"]) == 1


def test_two_workers_racing_on_the_same_hub_end_in_one_correct_state(arm: LocalArm, estate: Config) -> None:
    """Two Functions workers (two processes: no shared lock) handle two events at once: the owned group was
    deleted, and one spoke changed. One write wins; the other gets 412 and plans again with what it reads."""
    Operator(make_network(arm, principal_id=OPERATOR)).delete(OWNED_GROUP)
    arm.store.lro_seconds = 0.0
    arm.requests.clear()
    workers = [make_runtime(estate, arm), make_runtime(estate, arm)]
    events = [
        (
            DELETE,
            event_grid_event(
                "Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete", OWNED_GROUP, delete=True
            ),
        ),
        (WRITE, event_grid_event("Microsoft.Network/routeTables/write", estate.clusters[3].route_table)),
    ]
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def work(rt: triggers.Runtime, event_type: str, event: object) -> None:
        barrier.wait()
        try:
            outcomes.append(
                triggers.handle_event(event_id=f"e-{event_type}", event_type=event_type, data=event.get_json(), rt=rt)
            )  # type: ignore[attr-defined]
        except triggers.RetryLater as err:  # a busy policy: Event Grid would deliver it again
            outcomes.append(err)

    threads = [threading.Thread(target=work, args=(rt, et, ev)) for rt, (et, ev) in zip(workers, events, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == 2
    assert owned_rule_names(make_network(arm)) == {f"aks-{n}-aks-fqdn-tag" for n in range(SPOKES)}
    puts = [r["status"] for r in arm.requests if r["method"] == "PUT" and r["path"] == str(OWNED_GROUP)]
    assert set(puts) <= {201, 200, 412, 409}  # a loser gets 412 (and plans again) or 409 (and retries later)
    final = reconcile(estate.clusters, config=estate, network=make_network(arm))
    assert all(r.compliant and not r.changed for r in final)


def test_a_sweep_paces_itself_to_arms_throttle_and_meets_no_429(arm: LocalArm, tmp_path: Path) -> None:
    """ARM's buckets, made small (their refill rates are Azure's): the sweep reads the levels ARM reports
    and waits for tokens instead of collecting 429s, the group that started first writing while the next reads."""
    arm.reset()
    scenarios.seed(estates.document(3, 8, converged=False), arm.store, label="hubs")
    path = tmp_path / "remediation.yaml"
    path.write_text(yaml.safe_dump(estates.configuration(3, 8)))
    config = load_config(path)
    arm.throttle.configure(
        {
            "reads": {"capacity": 30, "refillPerSecond": 25},
            "writes": {"capacity": 15, "refillPerSecond": 10},
            "enabled": True,
        }
    )
    network = make_network(arm)
    arm.requests.clear()

    try:
        sweep = reconcile_clusters(config.clusters, config=config, network=network, wait=False, concurrency=4)
    finally:
        arm.throttle.reset()

    assert [r["path"] for r in arm.requests if r["status"] == 429] == []
    assert network.pacer.waited > 0  # it did have to wait: the budget was short
    assert len(sweep.results) == 24 and all(r.compliant and r.changed for r in sweep.results)
    writes = [r for r in arm.requests if r["method"] == "PUT"]
    assert len(writes) == 24 + 3  # a route table per spoke, the owned group per hub
    # The group that started first wrote while the last one was still reading (it had ARM's budget first).
    first_write = min(r["seq"] for r in writes)
    last_group = [r["seq"] for r in arm.requests if r["method"] == "GET" and "rg-spokes-2" in r["path"]]
    assert sum(1 for seq in last_group if seq > first_write) > len(last_group) / 2
