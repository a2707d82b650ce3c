"""The stateful heart of localarm: resources, etags, long-running operations and their events.

Semantics follow the real Microsoft.Network resource provider (see ``../shared/reference/arm``), and AKS for
Microsoft.ContainerService (``localarm/containerservice.py``):
a PUT answers 201 (create) or 200 (update) with ``provisioningState: Updating`` and an operation that
completes after ``lro_seconds``; completion sets ``Succeeded``, changes the etag again and emits the
ARM event. Routes and subnets live inline in their parent and share its etag. Azure Firewall and
Firewall Policy (with its rule collection groups) take one write at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from localarm import containerservice
from localarm.errors import ArmError, bad_request, not_found, parent_not_found
from localarm.resource_types import CONTAINER_SERVICE, ResourcePath, ResourceType, child_types
from localarm.schema import RequestBodyError, SpecCatalog

Json = dict[str, Any]


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass(frozen=True)
class Caller:
    """Who made a write and how: what ARM puts into the event it emits."""

    claims: Json
    client_ip: str = "127.0.0.1"
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_request_id: str | None = None
    method: str = "PUT"
    url: str = ""


@dataclass
class Record:
    path: ResourcePath
    body: Json
    etag: str
    state: str
    seq: int
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    computed: Json = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.path.key

    @property
    def type(self) -> ResourceType:
        return self.path.type


@dataclass(frozen=True)
class Completed:
    """A finished operation, as the event sink sees it."""

    kind: str  # "write" or "delete"
    resource_id: str
    action: str
    caller: Caller
    created: bool
    failed: bool = False  # a write whose operation ended Failed (ARM emits ResourceWriteFailure)


@dataclass
class Operation:
    id: str
    location: str
    deadline: float
    kind: str
    target: str
    touched: tuple[str, ...]
    lock_keys: frozenset[str]
    completed: Completed
    status: str = "InProgress"
    # A refusal NRP reports through the operation rather than the request: the operation ends Failed.
    error: ArmError | None = None
    namespace: str = "Microsoft.Network"
    api_version: str = "2026-03-01"


@dataclass(frozen=True)
class WriteResult:
    status: int
    view: Json
    operation: Operation


@dataclass(frozen=True)
class DeleteResult:
    status: int
    operation: Operation | None


def _location_key(location: str) -> str:
    return location.replace(" ", "").lower()


def _refs(value: Any) -> Iterator[str]:
    """Every ``{"id": ...}`` reference inside ``value`` (lower-cased)."""
    if isinstance(value, dict):
        ref = value.get("id")
        if isinstance(ref, str) and len(value) == 1:
            yield ref.lower()
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


_IP_GROUP_MEMBERS = ("sourceIpGroups", "destinationIpGroups")


def ip_group_refs(value: Any) -> list[str]:
    """The IP groups named in the rules inside ``value`` (a firewall or rule collection group body), in order.

    Rules name IP groups by plain resource-ID strings in ``sourceIpGroups`` / ``destinationIpGroups``
    (firewall.json ``AzureFirewall*Rule``, firewallPolicy.json ``*Rule``), not by ``{"id": ...}`` objects.
    """
    found: dict[str, str] = {}

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, member in item.items():
                if key in _IP_GROUP_MEMBERS and isinstance(member, list):
                    for ref in member:
                        if isinstance(ref, str):
                            found.setdefault(ref.lower(), ref)
                else:
                    walk(member)
        elif isinstance(item, list):
            for member in item:
                walk(member)

    walk(value)
    return list(found.values())


def _ref_id(obj: Any, *keys: str) -> str | None:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"])
    return None


def _named_list(body: Json, prop: str) -> list[Json]:
    items = body.get("properties", {}).get(prop) or []
    return [item for item in items if isinstance(item, dict)]


class Store:
    """All resources of one localarm instance. Thread-safe; every method takes the store lock."""

    def __init__(
        self,
        *,
        catalog: SpecCatalog,
        lro_seconds: float = 0.2,
        on_complete: Callable[[Completed], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.lro_seconds = lro_seconds
        self.on_complete = on_complete or (lambda _c: None)
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.records: dict[str, Record] = {}
        self.operations: dict[str, Operation] = {}
        self._seq = 0
        self._next_public_ip = 0
        # Scenarios seed the platform as it is: no create-time validation (an AKS cluster seeded on a route
        # table that lost its default route is drift to repair, not a create AKS would refuse).
        self.seeding = False

    # ------------------------------------------------------------------ reads

    def get(self, path: ResourcePath) -> Json:
        with self.lock:
            self.settle()
            return self.view(self._require(path))

    def list_collection(self, path: ResourcePath) -> list[Json]:
        """List a collection: children of a parent, or a type in a resource group / subscription."""
        with self.lock:
            self.settle()
            parent = path.parent
            if parent is not None and not parent.is_collection:
                self._require(parent)
            prefix = path.key + "/"
            scope = f"/subscriptions/{path.subscription}".lower()
            if path.resource_group is not None:
                scope += f"/resourcegroups/{path.resource_group}".lower()
            found = []
            for record in self.records.values():
                if record.type is not path.type:
                    continue
                if len(path.type.segments) > 1:
                    if record.key.startswith(prefix):
                        found.append(record)
                elif record.key.startswith(scope + "/"):
                    found.append(record)
            return [self.view(r) for r in sorted(found, key=lambda r: r.seq)]

    def _require(self, path: ResourcePath) -> Record:
        record = self.records.get(path.key)
        if record is not None:
            return record
        parent = path.parent
        if parent is not None and parent.key not in self.records:
            raise parent_not_found(parent.type.arm_type, parent.names[-1], path.resource_group or "")
        raise not_found(path.type.arm_type, "/".join(path.names), path.resource_group or "")

    def etag(self, record: Record) -> str:
        if record.type.embedded_in is not None:
            parent = self.records[self._parent_key(record)]
            return parent.etag
        return record.etag

    @staticmethod
    def _parent_key(record: Record) -> str:
        parent = record.path.parent
        assert parent is not None
        return parent.key

    # ------------------------------------------------------------------ writes

    def put(
        self,
        path: ResourcePath,
        body: Any,
        *,
        caller: Caller,
        if_match: str | None = None,
        if_none_match: str | None = None,
        fail: ArmError | None = None,
    ) -> WriteResult:
        """Create or update a resource; answers as ARM does (201/200 + a running operation, which ends
        Failed with ``fail``)."""
        with self.lock:
            self.settle()
            parent_path = path.parent
            if parent_path is not None and parent_path.key not in self.records:
                raise parent_not_found(parent_path.type.arm_type, parent_path.names[-1], path.resource_group or "")
            existing = self.records.get(path.key)
            self._check_preconditions(existing, if_match, if_none_match)
            lock_keys = self._lock_keys(path)
            self._check_not_busy(lock_keys)
            try:
                clean = self.catalog.check_request(path.type.definition, body, spec=path.type.spec)
            except RequestBodyError as err:
                raise _body_error(path.type, err) from None
            if path.type.has_location and not isinstance(clean.get("location"), str):
                raise bad_request("LocationRequired", "The location property is required for this definition.")
            clean.pop("id", None)
            clean.pop("name", None)
            computed = self._prepare(path, clean, existing)
            created = existing is None
            record = self._upsert(path, clean, computed)
            self._attach(record)
            touched = self._mark_updating(path)
            operation = self._start(
                kind="write",
                path=path,
                touched=touched,
                lock_keys=lock_keys,
                completed=Completed("write", record.path.id, f"{path.type.action_prefix}/write", caller, created),
                error=fail,
            )
            return WriteResult(201 if created else 200, self.view(record), operation)

    def delete(self, path: ResourcePath, *, caller: Caller, if_match: str | None = None) -> DeleteResult:
        """Delete a resource: 202 and an operation, or 204 when it does not exist."""
        with self.lock:
            self.settle()
            record = self.records.get(path.key)
            if record is None:
                parent = path.parent
                if parent is not None and parent.key not in self.records:
                    raise parent_not_found(parent.type.arm_type, parent.names[-1], path.resource_group or "")
                if if_match is not None:
                    raise self._precondition_failed()
                return DeleteResult(204, None)
            self._check_preconditions(record, if_match, None)
            lock_keys = self._lock_keys(path)
            self._check_not_busy(lock_keys)
            self._check_not_in_use(record)
            refusal = self._ip_group_in_use(record)
            record.state = "Deleting"
            if record.type.embedded_in is not None:
                self.records[self._parent_key(record)].etag = new_etag()
            else:
                record.etag = new_etag()
            operation = self._start(
                kind="delete",
                path=record.path,
                touched=(record.key,),
                lock_keys=lock_keys,
                completed=Completed(
                    "delete", record.path.id, f"{path.type.action_prefix}/delete", caller, created=False
                ),
                error=refusal,
            )
            return DeleteResult(202, operation)

    def _check_preconditions(self, existing: Record | None, if_match: str | None, if_none_match: str | None) -> None:
        if if_match is not None:
            if existing is None:
                raise self._precondition_failed()
            if if_match.strip() != "*" and if_match.strip() != self.etag(existing):
                raise self._precondition_failed()
        if if_none_match is not None and if_none_match.strip() == "*" and existing is not None:
            raise self._precondition_failed()

    @staticmethod
    def _precondition_failed() -> ArmError:
        return ArmError(
            412,
            "PreconditionFailed",
            "The condition specified using HTTP conditional header(s) is not met: the resource was changed "
            "since its etag was read.",
        )

    def _lock_keys(self, path: ResourcePath) -> frozenset[str]:
        """The serialized resources a write to ``path`` contends with (firewall and its policy)."""
        top = path if path.parent is None else path.parent
        assert top is not None
        if not top.type.serialized:
            return frozenset()
        keys = {top.key}
        record = self.records.get(top.key)
        if top.type.segments == ("azureFirewalls",) and record is not None:
            policy = _ref_id(record.body, "properties", "firewallPolicy")
            if policy:
                keys.add(policy.lower())
        if top.type.segments == ("firewallPolicies",):
            keys.update(r.key for r in self._firewalls_using(top.key))
        return frozenset(keys)

    def _check_not_busy(self, lock_keys: frozenset[str]) -> None:
        for op in self.operations.values():
            if op.status == "InProgress" and op.lock_keys & lock_keys:
                if op.namespace == CONTAINER_SERVICE:
                    raise containerservice.busy_error(op, self)
                raise ArmError(
                    409,
                    "AnotherOperationInProgress",
                    "Another operation on this or dependent resource is in progress. To retrieve status of "
                    f"the operation use uri: {self.operation_url(op)}.",
                )

    def operation_url(self, op: Operation, *, endpoint: str = "https://management.azure.com") -> str:
        sub = op.target.split("/")[2]
        return (
            f"{endpoint}/subscriptions/{sub}/providers/{op.namespace}/locations/{op.location}"
            f"/operations/{op.id}?api-version={op.api_version}"
        )

    def _upsert(self, path: ResourcePath, clean: Json, computed: Json) -> Record:
        embedded = {t.embedded_in: t for t in child_types(path.type) if t.embedded_in}
        children: dict[str, list[Json]] = {}
        props = clean.get("properties")
        if isinstance(props, dict):
            for prop in embedded:
                children[prop] = [c for c in props.pop(prop, None) or [] if isinstance(c, dict)]
        record = self.records.get(path.key)
        if record is None:
            self._seq += 1
            record = Record(path=path, body=clean, etag=new_etag(), state="Updating", seq=self._seq, computed=computed)
            self.records[path.key] = record
        else:
            record.body, record.computed = clean, computed
        if path.type.embedded_in is not None:
            self.records[self._parent_key(record)].etag = new_etag()
        else:
            record.etag = new_etag()
        for prop, child_type in embedded.items():
            self._replace_children(record, child_type, children.get(prop, []))
        return record

    def _replace_children(self, parent: Record, child_type: ResourceType, items: list[Json]) -> None:
        wanted = {}
        for item in items:
            child_path = ResourcePath(
                parent.path.subscription,
                parent.path.resource_group,
                child_type,
                (*parent.path.names, item["name"]),
            )
            wanted[child_path.key] = (child_path, {k: v for k, v in item.items() if k not in ("name", "id")})
        for key in [k for k, r in self.records.items() if r.type is child_type and k.startswith(parent.key + "/")]:
            if key not in wanted:
                del self.records[key]
        for key, (child_path, body) in wanted.items():
            existing = self.records.get(key)
            if existing is None:
                self._seq += 1
                self.records[key] = Record(path=child_path, body=body, etag="", state="Updating", seq=self._seq)
            else:
                existing.body = body
                existing.state = "Updating"

    def _mark_updating(self, path: ResourcePath) -> tuple[str, ...]:
        touched = [path.key]
        if path.type.segments == ("firewallPolicies", "ruleCollectionGroups"):
            parent = path.parent
            assert parent is not None
            touched.append(parent.key)
        if path.type.segments[0] == "firewallPolicies":
            policy_key = path.key if path.parent is None else path.key.rsplit("/", 2)[0]
            touched.extend(r.key for r in self._firewalls_using(policy_key))
        if path.type.segments == containerservice.POOL:
            parent = path.parent
            assert parent is not None
            touched.append(parent.key)  # the cluster is Updating while one of its pools is
        # A PUT of a parent (route table, VNet) replaces its inline children too: they update with it.
        replaces_children = path.type.embedded_in is None
        for key in touched:
            record = self.records[key]
            record.state = "Updating"
            if replaces_children:
                for child in self._children(record):
                    if child.type.embedded_in is not None:
                        child.state = "Updating"
        return tuple(touched)

    def _start(
        self,
        *,
        kind: str,
        path: ResourcePath,
        touched: tuple[str, ...],
        lock_keys: frozenset[str],
        completed: Completed,
        error: ArmError | None = None,
    ) -> Operation:
        top = self.records[path.key if path.parent is None else path.parent.key]
        location = _location_key(str(top.body.get("location", "westeurope")))
        op = Operation(
            id=str(uuid.uuid4()),
            location=location,
            deadline=self.clock() + self.lro_seconds,
            kind=kind,
            target=path.key,
            touched=touched,
            lock_keys=lock_keys,
            completed=completed,
            error=error,
            namespace=path.type.namespace,
            api_version=path.type.api_version,
        )
        self.operations[op.id] = op
        self.changed.notify_all()
        if self.lro_seconds <= 0:
            self.settle()
        return op

    # ---------------------------------------------------------- operations

    def settle(self) -> None:
        """Complete every operation whose time has come (state, etag, event)."""
        with self.lock:
            now = self.clock()
            due = [op for op in self.operations.values() if op.status == "InProgress" and op.deadline <= now]
            for op in sorted(due, key=lambda o: o.deadline):
                self._complete(op)

    def next_deadline(self) -> float | None:
        with self.lock:
            pending = [op.deadline for op in self.operations.values() if op.status == "InProgress"]
            return min(pending) if pending else None

    def _complete(self, op: Operation) -> None:
        if op.error is not None and op.kind == "write":
            # The body stays as written and the resource reads Failed, as NRP leaves a firewall whose update
            # did not reach every instance (learn.microsoft.com/azure/firewall/firewall-faq).
            op.status = "Failed"
            for key in op.touched:
                record = self.records.get(key)
                if record is not None:
                    record.state = "Failed" if key == op.target else "Succeeded"
            target = self.records.get(op.target)
            if target is not None:
                holder = self.records[self._parent_key(target)] if target.type.embedded_in is not None else target
                holder.etag = new_etag()
            self.on_complete(dataclasses.replace(op.completed, failed=True))
            return
        if op.error is not None:
            # The resource stays as it was, and no ResourceDeleteSuccess event is emitted.
            op.status = "Failed"
            record = self.records.get(op.target)
            if record is not None and record.state == "Deleting":
                record.state = "Succeeded"
            return
        op.status = "Succeeded"
        if op.kind == "delete":
            record = self.records.get(op.target)
            if record is not None:
                for child in self._children(record):
                    del self.records[child.key]
                del self.records[op.target]
                if record.type.embedded_in is not None and self._parent_key(record) in self.records:
                    self.records[self._parent_key(record)].etag = new_etag()
        else:
            for key in op.touched:
                record = self.records.get(key)
                if record is None:
                    continue
                if record.state in ("Updating", "Deleting"):
                    record.state = "Succeeded"
                for child in self._children(record):
                    if child.state == "Updating":
                        child.state = "Succeeded"
            target = self.records.get(op.target)
            if target is not None:
                if target.type.embedded_in is not None:
                    self.records[self._parent_key(target)].etag = new_etag()
                else:
                    target.etag = new_etag()
        self.on_complete(op.completed)

    def operation_status(self, operation_id: str) -> Json:
        with self.lock:
            self.settle()
            op = self.operations.get(operation_id)
            if op is None:
                raise ArmError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
            if op.error is not None and op.status == "Failed":
                return {"status": op.status, **op.error.body()}
            return {"status": op.status}

    def operation_done(self, operation_id: str) -> bool:
        """Whether the operation has finished; a failed one raises its error (what its Location URL answers)."""
        with self.lock:
            self.settle()
            op = self.operations.get(operation_id)
            if op is None:
                raise ArmError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
            if op.error is not None and op.status == "Failed":
                raise op.error
            return op.status != "InProgress"

    # ------------------------------------------------------------ platform

    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.operations.clear()
            self._seq = 0
            self._next_public_ip = 0

    def seed(self, resource_id: str, body: Json, path: ResourcePath) -> None:
        """Create a resource as the platform would, without an operation or an event (scenarios)."""
        with self.lock:
            try:
                clean = self.catalog.check_request(path.type.definition, body, spec=path.type.spec)
            except RequestBodyError as err:
                raise ValueError(f"{resource_id}: {err.message}") from None
            self.seeding = True
            try:
                computed = self._prepare(path, clean, self.records.get(path.key))
                record = self._upsert(path, clean, computed)
                self._attach(record)
            except ArmError as err:
                raise ValueError(f"{resource_id}: {err.code}: {err.message}") from None
            finally:
                self.seeding = False
            record.state = "Succeeded"
            for child in self._children(record):
                child.state = "Succeeded"

    def set_firewall_private_ip(self, path: ResourcePath, address: str) -> None:
        """What a deallocate/allocate cycle does: the firewall comes back with another private IP."""
        with self.lock:
            record = self._require(path)
            if record.type.segments != ("azureFirewalls",):
                raise bad_request("BadRequest", f"{path.id} is not an Azure Firewall.")
            configs = _named_list(record.body, "ipConfigurations")
            if not configs:
                raise bad_request("BadRequest", f"{path.id} has no IP configuration.")
            record.computed.setdefault("privateIPs", {})[configs[0]["name"]] = str(ipaddress.IPv4Address(address))
            record.etag = new_etag()

    def set_provisioning_state(self, path: ResourcePath, state: str) -> None:
        with self.lock:
            self._require(path).state = state

    # --------------------------------------------------------------- views

    def _children(self, record: Record) -> list[Record]:
        prefix = record.key + "/"
        return sorted((r for k, r in self.records.items() if k.startswith(prefix)), key=lambda r: r.seq)

    def children(self, record: Record) -> list[Record]:
        """Every resource below ``record`` (its children, theirs, ...), oldest first."""
        return self._children(record)

    def add_child(self, path: ResourcePath, body: Json) -> Record:
        """A record a parent's write creates (an AKS cluster's agent pools), Updating with its parent."""
        self._seq += 1
        record = Record(path=path, body=body, etag=new_etag(), state="Updating", seq=self._seq)
        self.records[path.key] = record
        return record

    @staticmethod
    def new_etag() -> str:
        return new_etag()

    def view(self, record: Record) -> Json:
        """The resource as ARM returns it: writable data plus everything the platform computes."""
        body = copy.deepcopy(record.body)
        out: Json = {"name": record.path.names[-1], "id": record.path.id}
        out["type"] = record.type.arm_type
        out.update(body)
        props = out.setdefault("properties", {})
        *outer, member = record.type.etag_at
        holder = out
        for key in outer:
            holder = holder.setdefault(key, {})
        holder[member] = self.etag(record)
        props["provisioningState"] = record.state
        decorate = _DECORATORS.get(record.type.segments)
        if decorate is not None:
            decorate(self, record, props)
        return out

    def _sub_view(self, record: Record) -> Json:
        view = self.view(record)
        view.pop("location", None)
        return view

    # --------------------------------------------------- type behaviours

    def _prepare(self, path: ResourcePath, body: Json, existing: Record | None) -> Json:
        prepare = _PREPARERS.get(path.type.segments)
        return prepare(self, path, body, existing) if prepare else {}

    def _attach(self, record: Record) -> None:
        """What a write does beyond its own record (an AKS cluster's PUT writes its agent pools)."""
        attach = _ATTACHERS.get(record.type.segments)
        if attach is not None:
            attach(self, record)

    def _find(self, ref: str | None, kind: tuple[str, ...]) -> Record | None:
        if ref is None:
            return None
        record = self.records.get(ref.lower())
        return record if record is not None and record.type.segments == kind else None

    def _require_ref(self, owner: ResourcePath, ref: str | None, kind: tuple[str, ...]) -> Record:
        record = self._find(ref, kind)
        if record is None:
            raise bad_request(
                "InvalidResourceReference",
                f"Resource {ref} referenced by resource {owner.id} was not found. Please make sure that the "
                "referenced resource exists, and that both resources are in the same region.",
            )
        return record

    def _firewalls_using(self, policy_key: str) -> list[Record]:
        return [
            r
            for r in self.records.values()
            if r.type.segments == ("azureFirewalls",)
            and (_ref_id(r.body, "properties", "firewallPolicy") or "").lower() == policy_key
        ]

    def _require_ip_groups(self, owner: ResourcePath, body: Json) -> None:
        for ref in ip_group_refs(body):
            if self._find(ref, ("ipGroups",)) is None:
                # NRP's code for a rule naming a missing IP group is not documented; this is its code for a
                # missing referenced resource (see README, simplifications).
                raise bad_request(
                    "InvalidResourceReference",
                    f"IP group {ref} used in the rules of {owner.id} was not found. Please make sure that the "
                    "referenced IP group exists.",
                )

    def _ip_group_users(self, key: str) -> tuple[list[Record], list[Record]]:
        """The firewalls (classic rules) and the firewall policies (rule collection groups) naming an IP group."""
        firewalls: list[Record] = []
        policies: dict[str, Record] = {}
        for record in sorted(self.records.values(), key=lambda r: r.seq):
            if key not in {ref.lower() for ref in ip_group_refs(record.body)}:
                continue
            if record.type.segments == ("azureFirewalls",):
                firewalls.append(record)
            elif record.type.segments == ("firewallPolicies", "ruleCollectionGroups"):
                parent = self.records.get(self._parent_key(record))
                if parent is not None:
                    policies.setdefault(parent.key, parent)
        return firewalls, sorted(policies.values(), key=lambda r: r.seq)

    def _ip_group_in_use(self, record: Record) -> ArmError | None:
        """NRP refuses to delete an IP group that rules still use; the refusal comes as the failed operation's
        error (Azure/azure-rest-api-specs#25739 shows it in a ``"status": "Failed"`` body)."""
        if record.type.segments != ("ipGroups",):
            return None
        firewalls, policies = self._ip_group_users(record.key)
        if firewalls:
            # Azure/azure-cli-extensions#1670: an IP group a firewall's rules used.
            return bad_request(
                "IpGroupsHasResourceReferences",
                f"IpGroups '{record.path.id}' cannot be deleted since there are other Azure Resources using "
                "this resource.",
            )
        if policies:
            return bad_request(
                "IpGroupsHasFirewallPolicyReferences",
                f"IpGroups '{record.path.id}' cannot be deleted since there are firewall policies using this resource.",
            )
        return None

    def _referrers(self, key: str) -> list[Record]:
        """Resources whose body names ``key``: NRP's ``{"id": ...}`` or an AKS pool's plain subnet ID."""
        return [
            r
            for r in self.records.values()
            if r.key != key
            and (key in set(_refs(r.body)) or key in {i.lower() for i in containerservice.linked_ids(r.type, r.body)})
        ]

    def _check_not_in_use(self, record: Record) -> None:
        kind = record.type.segments
        users = [r for r in self._referrers(record.key) if not r.key.startswith(record.key + "/")]
        if kind == ("routeTables",) and users:
            raise bad_request(
                "InUseRouteTableCannotBeDeleted",
                f"Route table {record.path.id} is in use and cannot be deleted. In use by "
                + ", ".join(u.path.id for u in users),
            )
        if kind == ("publicIPAddresses",) and users:
            raise bad_request(
                "PublicIPAddressInUse",
                f"Public IP address {record.path.id} can not be deleted since it is still allocated to "
                f"resource {users[0].path.id}.",
            )
        if kind in (("virtualNetworks", "subnets"), ("virtualNetworks",)):
            for subnet in [record] if kind[-1] == "subnets" else self._children(record):
                subnet_users = [r for r in self._referrers(subnet.key) if not r.key.startswith(record.key)]
                if subnet_users:
                    raise bad_request(
                        "InUseSubnetCannotBeDeleted",
                        f"Subnet {subnet.path.names[-1]} is in use by {subnet_users[0].path.id} and cannot be deleted.",
                    )
        if kind == ("firewallPolicies",) and users:
            # The exact NRP code for this case is not documented; the behaviour (refusal) is.
            raise bad_request(
                "InUseFirewallPolicyCannotBeDeleted",
                f"Firewall policy {record.path.id} is in use by {users[0].path.id} and cannot be deleted.",
            )

    def allocate_public_ip(self) -> str:
        self._next_public_ip += 1
        n = self._next_public_ip
        return f"20.{31 + n // 65536}.{(n // 256) % 256}.{n % 256}"


# ---------------------------------------------------------------- per type


def _subnet_network(store: Store, owner: ResourcePath, subnet_ref: str | None) -> ipaddress.IPv4Network:
    subnet = store._require_ref(owner, subnet_ref, ("virtualNetworks", "subnets"))
    prefix = subnet.body.get("properties", {}).get("addressPrefix")
    if not isinstance(prefix, str):
        prefixes = subnet.body.get("properties", {}).get("addressPrefixes") or []
        prefix = prefixes[0] if prefixes else None
    if not isinstance(prefix, str):
        raise bad_request("InvalidResourceReference", f"Subnet {subnet_ref} has no address prefix.")
    return ipaddress.IPv4Network(prefix, strict=False)


def _check_unique_names(items: list[Json], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("InvalidRequestFormat", f"Every {what} needs a name.")
        if name.lower() in seen:
            raise bad_request("InvalidRequestFormat", f"Duplicate {what} name '{name}'.")
        seen.add(name.lower())


def _prepare_firewall(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    props = body.get("properties", {})
    store._require_ip_groups(path, body)
    policy = _ref_id(props, "firewallPolicy")
    if policy is not None:
        store._require_ref(path, policy, ("firewallPolicies",))
    classic = [
        k for k in ("applicationRuleCollections", "networkRuleCollections", "natRuleCollections") if props.get(k)
    ]
    if policy is not None and classic:
        raise bad_request(
            "AzureFirewallRuleCollectionsNotAllowedWithPolicy",
            "A firewall with a firewall policy cannot have classic rule collections: " + ", ".join(classic),
        )
    for kind in ("applicationRuleCollections", "networkRuleCollections", "natRuleCollections"):
        collections = _named_list(body, kind)
        _check_unique_names(collections, "rule collection")
        for collection in collections:
            _check_unique_names(collection.get("properties", {}).get("rules") or [], "rule")
    configs = _named_list(body, "ipConfigurations")
    _check_unique_names(configs, "IP configuration")
    previous = (existing.computed.get("privateIPs", {}) if existing else {}) or {}
    private_ips: dict[str, str] = {}
    subnets: dict[str, str] = {}
    for config in configs:
        cprops = config.get("properties", {})
        public_ip = _ref_id(cprops, "publicIPAddress")
        if public_ip is not None:
            store._require_ref(path, public_ip, ("publicIPAddresses",))
        subnet_ref = _ref_id(cprops, "subnet")
        if subnet_ref is None:
            continue
        if not subnet_ref.rstrip("/").lower().endswith("/subnets/azurefirewallsubnet"):
            raise bad_request(
                "AzureFirewallSubnetMissing",
                f"The subnet of {path.id} ipConfiguration '{config['name']}' must be named AzureFirewallSubnet.",
            )
        network = _subnet_network(store, path, subnet_ref)
        private_ips[config["name"]] = previous.get(config["name"]) or str(network.network_address + 4)
        subnets[config["name"]] = subnet_ref.lower()
    return {"privateIPs": private_ips, "subnets": subnets}


def _prepare_policy(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    base = _ref_id(body.get("properties", {}), "basePolicy")
    if base is not None:
        if base.lower() == path.key:
            raise bad_request("InvalidRequestFormat", "A firewall policy cannot be its own base policy.")
        store._require_ref(path, base, ("firewallPolicies",))
    return {}


def _prepare_rule_collection_group(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    collections = _named_list(body, "ruleCollections")
    _check_unique_names(collections, "rule collection")
    for collection in collections:
        _check_unique_names([r for r in collection.get("rules") or [] if isinstance(r, dict)], "rule")
    store._require_ip_groups(path, body)
    return {}


def _prepare_route_table(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    _check_unique_names(_named_list(body, "routes"), "route")
    return {}


def _check_subnet(store: Store, path: ResourcePath, subnet: Json, vnet_body: Json) -> None:
    props = subnet.get("properties", {})
    route_table = _ref_id(props, "routeTable")
    if route_table is not None:
        store._require_ref(path, route_table, ("routeTables",))
    prefix = props.get("addressPrefix")
    spaces = vnet_body.get("properties", {}).get("addressSpace", {}).get("addressPrefixes") or []
    if isinstance(prefix, str) and spaces:
        try:
            net = ipaddress.IPv4Network(prefix, strict=False)
            inside = any(net.subnet_of(ipaddress.IPv4Network(s, strict=False)) for s in spaces)
        except ValueError:
            raise bad_request("InvalidAddressPrefixFormat", f"Address prefix {prefix} is not valid.") from None
        if not inside:
            raise bad_request(
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet '{subnet.get('name', path.names[-1])}' is not valid because its IP address range is "
                "outside the IP address range of virtual network.",
            )


def _prepare_virtual_network(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    subnets = _named_list(body, "subnets")
    _check_unique_names(subnets, "subnet")
    kept = {s["name"].lower() for s in subnets}
    if existing is not None:
        for child in store._children(existing):
            if child.path.names[-1].lower() not in kept:
                store._check_not_in_use(child)
    for subnet in subnets:
        _check_subnet(store, path, subnet, body)
    return {}


def _prepare_subnet(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    parent = path.parent
    assert parent is not None
    _check_subnet(store, path, body, store.records[parent.key].body)
    return {}


def _prepare_load_balancer(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    frontends = _named_list(body, "frontendIPConfigurations")
    _check_unique_names(frontends, "frontend IP configuration")
    for kind in ("loadBalancingRules", "backendAddressPools", "probes"):
        _check_unique_names(_named_list(body, kind), kind)
    previous = (existing.computed.get("privateIPs", {}) if existing else {}) or {}
    private_ips: dict[str, str] = {}
    subnets: dict[str, str] = {}
    for frontend in frontends:
        props = frontend.get("properties", {})
        public_ip = _ref_id(props, "publicIPAddress")
        if public_ip is not None:
            store._require_ref(path, public_ip, ("publicIPAddresses",))
        subnet_ref = _ref_id(props, "subnet")
        if subnet_ref is None:
            continue
        network = _subnet_network(store, path, subnet_ref)
        subnets[frontend["name"]] = subnet_ref.lower()
        static = props.get("privateIPAddress")
        if isinstance(static, str) and str(props.get("privateIPAllocationMethod", "")).lower() == "static":
            private_ips[frontend["name"]] = static
            continue
        address = previous.get(frontend["name"])
        if address is None:
            taken = _allocated(store, subnet_ref.lower(), exclude=path.key)
            candidates = (str(h) for h in network.hosts() if int(h) - int(network.network_address) >= 4)
            address = next(
                (h for h in candidates if h not in taken and h not in private_ips.values()),
                None,
            )
            if address is None:
                raise bad_request("SubnetIsFull", f"Subnet {subnet_ref} has no free IP address.")
        private_ips[frontend["name"]] = address
    own_frontends = {f"{path.id}/frontendIPConfigurations/{f['name']}".lower() for f in frontends}
    for rule in _named_list(body, "loadBalancingRules"):
        ref = _ref_id(rule.get("properties", {}), "frontendIPConfiguration")
        if ref is None or ref.lower() not in own_frontends:
            raise bad_request(
                "InvalidResourceReference",
                f"Load balancing rule '{rule['name']}' of {path.id} references frontend {ref}, which is not "
                "a frontend IP configuration of this load balancer.",
            )
    return {"privateIPs": private_ips, "subnets": subnets}


def _allocated(store: Store, subnet_key: str, *, exclude: str) -> set[str]:
    """Private IPs other resources hold in a subnet (Azure reserves the first four addresses)."""
    taken = set()
    for record in store.records.values():
        if record.key == exclude:
            continue
        for name, key in (record.computed.get("subnets") or {}).items():
            if key == subnet_key:
                taken.add(record.computed["privateIPs"][name])
    return taken


def _prepare_public_ip(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    if existing is not None and existing.computed.get("ipAddress"):
        return {"ipAddress": existing.computed["ipAddress"]}
    requested = body.get("properties", {}).get("ipAddress")
    return {"ipAddress": requested if isinstance(requested, str) else store.allocate_public_ip()}


def _prepare_ip_group(store: Store, path: ResourcePath, body: Json, existing: Record | None) -> Json:
    # The firewall's read-only ipGroups[].changeNumber ("the iteration number") counts the group's writes.
    previous = int(existing.computed.get("changeNumber", 0)) if existing is not None else 0
    return {"changeNumber": previous + 1}


_PREPARERS: dict[tuple[str, ...], Callable[[Store, ResourcePath, Json, Record | None], Json]] = {
    ("azureFirewalls",): _prepare_firewall,
    ("firewallPolicies",): _prepare_policy,
    ("firewallPolicies", "ruleCollectionGroups"): _prepare_rule_collection_group,
    ("routeTables",): _prepare_route_table,
    ("virtualNetworks",): _prepare_virtual_network,
    ("virtualNetworks", "subnets"): _prepare_subnet,
    ("loadBalancers",): _prepare_load_balancer,
    ("publicIPAddresses",): _prepare_public_ip,
    ("ipGroups",): _prepare_ip_group,
    containerservice.CLUSTER: containerservice.prepare_cluster,
    containerservice.POOL: containerservice.prepare_pool,
}

_ATTACHERS: dict[tuple[str, ...], Callable[[Store, Record], None]] = {
    containerservice.CLUSTER: containerservice.attach_pools,
    containerservice.POOL: containerservice.touch_cluster,
}


def _body_error(rtype: ResourceType, err: RequestBodyError) -> ArmError:
    """A request body the provider refuses, in its own words: AKS's Go decoder, or NRP's Json.NET."""
    if rtype.namespace == CONTAINER_SERVICE:
        return containerservice.body_error(err)
    return ArmError(400, err.code, err.message, details=err.body()["error"]["details"])


def _decorate_sub_resources(record: Record, props: Json, prop: str, child_type: str, etag: str) -> None:
    for item in props.get(prop) or []:
        if not isinstance(item, dict) or "name" not in item:
            continue
        item["id"] = f"{record.path.id}/{prop}/{item['name']}"
        item["etag"] = etag
        if child_type:
            item["type"] = f"{record.type.arm_type}/{child_type}"
        item.setdefault("properties", {})["provisioningState"] = record.state


def _decorate_firewall(store: Store, record: Record, props: Json) -> None:
    etag = store.etag(record)
    for prop in ("applicationRuleCollections", "networkRuleCollections", "natRuleCollections"):
        _decorate_sub_resources(record, props, prop, "", etag)
    _decorate_sub_resources(record, props, "ipConfigurations", "azureFirewallIpConfigurations", etag)
    private_ips = record.computed.get("privateIPs", {})
    for config in props.get("ipConfigurations") or []:
        if config.get("name") in private_ips:
            config["properties"]["privateIPAddress"] = private_ips[config["name"]]
    groups = [g for g in (store._find(ref, ("ipGroups",)) for ref in ip_group_refs(record.body)) if g is not None]
    if groups:
        # As in Microsoft's example AzureFirewallGetWithIpGroups.json.
        props["ipGroups"] = [{"id": g.path.id, "changeNumber": str(g.computed.get("changeNumber", 1))} for g in groups]


def _decorate_policy(store: Store, record: Record, props: Json) -> None:
    groups = [c for c in store._children(record) if c.type.segments[-1] == "ruleCollectionGroups"]
    props["ruleCollectionGroups"] = [{"id": g.path.id} for g in groups]
    props["firewalls"] = [{"id": f.path.id} for f in store._firewalls_using(record.key)]
    props["childPolicies"] = [
        {"id": r.path.id}
        for r in store.records.values()
        if r.type.segments == ("firewallPolicies",)
        and (_ref_id(r.body, "properties", "basePolicy") or "").lower() == record.key
    ]


def _decorate_route_table(store: Store, record: Record, props: Json) -> None:
    props["resourceGuid"] = record.guid
    props["routes"] = [store._sub_view(c) for c in store._children(record)]
    props["subnets"] = [
        {"id": r.path.id}
        for r in store.records.values()
        if r.type.segments == ("virtualNetworks", "subnets")
        and (_ref_id(r.body, "properties", "routeTable") or "").lower() == record.key
    ]


def _decorate_route(store: Store, record: Record, props: Json) -> None:
    props.setdefault("hasBgpOverride", False)


def _decorate_virtual_network(store: Store, record: Record, props: Json) -> None:
    props["resourceGuid"] = record.guid
    props["subnets"] = [store._sub_view(c) for c in store._children(record)]


def _decorate_load_balancer(store: Store, record: Record, props: Json) -> None:
    etag = store.etag(record)
    props["resourceGuid"] = record.guid
    for prop, child in (
        ("frontendIPConfigurations", "frontendIPConfigurations"),
        ("loadBalancingRules", "loadBalancingRules"),
        ("backendAddressPools", "backendAddressPools"),
        ("probes", "probes"),
    ):
        _decorate_sub_resources(record, props, prop, child, etag)
    private_ips = record.computed.get("privateIPs", {})
    rules = props.get("loadBalancingRules") or []
    for frontend in props.get("frontendIPConfigurations") or []:
        fprops = frontend["properties"]
        if frontend["name"] in private_ips:
            fprops["privateIPAddress"] = private_ips[frontend["name"]]
            fprops.setdefault("privateIPAllocationMethod", "Dynamic")
        users = [
            {"id": rule["id"]}
            for rule in rules
            if (_ref_id(rule.get("properties", {}), "frontendIPConfiguration") or "").lower() == frontend["id"].lower()
        ]
        if users:
            fprops["loadBalancingRules"] = users


def _decorate_public_ip(store: Store, record: Record, props: Json) -> None:
    props["resourceGuid"] = record.guid
    props["ipAddress"] = record.computed.get("ipAddress")
    for other in store.records.values():
        for prop in ("ipConfigurations", "frontendIPConfigurations"):
            for config in _named_list(other.body, prop):
                if (_ref_id(config.get("properties", {}), "publicIPAddress") or "").lower() == record.key:
                    props["ipConfiguration"] = {"id": f"{other.path.id}/{prop}/{config['name']}"}


def _decorate_ip_group(store: Store, record: Record, props: Json) -> None:
    firewalls, policies = store._ip_group_users(record.key)
    props["firewalls"] = [{"id": f.path.id} for f in firewalls]
    props["firewallPolicies"] = [{"id": p.path.id} for p in policies]


_DECORATORS: dict[tuple[str, ...], Callable[[Store, Record, Json], None]] = {
    ("azureFirewalls",): _decorate_firewall,
    ("firewallPolicies",): _decorate_policy,
    ("routeTables",): _decorate_route_table,
    ("routeTables", "routes"): _decorate_route,
    ("virtualNetworks",): _decorate_virtual_network,
    ("loadBalancers",): _decorate_load_balancer,
    ("publicIPAddresses",): _decorate_public_ip,
    ("ipGroups",): _decorate_ip_group,
    containerservice.CLUSTER: containerservice.decorate_cluster,
    containerservice.POOL: containerservice.decorate_pool,
}
