"""From an ARM event to the write that answers it (``python -m benchmarks.events``).

One AKS spoke behind a hub policy of 1,000 or 20,000 foreign network rules (Azure Firewall's limit of
source x destination combinations) in 60 rule collection groups, served by localarm in its own process.
Each round an operator deletes the cluster's rule from the remediator's group, and the real Event Grid
handler (``triggers.handle_event``) gets the event: it re-reads the hub, judges the baseline against every
rule, and issues the one write that restores it (not waited for, as in Azure). 40 rounds per size.
"""

from __future__ import annotations

import copy
import gc
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.localarm_process import REMEDIATOR, Localarm
from localarm import estates
from remediation import triggers
from remediation.config import load_config
from remediation.network import AzureNetwork
from remediation.resource_id import ResourceId
from remediation.settings import Settings

ROUNDS = 40
GROUPS = 60
OPERATOR = "c0ffee00-1111-4222-8333-444455556666"


def document(rules: int) -> dict[str, Any]:
    """One hub and one spoke (converged), and ``rules`` foreign network rules that never match the baseline."""
    doc = estates.document(1, 1)
    policy = next(r["id"] for r in doc["resources"] if r["id"].endswith("firewallPolicies/fwpol-0"))
    per_group = rules // GROUPS
    groups = []
    for g in range(GROUPS):
        collection = {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": f"team-{g}",
            "priority": 100,
            "action": {"type": "Allow"},
            "rules": [
                {
                    "ruleType": "NetworkRule",
                    "name": f"r{g}-{i}",
                    "ipProtocols": ["TCP"],
                    "sourceAddresses": [f"10.{100 + g % 100}.{i // 250}.{i % 250}"],
                    "destinationAddresses": [f"172.20.{i // 250}.{i % 250}"],
                    "destinationPorts": [str(1000 + i % 5000)],
                }
                for i in range(per_group)
            ],
        }
        groups.append(
            {
                "id": f"{policy}/ruleCollectionGroups/team-{g}",
                "body": {"properties": {"priority": 1000 + g, "ruleCollections": [collection]}},
            }
        )
    firewall = next(i for i, r in enumerate(doc["resources"]) if "azureFirewalls" in r["id"])
    doc["resources"][firewall:firewall] = groups
    return doc


def measure(rules: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config_path = workdir / "remediation.yaml"
        config_path.write_text(yaml.safe_dump(estates.configuration(1, 1)))
        config = load_config(config_path)
        arm = Localarm(document(rules), workdir)
        try:
            arm.control("throttle", {"enabled": False}, method="POST")
            network = AzureNetwork(
                endpoint=arm.endpoint, ca_bundle=arm.ca_bundle, principal_id=REMEDIATOR, polling_interval=0
            )
            operator = AzureNetwork(
                endpoint=arm.endpoint, ca_bundle=arm.ca_bundle, principal_id=OPERATOR, polling_interval=0
            )
            settings = Settings(
                config_path=config_path,
                force_audit=False,
                sweep_schedule="0 0 2 * * *",
                sweep_concurrency=4,
                principal_id=REMEDIATOR,
            )
            rt = triggers.Runtime(settings=settings, config=config, network=network)
            group = ResourceId.parse(
                config.clusters[0].firewall.text.replace("azureFirewalls/fw-0", "firewallPolicies/fwpol-0")
            ).child("ruleCollectionGroups", "aks-egress-baseline")
            timings = []
            for round_ in range(ROUNDS + 1):
                current = operator.get(group)
                body = copy.deepcopy(current.body)
                for collection in body["properties"]["ruleCollections"]:
                    collection["rules"] = []
                operator.put(group, body, etag=current.etag, wait=True)
                data = {
                    "operationName": "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
                    "resourceUri": str(group),
                    "claims": {"appid": OPERATOR, "name": "operator"},
                }
                started = time.perf_counter()
                outcome = triggers.handle_event(
                    event_id=f"e{round_}", event_type="Microsoft.Resources.ResourceWriteSuccess", data=data, rt=rt
                )
                elapsed = time.perf_counter() - started
                assert outcome.status == "handled" and outcome.results[0].changed, outcome
                if round_:  # the first round also learns the topology and warms the SDK
                    timings.append(elapsed)
            return timings
        finally:
            arm.stop()


def main() -> None:
    logging.getLogger("remediation").addHandler(logging.NullHandler())  # the table says what happened
    print(f"{'rules':>7}  {'events':>6}  {'p50 event -> write':>18}  {'p95 event -> write':>18}  {'gc':>8}")
    for rules in (1_000, 20_000):
        gc.collect()
        timings = measure(rules)
        p95 = statistics.quantiles(timings, n=20)[-1]
        print(
            f"{rules:>7,}  {len(timings):>6}  {statistics.median(timings) * 1000:>15.0f} ms  {p95 * 1000:>15.0f} ms  "
            f"{'frozen' if gc.get_freeze_count() else 'default':>8}"
        )


if __name__ == "__main__":
    main()
