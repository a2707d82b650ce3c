"""``python -m demo``: the Functions app against an embedded localarm, end to end.

localarm serves the aks-demo landing zone with its AKS cluster and delivers its ARM events the way Event
Grid does, to a stand-in for the Functions host that calls the decorated functions of ``function_app.py``.
The configuration names the cluster only (``aks``): everything else is learned from AKS. The demo runs the
nightly sweep once, then plays an operator making everyday mistakes, a team adding a node pool on a new
subnet, and a team deploying and deleting a LoadBalancer service, and shows for each the event, what the
remediator found and did, how long it took and how many ARM calls it made. It exits 0 only if the landing
zone ends compliant.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.functions.timer import TimerRequest

import function_app
from demo.aks_client import AksClient
from demo.functions_host import FunctionsHost
from demo.teams_receiver import TeamsReceiver
from localarm import scenarios
from localarm.server import LocalArm
from remediation import cli, triggers
from remediation.alerts import render_text
from remediation.network import AzureNetwork, LocalTokenCredential
from remediation.resource_id import ResourceId, short_name

CONFIG = Path(__file__).parent / "aks-demo.yaml"
REMEDIATOR = "0f5e7c1a-9d3b-4e2f-8a6c-1b2d3e4f5a6b"
OPERATOR = "c0ffee00-1111-4222-8333-444455556666"
PLATFORM = "5a1e0000-7777-4888-9999-aaaabbbbcccc"
SCENARIO = "aks-demo-cluster"
SUB = scenarios.read(SCENARIO)["subscriptionId"]


def rid(text: str) -> ResourceId:
    return ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/{text}")


POLICY = rid("rg-hub/providers/Microsoft.Network/firewallPolicies/fwpol-hub")
OWNED_GROUP = POLICY.child("ruleCollectionGroups", "aks-egress-baseline")
ROUTE_TABLE = rid("rg-spoke/providers/Microsoft.Network/routeTables/rt-aks")
DEFAULT_ROUTE = ROUTE_TABLE.child("routes", "aks-egress-default")
SHORTCUTS = {"test-low": "0.0.0.0/1", "test-high": "128.0.0.0/1"}
AKS_SUBNET = rid("rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet-spoke/subnets/aks-nodes")
AKS_CLUSTER = rid("rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-demo")
BATCH_SUBNET = rid("rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet-spoke/subnets/aks-batch")
OLD_ROUTE_TABLE = rid("rg-spoke/providers/Microsoft.Network/routeTables/rt-batch")
NODE_GROUP = "MC_rg-aks_aks-demo_westeurope"
LOAD_BALANCER = rid(f"{NODE_GROUP}/providers/Microsoft.Network/loadBalancers/kubernetes")
CHECKOUT_IP = rid(f"{NODE_GROUP}/providers/Microsoft.Network/publicIPAddresses/kubernetes-c4d1e2f3a5b6")
CHECKOUT = "c4d1e2f3a5b64c7d8e9f0a1b2c3d4e5f"  # AKS names a frontend after the service's UID
AKS_IDENTITY = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"


class Results(logging.Handler):
    """Collects the structured result the app logs for every reconcile."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []
        self.sweeps: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "remediation"):
            self.records.append(record.remediation)
        if hasattr(record, "remediation_sweep"):
            self.sweeps.append(record.remediation_sweep)


def show_learned(result: dict[str, Any], *names: str, indent: str = "   ") -> None:
    """What the cluster was learned to be (the facts ``names``), as ``check --explain`` shows it."""
    facts = {fact["name"]: fact for fact in (result.get("learned") or {}).get("facts", [])}
    for name in names:
        if name in facts:
            print(f"{indent}learned {name:<26} {facts[name]['value']}  [{facts[name]['source']}]")


def show_result(result: dict[str, Any], *, indent: str = "   ") -> None:
    for finding in result["findings"]:
        print(f"{indent}found  {finding['kind']:<22} {finding['detail']}")
    for action in result["actions"]:
        where = short_name(action["resource"])
        print(f"{indent}did    {action['method']} {where} [{action['status']}] {action['summary']}")
    calls = result["armCalls"]
    seconds = result["durationSeconds"]
    print(f"{indent}cost   {calls['reads']} ARM reads, {calls['writes']} write(s), {seconds:.2f} s in the function")


def show_cards(teams: TeamsReceiver, seen: int) -> int:
    """The Teams cards posted since ``seen``, two lines each (the full cards are saved as JSON)."""
    for message in teams.received[seen:]:
        for card in message.cards:
            headline, summary, *_ = [*render_text(card).splitlines(), "", ""]
            print(f"   teams  {headline} — {summary}")
    return len(teams.received)


def wait_quiet(arm: LocalArm, host: FunctionsHost, *, timeout: float = 30.0) -> None:
    """Until no operation is running and every event has been delivered (and handled)."""
    deadline = time.monotonic() + timeout
    delivery = arm.delivery
    while time.monotonic() < deadline:
        pending = delivery.pending() if delivery else 0
        if arm.store.next_deadline() is None and pending == 0 and len(host.invocations) >= len(arm.events):
            return
        time.sleep(0.05)
    raise TimeoutError("the landing zone did not settle")


@dataclass(frozen=True)
class Actor:
    """Somebody changing the landing zone: through the network SDK, and through AKS as ``az aks`` would."""

    network: AzureNetwork
    aks: AksClient


def edit(network: AzureNetwork, target: ResourceId, change: Callable[[dict[str, Any]], None]) -> None:
    resource = network.get(target)
    body = resource.body
    change(body)
    network.put(target, body, etag=resource.etag, wait=True)


def delete_rule(body: dict[str, Any]) -> None:
    for collection in body["properties"]["ruleCollections"]:
        collection["rules"] = [r for r in collection["rules"] if r["name"] != "aks-demo-tunnel-udp-1194"]


def route_to_internet(body: dict[str, Any]) -> None:
    body["properties"].update(nextHopType="Internet")
    body["properties"].pop("nextHopIpAddress", None)


def add_shortcuts(network: AzureNetwork) -> None:
    """The well-known way around a default route: two halves of the Internet, each more specific than /0."""
    for name, prefix in SHORTCUTS.items():
        network.put(
            ROUTE_TABLE.child("routes", name),
            {"properties": {"addressPrefix": prefix, "nextHopType": "Internet"}},
            etag=None,
            wait=True,
        )


def remove_shortcuts(network: AzureNetwork) -> None:
    for name in SHORTCUTS:
        network.delete(ROUTE_TABLE.child("routes", name), etag=None, wait=True)


def detach(body: dict[str, Any]) -> None:
    body["properties"].pop("routeTable", None)


def delete_group(network: AzureNetwork) -> None:
    network.delete(OWNED_GROUP, etag=None, wait=True)


def add_node_pool(actor: Actor) -> None:
    """A team adds node pool `batch` on a new subnet, with a route table copied from an old spoke: AKS accepts
    it (its default route goes to an appliance), but the appliance is the retired NVA, not the hub firewall."""
    old_default = {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.99"}
    table = {"location": "westeurope", "properties": {"routes": [{"name": "to-old-nva", "properties": old_default}]}}
    actor.network.put(OLD_ROUTE_TABLE, table, etag=None, wait=True)
    subnet = {"properties": {"addressPrefix": "10.240.4.0/22", "routeTable": {"id": str(OLD_ROUTE_TABLE)}}}
    actor.network.put(BATCH_SUBNET, subnet, etag=None, wait=True)
    pool = {"properties": {"count": 3, "vmSize": "Standard_D8s_v5", "mode": "User", "vnetSubnetID": str(BATCH_SUBNET)}}
    actor.aks.put(f"{AKS_CLUSTER}/agentPools/batch", pool)


def deploy_service(network: AzureNetwork) -> None:
    """What AKS's cloud provider does for a new `type: LoadBalancer` service: a public IP, a frontend
    and a load-balancing rule on the cluster's `kubernetes` load balancer."""
    ip = {"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}
    network.put(CHECKOUT_IP, ip, etag=None, wait=True)

    def add(body: dict[str, Any]) -> None:
        props = body["properties"]
        props["frontendIPConfigurations"].append(
            {"name": CHECKOUT, "properties": {"publicIPAddress": {"id": str(CHECKOUT_IP)}}}
        )
        props["loadBalancingRules"].append(
            {
                "name": f"{CHECKOUT}-TCP-80",
                "properties": {
                    "frontendIPConfiguration": {"id": f"{LOAD_BALANCER}/frontendIPConfigurations/{CHECKOUT}"},
                    "backendAddressPool": {"id": f"{LOAD_BALANCER}/backendAddressPools/kubernetes"},
                    "protocol": "Tcp",
                    "frontendPort": 80,
                    "backendPort": 80,
                },
            }
        )

    edit(network, LOAD_BALANCER, add)


def delete_service(network: AzureNetwork) -> None:
    def remove(body: dict[str, Any]) -> None:
        props = body["properties"]
        props["loadBalancingRules"] = [r for r in props["loadBalancingRules"] if not r["name"].startswith(CHECKOUT)]
        props["frontendIPConfigurations"] = [f for f in props["frontendIPConfigurations"] if f["name"] != CHECKOUT]

    edit(network, LOAD_BALANCER, remove)
    network.delete(CHECKOUT_IP, etag=None, wait=True)


# (who, what they do, how): the operator's mistakes, a team's node pool, then a team's LoadBalancer service
# coming and going. The node pool comes before the detached subnet: the cluster's other subnet then still
# tells which route table the detached one must get back.
CHANGES: list[tuple[str, str, Callable[[Actor], None]]] = [
    (
        "operator",
        "deletes the baseline rule aks-demo-tunnel-udp-1194 while tidying up",
        lambda a: edit(a.network, OWNED_GROUP, delete_rule),
    ),
    (
        "operator",
        "points 0.0.0.0/0 at Internet to 'test something quickly'",
        lambda a: edit(a.network, DEFAULT_ROUTE, route_to_internet),
    ),
    (
        "operator",
        "adds 0.0.0.0/1 and 128.0.0.0/1 -> Internet to 'test quickly': more specific than 0.0.0.0/0, they win",
        lambda a: add_shortcuts(a.network),
    ),
    ("operator", "reads the Teams card and removes the two routes again", lambda a: remove_shortcuts(a.network)),
    ("operator", "deletes the whole rule collection group aks-egress-baseline", lambda a: delete_group(a.network)),
    (
        "platform",
        "adds node pool `batch` on a new subnet aks-batch, with a route table copied from an old spoke",
        add_node_pool,
    ),
    ("operator", "detaches the route table from the AKS subnet", lambda a: edit(a.network, AKS_SUBNET, detach)),
    (
        "kubernetes",
        "gets a new LoadBalancer service: a team deploys `checkout` on port 80",
        lambda a: deploy_service(a.network),
    ),
    ("kubernetes", "loses the service again: the team deletes `checkout`", lambda a: delete_service(a.network)),
]
WHO = {"operator": "An operator", "platform": "The platform team", "kubernetes": "The cluster"}


def main() -> int:
    started = time.monotonic()
    results = Results()
    logging.getLogger("remediation").addHandler(results)
    logging.getLogger("remediation").setLevel(logging.INFO)
    cards = Path("build/demo-cards")
    with (
        FunctionsHost() as host,
        LocalArm(scenario=SCENARIO, lro_seconds=1.0, events_url=host.url) as arm,
        TeamsReceiver(cards) as teams,
    ):
        os.environ.update(
            ARM_ENDPOINT=arm.endpoint,
            ARM_CA_BUNDLE=str(arm.ca_bundle),
            ARM_POLLING_INTERVAL="0.5",
            REMEDIATION_CONFIG=str(CONFIG),
            REMEDIATOR_PRINCIPAL_ID=REMEDIATOR,
            TEAMS_WEBHOOK_URL=teams.url,
        )
        triggers.reset_runtime(None)
        print("AKS Egress Remediator demo")
        print(f"  localarm (Azure Resource Manager, locally) serves the aks-demo landing zone at {arm.endpoint},")
        print("  with the AKS cluster aks-demo; the configuration names only the cluster and its firewall")
        print("  and delivers its ARM events like Event Grid to a stand-in Functions host running function_app.py;")
        print(f"  a local Teams webhook receives the cards the app posts (saved in {cards}/)\n")

        print("1. The nightly sweep runs once and brings the landing zone to the seed-2020 baseline")
        function_app.nightly_sweep(TimerRequest(past_due=False))
        sweep = results.sweeps[-1]
        for cluster in sweep["clusters"]:
            show_learned(cluster, "location", "subnets", "routeTable", "inbound.nodeResourceGroup", "tunnel")
            show_result(cluster)
        posted = show_cards(teams, 0)
        wait_quiet(arm, host)
        skipped = len(host.invocations)
        print(f"   its own {skipped} write event(s) came back through Event Grid and were skipped")
        print("   (their caller is REMEDIATOR_PRINCIPAL_ID)\n")

        def actor(principal: str, name: str, upn: str | None = None) -> Actor:
            credential = LocalTokenCredential(principal_id=principal, name=name, upn=upn)
            endpoint, ca_bundle = arm.endpoint, str(arm.ca_bundle)
            return Actor(
                network=AzureNetwork(
                    endpoint=endpoint, ca_bundle=ca_bundle, credential=credential, polling_interval=0.2
                ),
                aks=AksClient(endpoint=endpoint, credential=credential, ca_bundle=ca_bundle, polling_interval=0.2),
            )

        actors = {
            "operator": actor(OPERATOR, "Dana Okafor", "dana@contoso.example"),
            "platform": actor(PLATFORM, "Sam Lindqvist", "sam@contoso.example"),
            "kubernetes": actor(AKS_IDENTITY, "aks-demo cloud provider"),
        }
        timings = []
        for number, (who, story, change) in enumerate(CHANGES, start=2):
            print(f"{number}. {WHO[who]} {story}")
            seen = len(results.records)
            change(actors[who])
            changed_at = time.monotonic()
            wait_quiet(arm, host)
            handled = [r for r in results.records[seen:] if r.get("cause")]
            for result in handled:
                cause = result["cause"]
                caller = cause["caller"].get("upn") or cause["caller"].get("name")
                print(f"   event  {cause['operation']} on {short_name(cause['resource'])} by {caller}")
                if who == "platform" or story.startswith("detaches the route table"):
                    show_learned(result, "subnets", "routeTable")
                if result["findings"]:
                    show_result(result)
                else:
                    print("   found  nothing to do: the baseline is intact")
            posted = show_cards(teams, posted)
            took = time.monotonic() - changed_at
            timings.append((story, took, sum(r["armCalls"]["reads"] + r["armCalls"]["writes"] for r in handled)))
            outcome = "a landing zone at the baseline" if not handled or handled[-1]["compliant"] else "a report"
            print(f"   took   {took:.1f} s from the change to {outcome}\n")

        print(f"{len(CHANGES) + 2}. Is everything back? (python -m remediation check)")
        code = cli.main(["check", "--config", str(CONFIG)])
        print("summary")
        for story, took, calls in timings:
            print(f"   {took:5.1f} s  {calls:3d} ARM calls  {story}")
        print(f"   whole demo: {time.monotonic() - started:.1f} s; exit {code}\n")
        print(
            "In Azure: `azd up` deploys the same function_app.py as a Flex Consumption app with a managed identity,\n"
            "an Event Grid system topic on the subscription filtered to these operations, and the remediator\n"
            "role on the hub, spoke, node and AKS cluster resource groups. See docs/deploy.md."
        )
        return code


if __name__ == "__main__":
    sys.exit(main())
