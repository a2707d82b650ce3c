"""Azure resource IDs as values: parsed once, compared case-insensitively, printed as given.

ARM treats resource IDs case-insensitively (``resourcegroups`` and ``resourceGroups`` both occur in
real events), so equality and hashing use a lower-cased key while ``str()`` keeps the original text.
The parser is strict on purpose (``azure.mgmt.core.tools.parse_resource_id`` accepts almost anything):
a configuration or event with a malformed ID must be rejected with a precise message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SEGMENT = re.compile(r"^[^/?#\s][^/?#]*$")


class InvalidResourceId(ValueError):
    """The text is not an Azure resource ID of the expected shape."""


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
        """Parse ``text``; with ``kind`` (e.g. ``"Microsoft.Network/routeTables"``) also check its type."""
        if not isinstance(text, str):
            raise InvalidResourceId(f"expected a resource ID string, got {type(text).__name__}")
        parts = text.strip().strip("/").split("/")
        if len(parts) < 4 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
            raise InvalidResourceId(
                f"{text!r} is not a resource ID (expected /subscriptions/<guid>/resourceGroups/<name>/...)"
            )
        subscription, resource_group = parts[1], parts[3]
        if not _GUID.match(subscription):
            raise InvalidResourceId(f"{text!r}: subscription {subscription!r} is not a GUID")
        if not _SEGMENT.match(resource_group):
            raise InvalidResourceId(f"{text!r}: resource group name is empty or invalid")
        rest = parts[4:]
        if len(rest) < 4 or rest[0].lower() != "providers" or len(rest) % 2 != 0:
            raise InvalidResourceId(
                f"{text!r} does not name a resource (expected .../providers/<namespace>/<type>/<name>)"
            )
        namespace = rest[1]
        pairs = rest[2:]
        types = tuple(pairs[0::2])
        names = tuple(pairs[1::2])
        for segment in (namespace, *types, *names):
            if not _SEGMENT.match(segment):
                raise InvalidResourceId(f"{text!r} has an empty or invalid segment")
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
            raise InvalidResourceId(f"{text!r} is a {rid.kind} ID, expected a {kind} ID")
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
    parts = text.strip().strip("/").split("/") if isinstance(text, str) else []
    if (
        len(parts) != 4
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or not _GUID.match(parts[1])
        or not _SEGMENT.match(parts[3])
    ):
        raise InvalidResourceId(f"{text!r} is not a resource group ID (/subscriptions/<guid>/resourceGroups/<name>)")
    return f"/subscriptions/{parts[1]}/resourcegroups/{parts[3]}".lower()
