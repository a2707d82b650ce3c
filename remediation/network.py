"""The Azure network adapter: the only module that knows the Azure SDK.

Reads return the resource's wire JSON (``Resource.body``), which the planner works on as plain data; writes
send a whole resource body back, guarded by the etag that was read. The SDK (``azure.mgmt.network``, about
0.35 s and 50 MB to import) and ``azure.identity`` are imported on first use, so importing this module —
and ``function_app`` — stays cheap.

Credentials: a loopback ``ARM_ENDPOINT`` (localarm) gets a locally minted, unsigned token carrying the
configured identity; any other endpoint gets ``DefaultAzureCredential`` (the managed identity in Azure).
A guard policy refuses to send any request whose host is on the other side of that line, so a real
token never reaches a loopback server and a local token never leaves the machine.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import heapq
import ipaddress
import itertools
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from remediation import deadline
from remediation.arm import Json, Resource
from remediation.resource_id import ResourceId

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.network import NetworkManagementClient

DEFAULT_ENDPOINT = "https://management.azure.com"
API_VERSION = "2026-03-01"  # what azure-mgmt-network 33.x speaks for every Microsoft.Network type we use
# Per ARM request, cut short by the invocation's deadline: connecting, then waiting for the answer.
CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0
MIN_REQUEST_SECONDS = 1.0  # no request is started, and no Retry-After slept, with less than this left
ARM_SCOPE = "https://management.azure.com/.default"
# ARM sends Retry-After with long-running operations and the SDK honours it; this is only the fallback
# (the SDK's own default, 30 s, makes a sub-second local operation cost half a minute).
DEFAULT_POLLING_INTERVAL = 5.0
LOCAL_TENANT = "72f988bf-0000-4000-8000-00000000beef"
LOCAL_PRINCIPAL = "00000000-0000-0000-0000-00000000c0de"  # the identity in local tokens when none is configured


# --------------------------------------------------------------------------- outcomes


class ArmError(Exception):
    """ARM answered with an error (after the SDK's own retries for 429 and 5xx)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotFound(ArmError):
    """The resource (or its parent) does not exist."""


class PreconditionFailed(ArmError):
    """The resource changed since its etag was read (412): re-read and re-plan."""


class Busy(ArmError):
    """Another operation on the resource is in progress (409 ``AnotherOperationInProgress``): retry later."""


class ArmUnavailable(ArmError):
    """ARM could not be reached (connection refused, TLS failure, timeout)."""


class OutOfTime(ArmUnavailable):
    """The invocation's deadline would pass before ARM answers (or before a ``Retry-After`` ends): stop and
    let the trigger try again later, rather than answer Event Grid too late."""


@dataclass(frozen=True)
class WriteOutcome:
    """A write that ARM accepted: finished (``waited``) or still running in Azure."""

    resource_id: ResourceId
    method: str
    waited: bool
    provisioning_state: str


@dataclass
class ArmCalls:
    """HTTP requests sent to ARM: reads (GET), writes (PUT/DELETE) and long-running-operation polls."""

    reads: int = 0
    writes: int = 0
    polls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, method: str, path: str) -> None:
        with self._lock:
            if "/operations/" in path.lower() or "/operationresults/" in path.lower():
                self.polls += 1
            elif method == "GET":
                self.reads += 1
            else:
                self.writes += 1

    def as_dict(self) -> dict[str, int]:
        return {"reads": self.reads, "writes": self.writes, "polls": self.polls}


_current_calls: ContextVar[ArmCalls | None] = ContextVar("remediation_arm_calls", default=None)


@contextlib.contextmanager
def counting_calls() -> Iterator[ArmCalls]:
    """Count the ARM requests made in this context (one reconcile), whatever client makes them."""
    calls = ArmCalls()
    token = _current_calls.set(calls)
    try:
        yield calls
    finally:
        _current_calls.reset(token)


# Which requests the pacer serves first when ARM's budget is short: lower first. The sweep gives each group of
# clusters its place in the sweep, so that the group that started first reads and then writes while the next
# one reads, instead of every group reading at a quarter of the pace and none writing.
_pacing_priority: ContextVar[int] = ContextVar("remediation_pacing_priority", default=0)


@contextlib.contextmanager
def pacing_priority(priority: int) -> Iterator[None]:
    """Requests made in this context wait behind those of lower ``priority`` when the budget is short."""
    token = _pacing_priority.set(priority)
    try:
        yield
    finally:
        _pacing_priority.reset(token)


class Pacer:
    """Slows requests down before ARM's throttle would refuse them.

    ARM throttles per principal and subscription with token buckets (reads: 250, refilled at 25 a second;
    writes and deletes: 200, refilled at 10) and tells, on every response, how many requests are left in
    the bucket that request used (``x-ms-ratelimit-remaining-subscription-reads`` / ``-writes`` /
    ``-deletes``; learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
    The pacer keeps the last level it saw per subscription and kind, adds what has flowed back since, and
    lets a request go only while at least ``reserve`` tokens would be left, so a sweep of a large estate
    slows down to the refill rate instead of running into a storm of 429s. Waiting requests go in order of
    their ``pacing_priority``, then of arrival. No wait passes the invocation's deadline.
    """

    REFILL_PER_SECOND: ClassVar[dict[str, float]] = {"reads": 25.0, "writes": 10.0, "deletes": 10.0}
    CAPACITY: ClassVar[dict[str, float]] = {"reads": 250.0, "writes": 200.0, "deletes": 200.0}

    def __init__(self, *, reserve: float = 10.0) -> None:
        self.reserve = reserve
        self._levels: dict[tuple[str, str], tuple[float, float]] = {}  # (subscription, kind) -> (level, when)
        self._waiting: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)  # heaps of tickets
        self._tickets = itertools.count()
        self._turn = threading.Condition()
        self.waited = 0.0

    @staticmethod
    def kind(method: str) -> str:
        return "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"

    def before(self, subscription: str, method: str) -> None:
        """Wait, if needed, for this request's turn and for a token that leaves ``reserve``; then count it."""
        key = (subscription, self.kind(method))
        refill = self.REFILL_PER_SECOND[key[1]]
        with self._turn:
            if key not in self._levels:
                return  # nothing heard from ARM yet: nothing to pace by
            ticket = (_pacing_priority.get(), next(self._tickets))
            queue = self._waiting[key]
            heapq.heappush(queue, ticket)
            started = time.monotonic()
            try:
                while True:
                    level = self._level(key)
                    mine = queue[0] == ticket
                    if mine and level >= self.reserve + 1:
                        # Counted now, so that the requests behind this one see it before its answer comes back.
                        self._levels[key] = (level - 1, time.monotonic())
                        return
                    left = deadline.current().left() - MIN_REQUEST_SECONDS
                    refilled = (self.reserve + 1 - level) / refill if mine else 0.0
                    if refilled >= left:
                        raise OutOfTime(
                            f"ARM's throttle asks to slow down for {refilled:.1f} s, and only {left:.1f} s are left"
                        )
                    self._turn.wait(refilled if mine else min(left, 1.0))
            finally:
                queue.remove(ticket)
                heapq.heapify(queue)
                self.waited += time.monotonic() - started
                self._turn.notify_all()

    def after(self, subscription: str, method: str, headers: Mapping[str, str]) -> None:
        """Take the level ARM reported for the bucket this request used."""
        key = (subscription, self.kind(method))
        value = headers.get(f"x-ms-ratelimit-remaining-subscription-{key[1]}")
        try:
            level = float(value) if value is not None else None
        except ValueError:
            level = None
        if level is not None:
            with self._turn:
                self._levels[key] = (level, time.monotonic())
                self._turn.notify_all()

    def _level(self, key: tuple[str, str]) -> float:
        level, when = self._levels[key]
        refilled = (time.monotonic() - when) * self.REFILL_PER_SECOND[key[1]]
        return min(self.CAPACITY[key[1]], level + refilled)


# --------------------------------------------------------------------- credentials


def is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_token(claims: Mapping[str, Any]) -> str:
    """An unsigned JWT (``alg: none``) for localarm, which reads claims but verifies nothing."""

    def part(obj: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class LocalTokenCredential:
    """A TokenCredential for localarm: the configured identity in an unsigned token."""

    def __init__(
        self,
        *,
        principal_id: str,
        name: str = "aks-egress-remediator",
        tenant_id: str = LOCAL_TENANT,
        upn: str | None = None,
    ) -> None:
        self.claims: dict[str, Any] = {
            "aud": "https://management.azure.com/",
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "appid": principal_id,
            "oid": principal_id,
            "idtyp": "app",
            "name": name,
            "tid": tenant_id,
        }
        if upn:  # a person signed in with the Azure CLI (its well-known client ID)
            self.claims.update(upn=upn, idtyp="user", appid="04b07795-8ddb-461a-bbee-02f9e1bf7b46")

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        now = int(time.time())
        return AccessToken(local_token({**self.claims, "iat": now, "exp": now + 3600}), now + 3600)


def credential_for(
    endpoint: str, *, principal_id: str | None = None, credential: TokenCredential | None = None
) -> TokenCredential:
    """The credential for an Azure endpoint (ARM, Event Grid): a local token for loopback, else
    ``DefaultAzureCredential`` (the managed identity in Azure). A given credential must fit the endpoint."""
    loopback = is_loopback(endpoint)
    if credential is not None:
        if loopback != isinstance(credential, LocalTokenCredential):
            raise ValueError(
                "refusing the credential: a loopback endpoint takes only a local token, "
                "and a local token is only for a loopback endpoint"
            )
        return credential
    if loopback:
        return LocalTokenCredential(principal_id=principal_id or LOCAL_PRINCIPAL)
    from azure.identity import DefaultAzureCredential

    default: TokenCredential = DefaultAzureCredential()
    return default


# ------------------------------------------------------------------------ resources


@dataclass(frozen=True)
class _Kind:
    operations: str  # attribute of NetworkManagementClient
    model: str  # azure.mgmt.network.models class used to strip read-only fields from writes


_KINDS: dict[str, _Kind] = {
    "microsoft.network/azurefirewalls": _Kind("azure_firewalls", "AzureFirewall"),
    "microsoft.network/firewallpolicies": _Kind("firewall_policies", "FirewallPolicy"),
    "microsoft.network/firewallpolicies/rulecollectiongroups": _Kind(
        "firewall_policy_rule_collection_groups", "FirewallPolicyRuleCollectionGroup"
    ),
    "microsoft.network/routetables": _Kind("route_tables", "RouteTable"),
    "microsoft.network/routetables/routes": _Kind("routes", "Route"),
    "microsoft.network/virtualnetworks": _Kind("virtual_networks", "VirtualNetwork"),
    "microsoft.network/virtualnetworks/subnets": _Kind("subnets", "Subnet"),
    "microsoft.network/loadbalancers": _Kind("load_balancers", "LoadBalancer"),
    "microsoft.network/publicipaddresses": _Kind("public_ip_addresses", "PublicIPAddress"),
    "microsoft.network/ipgroups": _Kind("ip_groups", "IpGroup"),
}


# Types read through the same pipeline as raw requests, at their provider's api-version: the remediator only
# reads AKS clusters, and azure-mgmt-containerservice would add a package (and its import) for one GET.
_RAW_READS: dict[str, str] = {
    "microsoft.containerservice/managedclusters": "2026-08-01",
}


def _kind(rid: ResourceId) -> _Kind:
    kind = _KINDS.get(rid.kind.lower())
    if kind is None:
        raise ValueError(f"{rid} is a {rid.kind}, which the network adapter does not handle")
    return kind


# ---------------------------------------------------------------------------- adapter


class AzureNetwork:
    """Reads and etag-guarded writes of firewalls, policies, route tables, subnets and load balancers."""

    def __init__(
        self,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        credential: TokenCredential | None = None,
        ca_bundle: str | None = None,
        principal_id: str | None = None,
        polling_interval: float | None = None,
        retry_timeout: float | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.loopback = is_loopback(self.endpoint)
        self.credential = credential_for(self.endpoint, principal_id=principal_id, credential=credential)
        self.ca_bundle = ca_bundle
        self.polling_interval = polling_interval
        self.retry_timeout = retry_timeout
        self._clients: dict[str, NetworkManagementClient] = {}
        self._lock = threading.Lock()
        self.pacer = Pacer()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **options: Any) -> AzureNetwork:
        """Configure from ``ARM_ENDPOINT``, ``ARM_CA_BUNDLE``, ``ARM_POLLING_INTERVAL`` and
        ``REMEDIATOR_PRINCIPAL_ID``; a malformed value raises ``ValueError`` naming the setting."""
        env = os.environ if environ is None else environ
        endpoint = env.get("ARM_ENDPOINT") or DEFAULT_ENDPOINT
        if urlsplit(endpoint).scheme != "https" or not urlsplit(endpoint).hostname:
            raise ValueError(f"ARM_ENDPOINT must be an https:// URL, got {endpoint!r}")
        ca_bundle = env.get("ARM_CA_BUNDLE") or None
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ValueError(f"ARM_CA_BUNDLE {ca_bundle!r} is not a file")
        interval_text = env.get("ARM_POLLING_INTERVAL") or ""
        try:
            interval = float(interval_text) if interval_text else DEFAULT_POLLING_INTERVAL
        except ValueError:
            raise ValueError(f"ARM_POLLING_INTERVAL must be a number of seconds, got {interval_text!r}") from None
        if not 0 <= interval <= 300:
            raise ValueError(f"ARM_POLLING_INTERVAL must be between 0 and 300 seconds, got {interval_text!r}")
        options.setdefault("polling_interval", interval)
        return cls(
            endpoint=endpoint,
            ca_bundle=ca_bundle,
            principal_id=env.get("REMEDIATOR_PRINCIPAL_ID") or None,
            **options,
        )

    def _client(self, subscription: str) -> NetworkManagementClient:
        with self._lock:
            client = self._clients.get(subscription)
            if client is None:
                client = self._make_client(subscription)
                self._clients[subscription] = client
            return client

    def _make_client(self, subscription: str) -> NetworkManagementClient:
        from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy
        from azure.mgmt.network import NetworkManagementClient

        loopback = self.loopback
        pacer = self.pacer

        class GuardAndCount(SansIOHTTPPolicy):  # type: ignore[type-arg]
            """Refuse requests that cross the loopback line or the deadline; count the ones that go out; give
            each its timeouts from what the invocation has left."""

            def on_request(self, request: Any) -> None:
                url = request.http_request.url
                if is_loopback(url) != loopback:
                    raise ArmUnavailable(
                        f"refusing to send a request to {urlsplit(url).hostname}: "
                        "it is on the other side of the loopback line from ARM_ENDPOINT"
                    )
                left = deadline.current().left()
                if left < MIN_REQUEST_SECONDS:
                    raise OutOfTime(f"{left:.1f} s left before the deadline: no time for another ARM request")
                options = request.context.options
                options["connection_timeout"] = min(options.get("connection_timeout") or CONNECT_SECONDS, left)
                options["read_timeout"] = min(options.get("read_timeout") or READ_SECONDS, left)
                calls = _current_calls.get()
                if calls is not None:
                    calls.count(request.http_request.method, urlsplit(url).path)
                pacer.before(subscription, request.http_request.method)

            def on_response(self, request: Any, response: Any) -> None:
                pacer.after(subscription, request.http_request.method, response.http_response.headers)

        class DeadlineRetry(RetryPolicy):  # type: ignore[type-arg]
            """azure-core's retries, but a wait (``Retry-After`` or backoff) past the deadline is not slept:
            azure-core would sleep the whole ``Retry-After`` before looking at its own timeout."""

            def sleep(self, settings: Any, transport: Any, response: Any = None) -> None:
                wait = (self.get_retry_after(response) if response is not None else None) or self.get_backoff_time(
                    settings
                )
                left = deadline.current().left()
                if wait >= left - MIN_REQUEST_SECONDS:
                    raise OutOfTime(f"ARM asked to wait {wait:g} s, and only {left:.1f} s are left before the deadline")
                super().sleep(settings, transport, response)

        options: dict[str, Any] = {
            "per_retry_policies": [GuardAndCount()],
            "retry_policy": DeadlineRetry(**({"timeout": self.retry_timeout} if self.retry_timeout else {})),
        }
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        if self.polling_interval is not None:
            options["polling_interval"] = self.polling_interval
        return NetworkManagementClient(
            self.credential,
            subscription,
            base_url=self.endpoint,
            credential_scopes=[ARM_SCOPE],
            **options,
        )

    def _operations(self, rid: ResourceId) -> Any:
        return getattr(self._client(rid.subscription), _kind(rid).operations)

    # ---------------------------------------------------------------- reads

    def get(self, rid: ResourceId) -> Resource:
        """Read one resource; raises ``NotFound`` when it (or its parent) does not exist."""
        api_version = _RAW_READS.get(rid.kind.lower())
        if api_version is not None:
            return self._get_raw(rid, api_version)
        operations = self._operations(rid)
        with _translated_errors(str(rid)):
            chunks = operations.get(rid.resource_group, *rid.names, stream=True)
            body = json.loads(b"".join(chunks))
        return Resource(id=rid, etag=body.get("etag"), body=body)

    def find(self, rid: ResourceId) -> Resource | None:
        """Read one resource, or ``None`` when it does not exist."""
        try:
            return self.get(rid)
        except NotFound:
            return None

    def _get_raw(self, rid: ResourceId, api_version: str) -> Resource:
        """A resource of another provider (an AKS cluster) as wire JSON, through the same pipeline and credential."""
        from azure.core.rest import HttpRequest

        client = self._client(rid.subscription)
        with _translated_errors(str(rid)):
            response = client.send_request(
                HttpRequest("GET", f"{self.endpoint}{rid}", params={"api-version": api_version})
            )
            response.raise_for_status()
            body = json.loads(response.read())
        return Resource(id=rid, etag=body.get("eTag") or body.get("etag"), body=body)

    def list_rule_collection_groups(self, policy: ResourceId) -> list[Resource]:
        """Every rule collection group of a firewall policy."""
        return self._list(policy.subscription, f"{policy}/ruleCollectionGroups", subject=str(policy))

    def list_load_balancers(self, subscription: str, resource_group: str) -> list[Resource]:
        """Every load balancer in a resource group (an AKS node resource group)."""
        scope = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        return self._list(subscription, f"{scope}/providers/Microsoft.Network/loadBalancers", subject=scope)

    def _list(self, subscription: str, path: str, *, subject: str) -> list[Resource]:
        """A collection as wire JSON, every page followed. Model objects would cost about ten times as much
        for a big rule base (measured: a 20,000-rule policy), and the planner reads plain JSON anyway."""
        from azure.core.rest import HttpRequest

        client = self._client(subscription)
        url: str | None = f"{self.endpoint}{path}?api-version={API_VERSION}"
        items: list[Json] = []
        with _translated_errors(subject):
            while url:
                response = client.send_request(HttpRequest("GET", url))
                response.raise_for_status()
                page = json.loads(response.read())
                items += [item for item in page.get("value") or () if isinstance(item, dict) and item.get("id")]
                url = page.get("nextLink") or None
        return [_resource_from_body(item) for item in items]

    # --------------------------------------------------------------- writes

    def put(self, rid: ResourceId, body: Json, *, etag: str | None, wait: bool) -> WriteOutcome:
        """Create or replace a resource, guarded by ``etag`` (``None``: only if it does not exist yet).

        With ``wait=False`` this returns once ARM has accepted the write; the operation goes on in Azure.
        """
        from azure.mgmt.network import models

        kind = _kind(rid)
        model = getattr(models, kind.model)(body)
        headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        operations = self._operations(rid)
        with _translated_errors(str(rid)):
            poller = operations.begin_create_or_update(
                rid.resource_group, *rid.names, model, headers=headers, polling=self._polling(wait)
            )
            result = poller.result()
        state = str(result.as_dict().get("properties", {}).get("provisioningState", "Succeeded"))
        return WriteOutcome(resource_id=rid, method="PUT", waited=wait, provisioning_state=state)

    def _polling(self, wait: bool) -> Any:
        """No polling, or ARM polling that keeps counting calls (and the deadline) in the SDK's polling thread."""
        if not wait:
            return False
        from azure.mgmt.core.polling.arm_polling import ARMPolling

        context = contextvars.copy_context()

        class CountedPolling(ARMPolling):
            """Polls in the SDK's thread with the caller's context: its call counter and its deadline."""

            def run(self) -> None:
                context.copy().run(super().run)

        interval = 30.0 if self.polling_interval is None else self.polling_interval
        return CountedPolling(interval, path_format_arguments={"endpoint": self.endpoint})

    def delete(self, rid: ResourceId, *, etag: str | None, wait: bool) -> WriteOutcome:
        """Delete a resource, guarded by ``etag`` when given."""
        headers = {"If-Match": etag} if etag else {}
        operations = self._operations(rid)
        with _translated_errors(str(rid)):
            poller = operations.begin_delete(
                rid.resource_group, *rid.names, headers=headers, polling=self._polling(wait)
            )
            poller.result()
        return WriteOutcome(resource_id=rid, method="DELETE", waited=wait, provisioning_state="Deleted")


def _resource_from_body(body: Json) -> Resource:
    return Resource(id=ResourceId.parse(str(body["id"])), etag=body.get("etag"), body=body)


@contextlib.contextmanager
def _translated_errors(subject: str) -> Iterator[None]:
    """Turn azure-core exceptions into the typed outcomes callers act on."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    try:
        yield
    except HttpResponseError as err:
        status = err.status_code
        code = getattr(err.error, "code", None) if err.error is not None else None
        message = f"{subject}: {status} {code or ''} {_error_message(err)}".strip()
        if status == 404:
            raise NotFound(message, status=status, code=code) from None
        if status == 412:
            raise PreconditionFailed(message, status=status, code=code) from None
        if status == 409 and code == "AnotherOperationInProgress":
            raise Busy(message, status=status, code=code) from None
        raise ArmError(message, status=status, code=code) from None
    except (ServiceRequestError, ServiceResponseError) as err:
        raise ArmUnavailable(f"{subject}: ARM could not be reached: {err}") from None


def _error_message(err: Any) -> str:
    error = getattr(err, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    return str(message or err.reason or "")
