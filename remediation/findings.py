"""The result vocabulary: what a reconcile finds (``Finding``) and what became of each write.

A leaf module: the planner, the reconcile, the alerts, the audit trail and the command line all read these
values, and none of them defines its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FindingKind(StrEnum):
    """What is wrong, worst first (the order ``sorted_findings`` uses)."""

    EGRESS_BYPASS = "egress-bypass"
    OUTBOUND_TYPE = "outbound-type"  # the AKS cluster sends egress elsewhere than its route table: never "fixed"
    MISSING_RULE = "missing-rule"
    MODIFIED_RULE = "modified-rule"
    SHADOWED_RULE = "shadowed-rule"
    MODIFIED_COLLECTION = "modified-collection"
    MISSING_ROUTE = "missing-route"
    WRONG_NEXT_HOP = "wrong-next-hop"
    SUBNET_NOT_ASSOCIATED = "subnet-not-associated"
    RESOURCE_NOT_FOUND = "resource-not-found"
    BUSY = "busy"
    FIREWALL_FAILED = "firewall-failed"
    DNS_PROXY_DISABLED = "dns-proxy-disabled"
    DNS_PROXY_NOT_USED = "dns-proxy-not-used"
    NO_EGRESS_SOURCES = "no-egress-sources"
    MISSING_DNAT = "missing-dnat"
    MODIFIED_DNAT = "modified-dnat"
    STALE_DNAT = "stale-dnat"
    DNAT_CONFLICT = "dnat-conflict"
    DNAT_PORT_OUT_OF_RANGE = "dnat-port-out-of-range"
    DNAT_LIMIT = "dnat-limit"
    DNAT_IP_NOT_ON_FIREWALL = "dnat-ip-not-on-firewall"
    MISSING_HOST_ROUTE = "missing-host-route"
    WRITE_FAILED = "write-failed"
    ARM_UNAVAILABLE = "arm-unavailable"
    OUT_OF_TIME = "out-of-time"
    ERROR = "error"
    # Informational: a choice the remediator made, a level to watch, or a path to know about.
    PRIORITY_TAKEN = "priority-taken"
    DENY_OVERRIDDEN = "deny-overridden"
    DNAT_CAPACITY = "dnat-capacity"
    SERVICE_ENDPOINT = "service-endpoint"
    BGP_ROUTES = "bgp-routes"


INFORMATIONAL = frozenset(
    {
        FindingKind.PRIORITY_TAKEN,
        FindingKind.DENY_OVERRIDDEN,
        FindingKind.DNAT_CAPACITY,
        FindingKind.SERVICE_ENDPOINT,
        FindingKind.BGP_ROUTES,
    }
)


@dataclass(frozen=True)
class Finding:
    """Something about a cluster's baseline that is not as it must be (or, if informational, worth knowing)."""

    kind: FindingKind
    resource: str
    detail: str
    rule: str | None = None

    @property
    def blocking(self) -> bool:
        return self.kind not in INFORMATIONAL

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind), "resource": self.resource, "detail": self.detail}
        if self.rule is not None:
            out["rule"] = self.rule
        return out


def sorted_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Worst first: what breaks egress now, then what blocks the fix, then the rest."""
    order = {kind: i for i, kind in enumerate(FindingKind)}
    return sorted(findings, key=lambda f: order[f.kind])


class ActionStatus(StrEnum):
    """What became of one planned write."""

    APPLIED = "applied"  # ARM finished the write (the caller waited)
    ACCEPTED = "accepted"  # ARM accepted the write; Azure is applying it
    WOULD_APPLY = "would-apply"  # audit mode
    BUSY = "busy"
    FAILED = "failed"
