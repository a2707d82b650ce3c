"""Azure Resource Manager in memory, for planner tests: what the planner reads, and writes applied as ARM applies them.

A ``MemoryArm`` holds wire JSON the way ARM returns it (``id``, ``name``, ``etag``, ``properties``). Routes and
subnets live inside their route table and virtual network and share the parent's etag, as in Azure (and
localarm); a firewall policy's rule collection groups are listed per policy. Applying a ``Write`` replaces the
resource's body — for a rule collection group, the group in its policy's list; for a route or a subnet, the
item inside its parent's body — after ARM's precondition check: ``etag=None`` creates (``If-None-Match: *``),
any other etag must be the current one (``If-Match``), else ``PreconditionFailed`` (ARM's 412).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediation.arm import Resource
from remediation.plan import Observation, Write
from remediation.resource_id import ResourceId

Json = dict[str, Any]

SUB = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
GROUPS = "firewallPolicies/ruleCollectionGroups"
# Children that live inside their parent's body, under this property, sharing its etag.
EMBEDDED = {"routeTables/routes": "routes", "virtualNetworks/subnets": "subnets"}


def rid(resource_group: str, kind: str, name: str) -> ResourceId:
    return ResourceId.parse(
        f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.Network/{kind}/{name}"
    )


class PreconditionFailed(AssertionError):
    """ARM's 412: the write's etag is not the resource's current etag (or it creates what exists)."""


def _type(resource: ResourceId) -> str:
    return "/".join(resource.types)


@dataclass
class MemoryArm:
    """Resources by lower-cased ID; rule collection groups per policy; load balancers per node resource group."""

    resources: dict[str, Json] = field(default_factory=dict)
    groups: dict[str, list[Json]] = field(default_factory=dict)
    load_balancers: dict[str, list[Json]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    serial: int = 0  # the last etag handed out

    # --- Setting up -----------------------------------------------------------------------------------------

    def put(self, resource: ResourceId, properties: Json, **top: Any) -> Json:
        """Create or replace a resource as an operator would (no precondition); returns the stored body."""
        body = {"id": str(resource), "name": resource.name, **top, "properties": copy.deepcopy(properties)}
        self._store(resource, body)
        return body

    def put_load_balancer(self, scope: str, resource: ResourceId, properties: Json) -> None:
        body = {"id": str(resource), "name": resource.name, "etag": self._etag(), "properties": properties}
        self.load_balancers.setdefault(scope.lower(), []).append(body)

    # --- What the planner reads -------------------------------------------------------------------------------

    def observation(self) -> Observation:
        """Everything, as a reconcile would read it (deep copies: the planner must not reach back into ARM)."""
        return Observation(
            resources={key: _resource(body) for key, body in self.resources.items()},
            rule_collection_groups={key: tuple(_resource(g) for g in groups) for key, groups in self.groups.items()},
            load_balancers={key: tuple(_resource(lb) for lb in lbs) for key, lbs in self.load_balancers.items()},
        )

    def snapshot(self) -> dict[str, Json]:
        """Every resource's body by lower-cased ID (rule collection groups included), deep copied."""
        found = {key: copy.deepcopy(body) for key, body in self.resources.items()}
        for groups in self.groups.values():
            found.update({g["id"].lower(): copy.deepcopy(g) for g in groups})
        return found

    def find(self, resource: ResourceId) -> Json | None:
        """A resource's body as stored (routes and subnets from inside their parent)."""
        embedded = EMBEDDED.get(_type(resource))
        if embedded is not None:
            assert resource.parent is not None
            parent = self.resources.get(resource.parent.key)
            return _item(parent, embedded, resource.name) if parent else None
        if _type(resource) == GROUPS:
            assert resource.parent is not None
            return next((g for g in self.groups.get(resource.parent.key, []) if g["id"].lower() == resource.key), None)
        return self.resources.get(resource.key)

    # --- Writes -----------------------------------------------------------------------------------------------

    def apply(self, writes: Sequence[Write], *, etags_as_read: Mapping[str, str | None] | None = None) -> None:
        """Apply ``writes`` in order. ``etags_as_read`` (from ``etags()`` before planning) checks each write's etag
        against what the planner read instead of the current state: the writes of one plan to children of one
        parent (two routes of a table) then all pass, as long as each carries the etag that was read."""
        for write in writes:
            current = self.find(write.resource)
            if etags_as_read is None:
                expected = None if current is None else current.get("etag")
            else:
                expected = etags_as_read.get(write.resource.key)
            self._check(write, exists=current is not None, expected=expected)
            self._write(write)
            self.writes.append(write)

    def etags(self) -> dict[str, str | None]:
        """The current etag of every resource, route and subnet (for ``apply(etags_as_read=...)``)."""
        found: dict[str, str | None] = {}
        for key, body in self.snapshot().items():
            found[key] = body.get("etag")
            for child, prop in EMBEDDED.items():
                if f"/{child.split('/')[0].lower()}/" in key:
                    for item in (body.get("properties") or {}).get(prop) or []:
                        found[item["id"].lower()] = item.get("etag")
        return found

    @staticmethod
    def _check(write: Write, *, exists: bool, expected: str | None) -> None:
        if write.etag is None:
            if exists:
                raise PreconditionFailed(f"{write.resource}: If-None-Match: * but it exists ({write.summary})")
            return
        if not exists or write.etag != expected:
            raise PreconditionFailed(
                f"{write.resource}: If-Match {write.etag} but the etag is {expected} ({write.summary})"
            )

    def _write(self, write: Write) -> None:
        if write.method == "DELETE":
            self._delete(write.resource)
            return
        assert write.method == "PUT" and write.body is not None, write
        body = {k: v for k, v in copy.deepcopy(write.body).items() if k not in ("id", "name", "etag")}
        self._store(write.resource, {"id": str(write.resource), "name": write.resource.name, **body})

    def _store(self, resource: ResourceId, body: Json) -> None:
        body = copy.deepcopy(body)
        embedded = EMBEDDED.get(_type(resource))
        if embedded is not None:
            assert resource.parent is not None, resource
            parent = self.resources[resource.parent.key]
            items = parent.setdefault("properties", {}).setdefault(embedded, [])
            _replace(items, resource.name, body)
            self._stamp(parent)
            return
        body["etag"] = self._etag()
        if _type(resource) == GROUPS:
            assert resource.parent is not None
            _replace(self.groups.setdefault(resource.parent.key, []), resource.name, body)
            return
        self.resources[resource.key] = body
        self._stamp(body)

    def _delete(self, resource: ResourceId) -> None:
        embedded = EMBEDDED.get(_type(resource))
        if embedded is not None:
            assert resource.parent is not None
            parent = self.resources[resource.parent.key]
            items = parent["properties"][embedded]
            items[:] = [i for i in items if i["name"].lower() != resource.name.lower()]
            self._stamp(parent)
        elif _type(resource) == GROUPS:
            assert resource.parent is not None
            groups = self.groups[resource.parent.key]
            groups[:] = [g for g in groups if g["id"].lower() != resource.key]
        else:
            del self.resources[resource.key]

    def _stamp(self, parent: Json) -> None:
        """A new etag for a route table or virtual network, which its routes or subnets share."""
        etag = self._etag()
        parent["etag"] = etag
        for prop in EMBEDDED.values():
            for item in (parent.get("properties") or {}).get(prop) or []:
                item["etag"] = etag
                item["id"] = f"{parent['id']}/{prop}/{item['name']}"

    def _etag(self) -> str:
        self.serial += 1
        return f'W/"{self.serial}"'


def _replace(items: list[Json], name: str, body: Json) -> None:
    for i, item in enumerate(items):
        if str(item.get("name", "")).lower() == name.lower():
            items[i] = body
            return
    items.append(body)


def _item(parent: Json, prop: str, name: str) -> Json | None:
    items = (parent.get("properties") or {}).get(prop) or []
    return next((i for i in items if str(i.get("name", "")).lower() == name.lower()), None)


def _resource(body: Json) -> Resource:
    body = copy.deepcopy(body)
    return Resource(ResourceId.parse(body["id"]), body.get("etag"), body)
