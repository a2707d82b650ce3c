"""Representative remediation results and the cards the product makes of them: every outcome, caused by an
ARM event or by the sweep and command line, with and without caller fields, audit mode, the digest, and a
giant one. Shared by the schema, rendering and alert tests and by the screenshot script."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from remediation.alerts import digest_card, remediation_card
from remediation.config import Mode
from remediation.events import Caller, ResourceChange
from remediation.findings import ActionStatus, Finding, FindingKind
from remediation.reconcile import Action, ClusterResult, SweepResult
from remediation.resource_id import ResourceId

SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
HUB = f"/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network"
SPOKE = f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network"
FIREWALL = f"{HUB}/azureFirewalls/fw-hub"
POLICY = f"{HUB}/firewallPolicies/fwpol-hub"
GROUP = f"{POLICY}/ruleCollectionGroups/aks-egress-baseline"
ROUTE_TABLE = f"{SPOKE}/routeTables/rt-aks"
DEFAULT_ROUTE = f"{ROUTE_TABLE}/routes/aks-egress-default"
SUBNET = f"{SPOKE}/virtualNetworks/vnet-spoke/subnets/aks-nodes"
STARTED = datetime(2026, 5, 18, 14, 3, 14, 250000, tzinfo=UTC)
EVENT_TIME = "2026-05-18T14:03:12.4463357Z"
CORRELATION = "8c9f2d4e-51b7-4a63-9e0d-7f1a2b3c4d5e"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
DANA = Caller(name="Dana Okafor", upn="dana@contoso.example", app_id=AZURE_CLI, ip_address="203.0.113.24")
PIPELINE = Caller(app_id="5a6b7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c0d", ip_address="198.51.100.7")

RULES = [
    ("apiserver-tcp-443", "TCP 443", "AzureCloud.westeurope"),
    ("tunnel-tcp-9000", "TCP 9000", "AzureCloud.westeurope"),
    ("tunnel-udp-1194", "UDP 1194", "AzureCloud.westeurope"),
    ("ntp-udp-123", "UDP 123", "*"),
    ("monitor-tcp-443", "TCP 443", "AzureMonitor"),
]


def missing_rule(cluster: str, key: str, ports: str, destination: str) -> Finding:
    name = f"{cluster}-{key}"
    return Finding(
        FindingKind.MISSING_RULE,
        GROUP,
        f"network rule {name} is missing: nothing allows {ports} from 10.240.0.0/22 to {destination}",
        name,
    )


def change(operation: str, resource: str, caller: Caller, *, event_id: str = "evt-1") -> ResourceChange:
    return ResourceChange(
        event_id=event_id,
        event_type="Microsoft.Resources.ResourceDeleteSuccess"
        if operation.endswith("/delete")
        else "Microsoft.Resources.ResourceWriteSuccess",
        operation=operation,
        resource=ResourceId.parse(resource),
        caller=caller,
        correlation_id=CORRELATION,
        event_time=EVENT_TIME,
    )


def result(
    findings: list[Finding],
    actions: list[Action],
    *,
    cluster: str = "aks-prod-weu",
    mode: Mode = Mode.ENFORCE,
    trigger: str = "event",
) -> ClusterResult:
    return ClusterResult(
        cluster=cluster,
        mode=mode,
        findings=tuple(findings),
        actions=tuple(actions),
        arm_calls={"reads": 5, "writes": sum(1 for a in actions if a.status != ActionStatus.WOULD_APPLY), "polls": 0},
        started=STARTED,
        duration_seconds=0.42,
        trigger=trigger,
        firewall=FIREWALL,
    )


def group_deleted(*, cluster: str = "aks-prod-weu", mode: Mode = Mode.ENFORCE, trigger: str = "event") -> ClusterResult:
    """Someone deleted the rule collection group the remediator owns: every baseline rule is missing."""
    findings = [missing_rule(cluster, *rule) for rule in RULES]
    status = ActionStatus.WOULD_APPLY if mode is Mode.AUDIT else ActionStatus.ACCEPTED
    summary = "create rule collection group aks-egress-baseline (priority 200); create aks-egress-net with 5 rule(s)"
    return result(
        findings,
        [Action(GROUP, "PUT", summary, status, fixes=tuple(findings))],
        cluster=cluster,
        mode=mode,
        trigger=trigger,
    )


def restored() -> tuple[ClusterResult, ResourceChange | None]:
    """The screenshot: an operator deleted the baseline's rule collection group; it is back."""
    operation = "Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete"
    return group_deleted(), change(operation, GROUP, DANA)


def route_hijacked() -> tuple[ClusterResult, ResourceChange | None]:
    """The default route sent to Internet by a pipeline (a service principal: no name, no UPN)."""
    finding = Finding(
        FindingKind.WRONG_NEXT_HOP,
        ROUTE_TABLE,
        "route aks-egress-default sends 0.0.0.0/0 to Internet, not to the firewall at 10.0.1.4",
        "aks-egress-default",
    )
    action = Action(
        DEFAULT_ROUTE,
        "PUT",
        "point route aks-egress-default at the firewall (Internet -> VirtualAppliance 10.0.1.4)",
        ActionStatus.APPLIED,
        fixes=(finding,),
    )
    return result([finding], [action]), change("Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE, PIPELINE)


def unknown_caller() -> tuple[ClusterResult, ResourceChange | None]:
    """An event whose claims name nobody."""
    finding = Finding(FindingKind.SUBNET_NOT_ASSOCIATED, SUBNET, "subnet aks-nodes has no route table")
    action = Action(SUBNET, "PUT", "associate route table rt-aks", ActionStatus.APPLIED, fixes=(finding,))
    return result([finding], [action]), change("Microsoft.Network/virtualNetworks/subnets/write", SUBNET, Caller())


def audit_check() -> tuple[ClusterResult, ResourceChange | None]:
    """``python -m remediation check`` (audit mode, no event)."""
    return group_deleted(mode=Mode.AUDIT, trigger="check"), None


def audit_event() -> tuple[ClusterResult, ResourceChange | None]:
    """Audit mode, caused by an event."""
    operation = "Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete"
    return group_deleted(mode=Mode.AUDIT), change(operation, GROUP, DANA)


def enforced_from_cli() -> tuple[ClusterResult, ResourceChange | None]:
    """``python -m remediation enforce`` restored a drifted cluster."""
    return group_deleted(trigger="enforce"), None


def busy() -> tuple[ClusterResult, ResourceChange | None]:
    """The policy is being updated by someone else: nothing written, Event Grid will retry."""
    finding = missing_rule("aks-prod-weu", *RULES[2])
    busy_finding = Finding(FindingKind.BUSY, GROUP, "another operation is in progress")
    action = Action(
        GROUP, "PUT", "aks-egress-net: add aks-prod-weu-tunnel-udp-1194", ActionStatus.BUSY, fixes=(finding,)
    )
    operation = "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write"
    return result([finding, busy_finding], [action]), change(operation, GROUP, DANA)


def failed() -> tuple[ClusterResult, ResourceChange | None]:
    """ARM refused the write."""
    finding = Finding(
        FindingKind.WRONG_NEXT_HOP,
        ROUTE_TABLE,
        "route aks-egress-default sends 0.0.0.0/0 to Internet, not to the firewall at 10.0.1.4",
        "aks-egress-default",
    )
    error = "AuthorizationFailed: the client does not have authorization to perform action 'Microsoft.Network/routeTables/routes/write'"
    write_failed = Finding(FindingKind.WRITE_FAILED, DEFAULT_ROUTE, error)
    action = Action(
        DEFAULT_ROUTE, "PUT", "point route aks-egress-default at the firewall", ActionStatus.FAILED, error, (finding,)
    )
    return result([finding, write_failed], [action]), change(
        "Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE, PIPELINE
    )


def conflict() -> tuple[ClusterResult, ResourceChange | None]:
    """A DNAT rule the remediator does not own takes the port a LoadBalancer service needs."""
    nat = FindingKind("dnat-conflict")
    finding = Finding(
        nat,
        GROUP,
        "DNAT for service shop/web TCP 443 on 20.61.15.9 collides with rule legacy-web (not owned): left alone",
        "aks-prod-weu-dnat-shop-web-tcp-443",
    )
    operation = "Microsoft.Network/loadBalancers/write"
    lb = f"/subscriptions/{SUB}/resourceGroups/mc_rg-aks_aks-prod-weu_westeurope/providers/Microsoft.Network/loadBalancers/kubernetes"
    return result([finding], [], trigger="event"), change(operation, lb, PIPELINE)


def giant() -> tuple[ClusterResult, ResourceChange | None]:
    """Hundreds of findings with long details: the card must still fit a Teams message."""
    findings = [
        missing_rule(
            "aks-prod-weu", f"generated-{i:03d}-tcp-{8000 + i}", f"TCP {8000 + i}", "AzureCloud.westeurope " + "x" * 120
        )
        for i in range(400)
    ]
    actions = [
        Action(
            f"{POLICY}/ruleCollectionGroups/aks-egress-{i:03d}",
            "PUT",
            "recreate " + "y" * 200,
            ActionStatus.ACCEPTED,
            fixes=(),
        )
        for i in range(60)
    ]
    return result(findings, actions, trigger="enforce"), None


def sweep() -> SweepResult:
    """A night with one of everything, and a few quiet clusters."""
    conflicted, _ = conflict()
    broken, _ = failed()
    waiting, _ = busy()
    quiet = [result([], [], cluster=f"aks-quiet-{i}", trigger="sweep") for i in range(4)]
    results = [
        replace_trigger(broken, "aks-dev-neu"),
        replace_trigger(conflicted, "aks-shop-weu"),
        replace_trigger(waiting, "aks-batch-weu"),
        group_deleted(cluster="aks-prod-weu", trigger="sweep"),
        *quiet,
    ]
    return SweepResult(tuple(results), STARTED, 12.6)


def replace_trigger(one: ClusterResult, cluster: str) -> ClusterResult:
    from dataclasses import replace

    return replace(one, cluster=cluster, trigger="sweep")


REMEDIATIONS: dict[str, Callable[[], tuple[ClusterResult, ResourceChange | None]]] = {
    "restored": restored,
    "restored-by-a-pipeline": route_hijacked,
    "restored-unknown-caller": unknown_caller,
    "restored-from-cli": enforced_from_cli,
    "would-restore-check": audit_check,
    "would-restore-event": audit_event,
    "busy": busy,
    "failed": failed,
    "conflict": conflict,
    "giant": giant,
}


def cards() -> dict[str, dict[str, Any]]:
    """Every representative card by name (the digest included)."""
    out: dict[str, dict[str, Any]] = {}
    for name, make in REMEDIATIONS.items():
        card = remediation_card(*make())
        assert card is not None, name
        out[name] = card
    out["digest"] = digest_card(sweep())
    return out


def one_event(pair: tuple[ClusterResult, ResourceChange | None]) -> tuple[list[ClusterResult], ResourceChange | None]:
    """A sample (result, change) as a sink receives one event's results."""
    result, change = pair
    return [result], change
