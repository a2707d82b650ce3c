"""Soak: thousands of ARM events, random faults and people writing meanwhile (``make soak``; not in CI).

An estate of 2 hubs with 8 AKS spokes each (localarm/estates.py, converged) is served by localarm in its own
process, with ARM's throttling on, writes that stay ``Updating`` for 0.5 s, and its ARM events delivered like
Event Grid (4 at a time, retried on a short clock, then dead-lettered) to the stand-in Functions host, which
calls the real handler with its real 25 s deadline. Three people work at once, as fast as they can:

- they break the baseline: delete a cluster's rule from the remediator's group, delete the whole group, point
  a spoke's default route at the Internet, detach a route table from its subnet;
- they change what they own: rule collection groups ``team-*`` on the hub policies and routes ``team-*`` in
  the spokes' route tables, created, edited and deleted; each remembers what they last wrote.

Before every operation, one time in ``--fault-rate``, a fault is armed in localarm on a random path the
remediator reads or writes: throttling (``Retry-After`` 1 s to 120 s), 500, 503, dropped connections, slow
answers (up to 40 s), 409 ``AnotherOperationInProgress``, writes whose operation ends ``Failed``. People
retry what fails, as people do; they hit the same faults.

Then the faults stop, the people stop, and the deliveries drain. The table says whether every cluster is
compliant again from the events alone (before any sweep), whether anything people own differs from what
they last wrote (it must not), how long the handler took, and what each invocation ended with.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from benchmarks.localarm_process import REMEDIATOR, Localarm
from demo.functions_host import FunctionsHost
from localarm import estates
from remediation import deadline, triggers
from remediation.config import Mode, load_config
from remediation.network import ArmError, AzureNetwork, PreconditionFailed
from remediation.reconcile import reconcile_clusters
from remediation.resource_id import ResourceId

HUBS, PER_HUB = 2, 8
PEOPLE = 3
DELIVERIES = 4
OPERATOR = "c0ffee00-1111-4222-8333-444455556666"
OWNED = "aks-egress-baseline"
TEAMS = 6  # team-0 .. team-5: the rule collection groups and routes people own
DRAIN_SECONDS = 900.0
PATIENCE_SECONDS = 10.0
Json = dict[str, Any]


@dataclass
class Estate:
    policies: list[ResourceId]
    route_tables: list[ResourceId]
    subnets: list[ResourceId]
    firewall_ips: list[str]  # by hub
    hub_of_table: dict[ResourceId, int]

    @classmethod
    def of(cls, hubs: int, per_hub: int) -> Estate:
        spokes = estates.spokes(hubs, per_hub)
        return cls(
            policies=[ResourceId.parse(estates.policy(h)) for h in range(hubs)],
            route_tables=[ResourceId.parse(s.route_table) for s in spokes],
            subnets=[ResourceId.parse(s.subnet) for s in spokes],
            firewall_ips=[estates.firewall_ip(h) for h in range(hubs)],
            hub_of_table={ResourceId.parse(s.route_table): s.hub for s in spokes},
        )


@dataclass
class Ledger:
    """What people did, and what they last wrote to what they own (``None``: they deleted it)."""

    owned_by_people: dict[ResourceId, Json | None] = field(default_factory=dict)
    operations: collections.Counter[str] = field(default_factory=collections.Counter)
    conflicts: int = 0  # their write raced another (412), so they read again and redid it
    failures: int = 0  # their write failed (a fault) and they tried again
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _holds: dict[ResourceId, threading.Lock] = field(default_factory=dict)

    def holding(self, target: ResourceId) -> threading.Lock:
        """One person at a time on each thing people own (so that what was last written is well defined)."""
        with self.lock:
            return self._holds.setdefault(target, threading.Lock())


@dataclass(frozen=True)
class Change:
    """One change a person makes, decided before it is tried (a retry makes the same change). ``target``,
    when set, is something people own: it is remembered as ``body`` (``None``: deleted) once the change lands."""

    do: Callable[[], None]
    target: ResourceId | None = None
    body: Json | None = None


class Person:
    """Somebody with write access on the landing zone, working through a list of random changes."""

    def __init__(self, network: AzureNetwork, estate: Estate, ledger: Ledger, rng: random.Random) -> None:
        self.network, self.estate, self.ledger, self.rng = network, estate, ledger, rng

    def work(self, operations: int, arm: Localarm, fault_rate: int, think: float) -> None:
        moves: list[tuple[str, Callable[[], Change]]] = [
            ("delete a cluster's rule", self.delete_a_rule),
            ("delete the remediator's group", self.delete_the_group),
            ("route a spoke to the Internet", self.route_to_internet),
            ("detach a route table", self.detach_route_table),
            ("write a team's rule collection group", self.write_team_group),
            ("delete a team's rule collection group", self.delete_team_group),
            ("write a team's route", self.write_team_route),
            ("delete a team's route", self.delete_team_route),
        ]
        weights = [6, 1, 4, 2, 5, 2, 5, 2]
        for _ in range(operations):
            if self.rng.randrange(fault_rate) == 0:
                fault = random_fault(self.rng)
                arm.control("faults", fault, method="POST")
                with self.ledger.lock:
                    self.ledger.faults[fault["kind"]] += 1
            name, move = self.rng.choices(moves, weights)[0]
            self.persist(move())
            with self.ledger.lock:
                self.ledger.operations[name] += 1
            time.sleep(self.rng.uniform(0, 2 * think))

    def persist(self, change: Change) -> None:
        """Make ``change`` until it lands: read again after a 412, try again after a failure. A person gives
        each try 10 s (a ``Retry-After`` of 2 minutes is not waited out: they come back to it)."""
        held = self.ledger.holding(change.target) if change.target else contextlib.nullcontext()
        with held:
            for _ in range(30):
                try:
                    with deadline.running(deadline.Deadline.after(PATIENCE_SECONDS)):
                        change.do()
                except PreconditionFailed:
                    with self.ledger.lock:
                        self.ledger.conflicts += 1
                    continue
                except ArmError:
                    with self.ledger.lock:
                        self.ledger.failures += 1
                    time.sleep(0.5)
                    continue
                if change.target is not None:
                    with self.ledger.lock:
                        self.ledger.owned_by_people[change.target] = change.body
                return
        raise RuntimeError("a person could not make a change in 30 attempts")

    # --- the baseline, broken --------------------------------------------------------------------------

    def delete_a_rule(self) -> Change:
        group = self.rng.choice(self.estate.policies).child("ruleCollectionGroups", OWNED)
        pick = self.rng.random()

        def do() -> None:
            current = self.network.find(group)
            if current is None:
                return
            body = copy.deepcopy(current.body)
            rules = [r for c in body["properties"]["ruleCollections"] for r in c.get("rules", [])]
            if not rules:
                return
            doomed = rules[int(pick * len(rules))]["name"]
            for collection in body["properties"]["ruleCollections"]:
                collection["rules"] = [r for r in collection.get("rules", []) if r["name"] != doomed]
            self.network.put(group, body, etag=current.etag, wait=True)

        return Change(do)

    def delete_the_group(self) -> Change:
        return Change(partial(self.delete, self.rng.choice(self.estate.policies).child("ruleCollectionGroups", OWNED)))

    def route_to_internet(self) -> Change:
        route = self.rng.choice(self.estate.route_tables).child("routes", "aks-egress-default")
        return Change(
            partial(self.put, route, {"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}})
        )

    def detach_route_table(self) -> Change:
        subnet = self.rng.choice(self.estate.subnets)

        def do() -> None:
            current = self.network.get(subnet)
            body = copy.deepcopy(current.body)
            body["properties"].pop("routeTable", None)
            self.network.put(subnet, body, etag=current.etag, wait=True)

        return Change(do)

    # --- what people own ---------------------------------------------------------------------------------

    def write_team_group(self) -> Change:
        team = self.rng.randrange(TEAMS)
        group = self.rng.choice(self.estate.policies).child("ruleCollectionGroups", f"team-{team}")
        rules = [
            {
                "ruleType": "NetworkRule",
                "name": f"team-{team}-{n}",
                "ipProtocols": ["TCP"],
                "sourceAddresses": ["10.0.0.0/8"],
                "destinationAddresses": [f"10.200.{team}.{self.rng.randrange(1, 255)}"],
                "destinationPorts": [str(self.rng.randrange(1024, 9000))],
            }
            for n in range(self.rng.randrange(1, 4))
        ]
        collection = {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": f"team-{team}",
            "priority": 100,
            "action": {"type": "Allow"},
            "rules": rules,
        }
        body = {"properties": {"priority": 1000 + team, "ruleCollections": [collection]}}
        return Change(partial(self.put, group, body), group, body)

    def delete_team_group(self) -> Change:
        group = self.rng.choice(self.estate.policies).child("ruleCollectionGroups", f"team-{self.rng.randrange(TEAMS)}")
        return Change(partial(self.delete, group), group, None)

    def write_team_route(self) -> Change:
        table = self.rng.choice(self.estate.route_tables)
        team = self.rng.randrange(TEAMS)
        route = table.child("routes", f"team-{team}")
        hop = self.estate.firewall_ips[self.estate.hub_of_table[table]]
        prefix = f"192.168.{team * 10 + self.rng.randrange(10)}.0/24"
        body = {"properties": {"addressPrefix": prefix, "nextHopType": "VirtualAppliance", "nextHopIpAddress": hop}}
        return Change(partial(self.put, route, body), route, body)

    def delete_team_route(self) -> Change:
        route = self.rng.choice(self.estate.route_tables).child("routes", f"team-{self.rng.randrange(TEAMS)}")
        return Change(partial(self.delete, route), route, None)

    # --- writing, as a person does: read the etag, write with it -------------------------------------------

    def put(self, target: ResourceId, body: Json) -> None:
        current = self.network.find(target)
        self.network.put(target, body, etag=current.etag if current else None, wait=True)

    def delete(self, target: ResourceId) -> None:
        current = self.network.find(target)
        if current is not None:
            self.network.delete(target, etag=current.etag, wait=True)


PATHS = (
    f"ruleCollectionGroups/{OWNED}",
    "firewallPolicies/fwpol-[0-9]+$",
    "azureFirewalls/fw-",
    "routeTables/rt-aks-",
    "virtualNetworks/vnet-aks-",
    "publicIPAddresses",
)


def random_fault(rng: random.Random) -> Json:
    path = rng.choice(PATHS)
    kind = rng.choice(["throttle", "throttle", "error", "unavailable", "drop", "delay", "conflict", "fail"])
    fault: Json = {"kind": kind, "path": path, "times": rng.randrange(1, 4)}
    if kind in ("throttle", "unavailable"):
        fault |= {"method": rng.choice(["GET", "PUT"]), "retryAfter": rng.choice([1, 2, 5, 40, 120])}
    elif kind in ("error", "drop"):
        fault["method"] = rng.choice(["GET", "PUT"])
    elif kind == "delay":
        fault |= {"method": "GET", "times": 1, "seconds": rng.choice([1, 2, 5, 40])}
    else:  # conflict, fail: writes
        fault |= {"method": "PUT", "times": 1}
    return fault


def outcome(invocation: Json) -> str:
    """What one invocation ended with, in a few words."""
    if invocation["ok"]:
        returned: triggers.EventOutcome = invocation["returned"]
        if returned.status == "handled":
            return "handled: restored" if any(r.changed for r in returned.results) else "handled: nothing to restore"
        return returned.status
    raised = invocation["raised"]
    if not isinstance(raised, triggers.RetryLater):
        return f"CRASHED: {type(raised).__name__}"
    reasons = ("is busy", "is unreachable", "could not be reconciled in time", "has a write that failed")
    return "retry: " + next((r for r in reasons if r in str(raised)), "cannot route the event")


def same_content(actual: Any, expected: Any) -> bool:
    """``expected`` (what a person wrote) is in ``actual`` (what ARM returns, with ids, etags and states added)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(same_content(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same_content(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=1200, help="changes people make, all together")
    parser.add_argument("--fault-rate", type=int, default=8, help="one fault armed per this many operations")
    parser.add_argument("--think", type=float, default=0.5, help="mean seconds a person pauses between changes")
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args(argv)
    if args.operations < PEOPLE or args.fault_rate < 1 or args.think < 0:
        parser.error(f"--operations must be at least {PEOPLE}, --fault-rate at least 1, --think at least 0")

    estate, ledger = Estate.of(HUBS, PER_HUB), Ledger()
    logging.getLogger("remediation").addHandler(logging.NullHandler())  # the table says what happened
    with tempfile.TemporaryDirectory() as tmp, FunctionsHost(triggers.handle_delivery) as host:
        workdir = Path(tmp)
        config_path = workdir / "remediation.yaml"
        config_path.write_text(yaml.safe_dump(estates.configuration(HUBS, PER_HUB)))
        arm = Localarm(
            estates.document(HUBS, PER_HUB),
            workdir,
            lro_seconds=0.5,
            events_url=host.url,
            event_deliveries=DELIVERIES,
        )
        try:
            os.environ.update(
                ARM_ENDPOINT=arm.endpoint,
                ARM_CA_BUNDLE=arm.ca_bundle,
                ARM_POLLING_INTERVAL="0.2",
                REMEDIATION_CONFIG=str(config_path),
                REMEDIATOR_PRINCIPAL_ID=REMEDIATOR,
            )
            os.environ.pop("TEAMS_WEBHOOK_URL", None)
            triggers.reset_runtime(None)
            started = time.monotonic()
            people = [
                threading.Thread(
                    target=Person(
                        AzureNetwork(
                            endpoint=arm.endpoint, ca_bundle=arm.ca_bundle, principal_id=OPERATOR, polling_interval=0.2
                        ),
                        estate,
                        ledger,
                        random.Random(args.seed + n),
                    ).work,
                    args=(args.operations // PEOPLE, arm, args.fault_rate, args.think),
                )
                for n in range(PEOPLE)
            ]
            for person in people:
                person.start()
            for person in people:
                person.join()
            worked = time.monotonic() - started
            arm.control("faults", method="DELETE")
            drained = drain(arm)
            settled = time.monotonic() - started

            config = load_config(config_path)
            checker = AzureNetwork(endpoint=arm.endpoint, ca_bundle=arm.ca_bundle, principal_id=OPERATOR)
            check = reconcile_clusters(config.clusters, config=config, network=checker, mode=Mode.AUDIT)
            changed = [t for t, body in ledger.owned_by_people.items() if not same(checker, t, body)]
            deliveries = arm.control("events/deliveries")
            requests = arm.control("requests")["requests"]
        finally:
            arm.stop()

    invocations = list(host.invocations)
    seconds = sorted(i["seconds"] for i in invocations)
    outcomes = collections.Counter(outcome(i) for i in invocations)
    remediator_writes = sum(1 for r in requests if r["caller"] == REMEDIATOR and r["method"] in ("PUT", "DELETE"))
    throttled = sum(1 for r in requests if r["status"] == 429)
    remediator_reads = sum(
        1 for r in requests if r["caller"] == REMEDIATOR and r["method"] == "GET" and r["status"] != 429
    )

    print(f"soak: {HUBS} hubs x {PER_HUB} spokes, {PEOPLE} people, {DELIVERIES} deliveries at a time, seed {args.seed}")
    changes = sum(ledger.operations.values())
    print(f"  people:  {changes:,} changes in {worked:.0f} s; {ledger.conflicts} redone after a 412")
    print(f"           and {ledger.failures} after a failure; {sum(ledger.faults.values())} faults armed")
    print(f"           ({', '.join(f'{k} {n}' for k, n in sorted(ledger.faults.items()))})")
    dead = len(deliveries["deadLetters"])
    print(f"  events:  {len(invocations):,} invocations, {dead} dead-lettered; drained: {drained}")
    print(f"           {remediator_writes} remediator writes, {throttled} requests throttled (429)")
    print(
        f"           {remediator_reads:,} remediator reads, {remediator_reads / settled:.1f}/s "
        "(ARM refills a principal's reads at 25/s)"
    )
    print()
    print(f"  {'converged from events alone':<40} {check.compliant:>6} / {len(config.clusters)} clusters")
    print(f"  {'what people own, changed by the remediator':<40} {len(changed):>6} of {len(ledger.owned_by_people)}")
    print(f"  {'handler p50':<40} {statistics.median(seconds) * 1000:>6.0f} ms")
    print(f"  {'handler p95':<40} {statistics.quantiles(seconds, n=20)[-1] * 1000:>6.0f} ms")
    print(f"  {'handler max (Event Grid waits 30 s)':<40} {seconds[-1]:>6.1f} s")
    print(f"  {'settled after':<40} {settled:>6.0f} s")
    print()
    print(f"  {'invocation outcome':<40} {'count':>6}")
    for name, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {name:<40} {count:>6}")
    for target in changed:
        print(f"  CHANGED: {target}")
    healthy = check.compliant == len(config.clusters) and not changed and not any("CRASHED" in o for o in outcomes)
    return 0 if healthy else 1


def drain(arm: Localarm) -> bool:
    """Wait until every event was delivered (or dead-lettered) and no write is still running."""
    deadline = time.monotonic() + DRAIN_SECONDS
    quiet_since = None
    while time.monotonic() < deadline:
        deliveries = arm.control("events/deliveries")
        attempts = len(deliveries["attempts"])
        if deliveries["pending"] == 0:
            quiet_since = quiet_since or (time.monotonic(), attempts)
            # Quiet for 3 s with no new delivery: the last writes' events have come and gone.
            if time.monotonic() - quiet_since[0] > 3 and attempts == quiet_since[1]:
                return True
        else:
            quiet_since = None
        time.sleep(0.2)
    return False


def same(network: AzureNetwork, target: ResourceId, expected: Json | None) -> bool:
    current = network.find(target)
    return same_content(current.body if current else None, expected)


if __name__ == "__main__":
    sys.exit(main())
