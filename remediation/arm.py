"""What Azure Resource Manager returns: a resource's ID, etag and wire JSON.

A leaf module: the pure planner and the SDK adapter (``network``) both speak in these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remediation.resource_id import ResourceId

Json = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """A resource as read from ARM: its ID, etag and wire JSON."""

    id: ResourceId
    etag: str | None
    body: Json

    @property
    def properties(self) -> Json:
        props = self.body.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def provisioning_state(self) -> str:
        return str(self.properties.get("provisioningState", "Succeeded"))
