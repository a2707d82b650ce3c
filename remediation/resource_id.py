"""Azure resource IDs as values: parsed once, compared case-insensitively, printed as given.

ARM treats resource IDs case-insensitively (``resourcegroups`` and ``resourceGroups`` both occur in
real events), so equality and hashing use a lower-cased key while ``str()`` keeps the original text.
The parser is strict on purpose (``azure.mgmt.core.tools.parse_resource_id`` accepts almost anything):
a configuration or event with a malformed ID must be rejected with a precise message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from remediation.log_text import printable

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Provider namespaces and resource types: "Microsoft.Network", "virtualNetworks".
_TYPE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# The longest ID of a kind the remediator acts on (a subnet: a 90-character resource group, a 64-character
# virtual network, an 80-character subnet) is under 400 characters. The cap keeps every message and log
# line that shows an ID short; an ID beyond it can only come from a forged or garbled event.
MAX_ID_LENGTH = 1024


class InvalidResourceId(ValueError):
    """The text is not an Azure resource ID of the expected shape."""


# --- Names ARM would accept ------------------------------------------------------------------------------
# Microsoft's "Naming rules and restrictions for Azure resources", sections Microsoft.Network,
# Microsoft.ContainerService and Microsoft.Resources:
# https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
# Every Microsoft.Network type below: alphanumerics, underscores, periods and hyphens; start with an
# alphanumeric; end with an alphanumeric or underscore. Only the lengths differ.
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_NETWORK_NAME_TEXT = (
    "letters, digits, '_', '.' and '-', starts with a letter or digit and ends with a letter, digit or '_'"
)
# AKS managed clusters: 1-63 alphanumerics, underscores and hyphens; start and end with an alphanumeric.
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$")
_CLUSTER_NAME_TEXT = "letters, digits, '_' and '-', starts and ends with a letter or digit"


@dataclass(frozen=True)
class _NameRule:
    label: str
    min_length: int = 1
    max_length: int = 80
    pattern: re.Pattern[str] = _NETWORK_NAME
    allowed: str = _NETWORK_NAME_TEXT


_NAME_RULES = {
    "microsoft.network/azurefirewalls": _NameRule("firewall"),
    "microsoft.network/firewallpolicies": _NameRule("firewall policy"),
    # Not listed on the page; it lists the older firewallPolicies/ruleGroups with this rule, and Azure
    # Firewall Manager applies the same one to rule collection groups.
    "microsoft.network/firewallpolicies/rulecollectiongroups": _NameRule("rule collection group"),
    "microsoft.network/routetables": _NameRule("route table"),
    "microsoft.network/routetables/routes": _NameRule("route"),
    "microsoft.network/virtualnetworks": _NameRule("virtual network", min_length=2, max_length=64),
    "microsoft.network/virtualnetworks/subnets": _NameRule("subnet"),
    "microsoft.network/loadbalancers": _NameRule("load balancer"),
    "microsoft.network/publicipaddresses": _NameRule("public IP address"),
    "microsoft.containerservice/managedclusters": _NameRule(
        "managed cluster", max_length=63, pattern=_CLUSTER_NAME, allowed=_CLUSTER_NAME_TEXT
    ),
}
# Resource groups: 1-90 underscores, hyphens, periods, parentheses, letters or digits (Unicode letters
# too); not ending with a period.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_RESOURCE_GROUP_TEXT = "1 to 90 letters, digits, '_', '-', '.', '(' and ')' and does not end with '.'"


def _shown(text: object) -> str:
    """A quoted, bounded, single-line rendering of (part of) an ID for messages that may be logged."""
    return f"'{printable(text, limit=300)}'"


def _text_problem(name: str) -> str | None:
    """What makes ``name`` impossible as any ARM name or path segment, whatever its type."""
    if not name:
        return "is empty (two '/' in a row?)"
    if any(not char.isprintable() for char in name):
        return "contains a control or other invisible character"
    if any(char.isspace() for char in name):
        return "contains whitespace"
    if "%" in name:
        return "contains '%' (write names unescaped; an escaped '/' such as '%2F' cannot be part of a name)"
    for char in "?#":
        if char in name:
            return f"contains {char!r}"
    return None


def _name_problem(name: str, rule: _NameRule | None) -> str | None:
    """Why ARM would refuse ``name`` for a resource of this type, or None."""
    problem = _text_problem(name)
    if problem is not None or rule is None:
        return problem
    if not rule.min_length <= len(name) <= rule.max_length:
        allowed = f"{rule.min_length} to {rule.max_length}"
        length = f"{len(name)} character{'s' if len(name) != 1 else ''}"
        return f"is {length} long (ARM allows {allowed} characters for a {rule.label} name)"
    if not rule.pattern.match(name):
        return f"is not allowed (a {rule.label} name has {rule.allowed})"
    return None


def _resource_group_problem(name: str) -> str | None:
    problem = _text_problem(name)
    if problem is not None:
        return problem
    if not _RESOURCE_GROUP.match(name) or name.endswith("."):
        return f"is not allowed (a resource group name has {_RESOURCE_GROUP_TEXT})"
    return None


@dataclass(frozen=True, eq=False)
class ResourceId:
    """A parsed ID of a resource (or child resource) inside a resource group."""

    text: str
    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    key: str = field(repr=False)

    @classmethod
    def parse(cls, text: str, *, kind: str | None = None) -> ResourceId:
        """Parse ``text``; with ``kind`` (e.g. ``"Microsoft.Network/routeTables"``) also check its type.

        Names are held to ARM's naming rules (documented ones for the types the remediator works with),
        so that a name ARM would never accept is reported here rather than as a resource not found.
        """
        if not isinstance(text, str):
            raise InvalidResourceId(f"expected a resource ID string, got {type(text).__name__}")
        if len(text) > MAX_ID_LENGTH:
            raise InvalidResourceId(
                f"{_shown(text)} is {len(text)} characters long; no resource ID this remediator handles "
                f"is longer than {MAX_ID_LENGTH}"
            )
        parts = text.strip().strip("/").split("/")
        if len(parts) < 4 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
            raise InvalidResourceId(
                f"{_shown(text)} is not a resource ID (expected /subscriptions/<guid>/resourceGroups/<name>/...)"
            )
        subscription, resource_group = parts[1], parts[3]
        if not _GUID.match(subscription):
            raise InvalidResourceId(f"{_shown(text)}: subscription {_shown(subscription)} is not a GUID")
        problem = _resource_group_problem(resource_group)
        if problem is not None:
            raise InvalidResourceId(f"{_shown(text)}: resource group name {_shown(resource_group)} {problem}")
        rest = parts[4:]
        if len(rest) < 4 or rest[0].lower() != "providers" or len(rest) % 2 != 0:
            slash = "; a name cannot contain '/'" if len(rest) > 4 and len(rest) % 2 else ""
            raise InvalidResourceId(
                f"{_shown(text)} does not name a resource (expected .../providers/<namespace>/<type>/<name>){slash}"
            )
        namespace = rest[1]
        pairs = rest[2:]
        types = tuple(pairs[0::2])
        names = tuple(pairs[1::2])
        for segment in (namespace, *types):
            if not _TYPE_SEGMENT.match(segment):
                raise InvalidResourceId(
                    f"{_shown(text)}: {_shown(segment)} is not a resource provider namespace or type"
                    if segment
                    else f"{_shown(text)} has an empty segment (two '/' in a row)"
                )
        for depth, name in enumerate(names, start=1):
            kind_so_far = "/".join((namespace, *types[:depth])).lower()
            rule = _NAME_RULES.get(kind_so_far)
            problem = _name_problem(name, rule)
            if problem is not None:
                label = rule.label if rule is not None else f"{types[depth - 1]}"
                raise InvalidResourceId(f"{_shown(text)}: {label} name {_shown(name)} {problem}")
        canonical = "/" + "/".join(parts)
        rid = cls(
            text=canonical,
            subscription=subscription,
            resource_group=resource_group,
            namespace=namespace,
            types=types,
            names=names,
            key=canonical.lower(),
        )
        if kind is not None and rid.kind.lower() != kind.lower():
            raise InvalidResourceId(f"{_shown(text)} is a {rid.kind} ID, expected a {kind} ID")
        return rid

    @property
    def kind(self) -> str:
        """The full resource type, e.g. ``Microsoft.Network/virtualNetworks/subnets``."""
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def path(self) -> str:
        """The names from the top resource down, e.g. ``vnet-spoke/aks-nodes``: short for humans."""
        return "/".join(self.names)

    @property
    def parent(self) -> ResourceId | None:
        """The parent resource of a child resource (a route's route table), else ``None``."""
        if len(self.types) == 1:
            return None
        segments = [f"{t}/{n}" for t, n in zip(self.types[:-1], self.names[:-1], strict=True)]
        return ResourceId.parse(
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/" + "/".join(segments)
        )

    @property
    def top(self) -> ResourceId:
        """The top-level resource this ID belongs to (itself when it is top-level)."""
        parent = self.parent
        return self if parent is None else parent.top

    @property
    def resource_group_key(self) -> str:
        """Lower-cased ``/subscriptions/<id>/resourcegroups/<name>``, for scope comparisons."""
        return f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}".lower()

    def child(self, child_type: str, name: str) -> ResourceId:
        return ResourceId.parse(f"{self.text}/{child_type}/{name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResourceId) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text


def short_name(text: str) -> str:
    """``ResourceId.path`` of a resource ID text, or the text itself when it is not one (for display)."""
    try:
        return ResourceId.parse(text).path
    except InvalidResourceId:
        return text


def resource_group_scope(text: str) -> str:
    """Validate ``/subscriptions/<guid>/resourceGroups/<name>`` and return its lower-cased key."""
    parts = text.strip().strip("/").split("/") if isinstance(text, str) and len(text) <= MAX_ID_LENGTH else []
    if (
        len(parts) != 4
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or not _GUID.match(parts[1])
    ):
        raise InvalidResourceId(
            f"{_shown(text)} is not a resource group ID (/subscriptions/<guid>/resourceGroups/<name>)"
        )
    problem = _resource_group_problem(parts[3])
    if problem is not None:
        raise InvalidResourceId(f"{_shown(text)}: resource group name {_shown(parts[3])} {problem}")
    return f"/subscriptions/{parts[1]}/resourcegroups/{parts[3]}".lower()
