"""The HTTPS surface of localarm: ARM paths for Microsoft.Network and Microsoft.ContainerService, and a
control API at ``/_localarm/``."""

from __future__ import annotations

import base64
import binascii
import json
import math
import ssl
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import trustme

from localarm import containerservice, scenarios
from localarm.errors import ArmError, bad_request
from localarm.events import EventDelivery, arm_event
from localarm.faults import FAILED_OPERATION, Fault, FaultBook, FaultSpecError
from localarm.resource_types import API_VERSION, API_VERSIONS, OperationPath, ResourcePath, parse_path
from localarm.schema import SpecCatalog
from localarm.store import Caller, Completed, Store, ip_group_refs
from localarm.throttle import Throttle, ThrottleSpecError
from localarm.traffic import FLAT_ERROR_SPEC_TYPES, TrafficRecorder

Json = dict[str, Any]
MAX_BODY_BYTES = 8 * 1024 * 1024


def claims_from_authorization(header: str | None) -> Json | None:
    """The claims of an (unsigned, locally issued) bearer JWT; ``None`` when there is no bearer token."""
    if not header or not header.lower().startswith("bearer "):
        return None
    parts = header[7:].strip().split(".")
    if len(parts) < 2:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def rbac_actions(method: str, target: ResourcePath | OperationPath, body: Any) -> list[str]:
    """The RBAC actions ARM checks for a request: the operation itself plus linked ``join`` actions."""
    if isinstance(target, OperationPath):
        kind = "operationResults" if target.is_result else "operations"
        return [f"{target.namespace}/locations/{kind}/read"]
    prefix = target.type.action_prefix
    if method == "GET":
        return [f"{prefix}/read"]
    if method == "DELETE":
        return [f"{prefix}/delete"]
    actions = [f"{prefix}/write"]
    # Linked access check: writing a resource that references a subnet, public IP, route table or
    # firewall policy needs the referenced type's join action (LinkedAuthorizationFailed otherwise).
    # Linked access: NRP bodies link by {"id": ...}; AKS bodies by plain IDs (an agent pool's vnetSubnetID);
    # rules name IP groups by plain ID strings. Microsoft.Network publishes
    # "Microsoft.Network/ipGroups/join/action: Joins an IpGroup" beside the other join actions
    # (learn.microsoft.com/azure/role-based-access-control/resource-provider-operations#microsoftnetwork),
    # and a join action exists only for this check. No error report confirms ARM asks for it on a firewall or
    # rule collection group write, so this errs on the side of the larger role (see README).
    linked = _reference_ids(body) + containerservice.linked_ids(target.type, body) + ip_group_refs(body)
    for ref in sorted(set(linked)):
        try:
            referenced = parse_path(ref)
        except ArmError:
            continue
        if isinstance(referenced, ResourcePath) and not referenced.is_collection:
            if referenced.key.startswith(target.key + "/") or referenced.key == target.key:
                continue
            join = f"{referenced.type.action_prefix}/join/action"
            if join not in actions:
                actions.append(join)
    return actions


def _reference_ids(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        ref = value.get("id")
        if isinstance(ref, str) and len(value) == 1:
            found.append(ref)
        for item in value.values():
            found.extend(_reference_ids(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_reference_ids(item))
    return found


@dataclass(frozen=True)
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] | None = None


class LocalArm:
    """One running emulator: store, TLS server, control API, events, faults, request log and traffic."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lro_seconds: float = 0.2,
        traffic_dir: Path | None = None,
        events_url: str | None = None,
        event_deliveries: int = 1,
        scenario: str | None = None,
        page_size: int = 100,
        throttle: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.page_size = page_size
        self._clock_offset = 0.0
        self.catalog = SpecCatalog.load()
        self.events: list[Json] = []
        self.requests: list[Json] = []
        self._log_lock = threading.Lock()
        self.delivery = EventDelivery(events_url, workers=event_deliveries) if events_url else None
        self.store = Store(catalog=self.catalog, lro_seconds=lro_seconds, on_complete=self._emit, clock=self.clock)
        self.faults = FaultBook()
        self.throttle = Throttle(clock=self.clock, enabled=throttle)
        self.traffic = TrafficRecorder(traffic_dir) if traffic_dir else None
        self._state_dir = Path(tempfile.mkdtemp(prefix="localarm-"))
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        if scenario:
            scenarios.load(scenario, self.store)

    # ------------------------------------------------------------ lifecycle

    def clock(self) -> float:
        return time.monotonic() + self._clock_offset

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "not started"
        return f"https://{self.host}:{self._server.server_address[1]}"

    @property
    def ca_bundle(self) -> Path:
        return self._state_dir / "ca.pem"

    def start(self) -> LocalArm:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        for target, name in ((server.serve_forever, "localarm-http"), (self._tick, "localarm-clock")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self.delivery is not None:
            self.delivery.stop()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> LocalArm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ready_info(self) -> Json:
        return {
            "endpoint": self.endpoint,
            "caBundle": str(self.ca_bundle),
            "apiVersion": API_VERSION,
            "apiVersions": dict(API_VERSIONS),
        }

    def _tick(self) -> None:
        """Complete operations when their time comes, even if nobody polls (events must still fire)."""
        store = self.store
        while not self._stopping.is_set():
            with store.lock:
                deadline = store.next_deadline()
                timeout = 1.0 if deadline is None else min(1.0, max(0.0, deadline - self.clock()))
                store.changed.wait(timeout)
                store.settle()

    def _emit(self, completed: Completed) -> None:
        event = arm_event(completed)
        with self._log_lock:
            self.events.append(event)
        if self.delivery is not None:
            self.delivery.submit(event)

    def advance_clock(self, seconds: float) -> None:
        with self.store.lock:
            self._clock_offset += seconds
            self.store.settle()

    def reset(self, scenario: str | None = None) -> None:
        with self.store.lock:
            self.store.reset()
            self.faults.clear()
            self.throttle.reset()
            with self._log_lock:
                self.events.clear()
                self.requests.clear()
            if scenario:
                scenarios.load(scenario, self.store)

    # ----------------------------------------------------------------- ARM

    def handle_arm(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
        *,
        fail: bool = False,
    ) -> tuple[Response, ResourcePath | OperationPath | None, list[str]]:
        target: ResourcePath | OperationPath | None = None
        actions: list[str] = []
        rate_headers: dict[str, str] = {}
        try:
            versions = query.get("api-version")
            if not versions:
                raise bad_request(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            target = parse_path(path)
            actions = rbac_actions(method, target, body)
            expected = _api_version(target)
            if versions[0] != expected:
                raise bad_request(
                    "NoRegisteredProviderFound",
                    f"No registered resource provider found for API version '{versions[0]}'. "
                    f"The supported api-versions are '{expected}'.",
                )
            claims = claims_from_authorization(headers.get("authorization"))
            if claims is None:
                raise ArmError(
                    401,
                    "AuthenticationFailed",
                    "Authentication failed. The 'Authorization' header is missing.",
                    headers={"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/"'},
                )
            rate_headers = self._charge(claims, target, method)
            if isinstance(body, _InvalidJson):
                raise bad_request(
                    "InvalidRequestContent",
                    f"The request content was invalid and could not be deserialized: '{body.reason}'.",
                )
            if isinstance(target, OperationPath):
                return _with_headers(self._operation(method, target), rate_headers), target, actions
            caller = Caller(
                claims=claims,
                client_ip=headers.get("x-forwarded-for", "127.0.0.1"),
                correlation_id=headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
                client_request_id=headers.get("x-ms-client-request-id"),
                method=method,
                url=f"https://management.azure.com{path}?api-version={expected}",
            )
            response = self._resource(
                method=method, target=target, query=query, headers=headers, body=body, caller=caller, fail=fail
            )
            return _with_headers(response, rate_headers), target, actions
        except ArmError as err:
            return Response(err.status, err.body(), {**rate_headers, **err.headers}), target, actions

    def _charge(self, claims: Json, target: ResourcePath | OperationPath, method: str) -> dict[str, str]:
        """ARM's throttle, before the request reaches the resource provider: the remaining-requests headers
        for the answer, or a 429 (raised) when the caller's bucket or the subscription's is empty."""
        principal = str(claims.get("oid") or claims.get("appid") or "anonymous")
        charge = self.throttle.charge(principal=principal, subscription=target.subscription, method=method)
        if charge is None:
            return {}
        if charge.retry_after is not None:
            raise charge.error(principal=principal, subscription=target.subscription, method=method)
        return charge.headers

    def _resource(
        self,
        *,
        method: str,
        target: ResourcePath,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
        caller: Caller,
        fail: bool = False,
    ) -> Response:
        if target.is_collection:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"The method '{method}' is not allowed on a collection.")
            return self._list(target, query)
        if method == "GET":
            view = self.store.get(target)
            return Response(200, view, {"ETag": _etag_of(view, target)})
        if method == "PUT":
            result = self.store.put(
                target,
                body,
                caller=caller,
                if_match=headers.get("if-match"),
                if_none_match=headers.get("if-none-match"),
                fail=FAILED_OPERATION if fail else None,
            )
            out = {"Azure-AsyncOperation": self._operation_url(result.operation.location, result.operation.id)}
            out.update(self._retry_after())
            return Response(result.status, result.view, out)
        if method == "DELETE":
            deleted = self.store.delete(target, caller=caller, if_match=headers.get("if-match"))
            if deleted.operation is None:
                return Response(deleted.status)
            op = deleted.operation
            out = {
                "Azure-AsyncOperation": self._operation_url(op.location, op.id),
                "Location": self._operation_url(op.location, op.id, result=True),
            }
            out.update(self._retry_after())
            return Response(202, None, out)
        raise ArmError(405, "MethodNotAllowed", f"The method '{method}' is not supported by localarm.")

    def _list(self, target: ResourcePath, query: dict[str, list[str]]) -> Response:
        items = self.store.list_collection(target)
        skip = int(query.get("$skipToken", ["0"])[0] or 0)
        page = items[skip : skip + self.page_size]
        body: Json = {"value": page}
        if skip + self.page_size < len(items):
            next_query = urlencode({"api-version": target.type.api_version, "$skipToken": str(skip + self.page_size)})
            body["nextLink"] = f"{self.endpoint}{target.id}?{next_query}"
        return Response(200, body)

    def _operation(self, method: str, target: OperationPath) -> Response:
        if method != "GET":
            raise ArmError(405, "MethodNotAllowed", "Operations can only be read.")
        if target.is_result:
            if self.store.operation_done(target.operation_id):
                return Response(204)
            headers = {"Location": self._operation_url(target.location, target.operation_id, result=True)}
            headers.update(self._retry_after())
            return Response(202, None, headers)
        status = self.store.operation_status(target.operation_id)
        return Response(200, status, self._retry_after() if status["status"] == "InProgress" else {})

    def _operation_url(self, location: str, operation_id: str, *, result: bool = False) -> str:
        subscription = "00000000-0000-0000-0000-000000000000"
        namespace, api_version = "Microsoft.Network", API_VERSION
        # The subscription segment must be a real one for the SDK; find it from the operation's target.
        op = self.store.operations.get(operation_id)
        if op is not None:
            subscription = op.target.split("/")[2]
            namespace, api_version = op.namespace, op.api_version
        kind = "operationResults" if result else "operations"
        return (
            f"{self.endpoint}/subscriptions/{subscription}/providers/{namespace}/locations/{location}"
            f"/{kind}/{operation_id}?api-version={api_version}"
        )

    def _retry_after(self) -> dict[str, str]:
        # azure-core treats Retry-After: 0 as absent and falls back to its polling interval.
        seconds = self.store.lro_seconds
        return {"Retry-After": str(math.ceil(seconds))} if seconds >= 1 else {}

    # ------------------------------------------------------------- control

    def handle_control(self, method: str, path: str, body: Any) -> Response:
        route = path[len("/_localarm/") :].strip("/")
        try:
            return self._control(method, route, body)
        except (FaultSpecError, ThrottleSpecError, ValueError, KeyError) as err:
            return Response(400, {"error": {"code": "BadControlRequest", "message": str(err)}})
        except ArmError as err:
            return Response(err.status, err.body(), err.headers)

    def _control(self, method: str, route: str, body: Any) -> Response:
        if isinstance(body, _InvalidJson):
            raise ValueError(f"the body is not valid JSON: {body.reason}")
        if route == "health" and method == "GET":
            return Response(200, {"ok": True, **self.ready_info()})
        if route == "requests":
            with self._log_lock:
                if method == "GET":
                    return Response(200, {"requests": list(self.requests)})
                if method == "DELETE":
                    self.requests.clear()
                    return Response(204)
        if route == "events":
            with self._log_lock:
                if method == "GET":
                    return Response(200, {"events": list(self.events)})
                if method == "DELETE":
                    self.events.clear()
                    return Response(204)
        if route == "events/deliveries" and method == "GET":
            delivery = self.delivery
            attempts = list(delivery.attempts) if delivery else []
            dead = list(delivery.dead_letters) if delivery else []
            return Response(
                200,
                {"attempts": attempts, "deadLetters": dead, "pending": delivery.pending() if delivery else 0},
            )
        if route == "faults":
            if method == "GET":
                return Response(200, {"faults": self.faults.describe()})
            if method == "POST":
                specs = body if isinstance(body, list) else [body]
                added = [self.faults.add(Fault.from_json(spec)).describe() for spec in specs]
                return Response(201, {"faults": added})
            if method == "DELETE":
                self.faults.clear()
                return Response(204)
        if route == "throttle":
            if method == "GET":
                return Response(200, self.throttle.describe())
            if method == "POST":
                self.throttle.configure(body)
                return Response(200, self.throttle.describe())
            if method == "DELETE":
                self.throttle.reset()
                return Response(204)
        if route == "reset" and method == "POST":
            scenario = (body or {}).get("scenario") if isinstance(body, dict) else None
            if scenario is not None and scenario not in scenarios.available():
                raise ValueError(f"unknown scenario {scenario!r}; available: {', '.join(scenarios.available())}")
            self.reset(scenario)
            return Response(200, {"reset": True, "scenario": scenario})
        if route == "clock/advance" and method == "POST":
            seconds = body.get("seconds") if isinstance(body, dict) else None
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise ValueError("'seconds' must be a non-negative number")
            self.advance_clock(float(seconds))
            return Response(200, {"advanced": seconds})
        if route == "platform/firewall-private-ip" and method == "POST":
            target, address = self._platform_target(body, "firewall"), body.get("address")
            if not isinstance(address, str):
                raise ValueError("'address' must be an IPv4 address string")
            self.store.set_firewall_private_ip(target, address)
            return Response(200, self.store.get(target))
        if route == "platform/provisioning-state" and method == "POST":
            target, state = self._platform_target(body, "resource"), body.get("state")
            if state not in ("Succeeded", "Failed", "Updating"):
                raise ValueError("'state' must be Succeeded, Failed or Updating")
            self.store.set_provisioning_state(target, state)
            return Response(200, self.store.get(target))
        raise ArmError(404, "NotFound", f"No control endpoint {method} /_localarm/{route}.")

    @staticmethod
    def _platform_target(body: Any, key: str) -> ResourcePath:
        if not isinstance(body, dict) or not isinstance(body.get(key), str):
            raise ValueError(f"'{key}' must be a resource ID")
        target = parse_path(body[key])
        if not isinstance(target, ResourcePath) or target.is_collection:
            raise ValueError(f"'{key}' must be a resource ID")
        return target

    # ---------------------------------------------------------------- logs

    def log_request(
        self,
        *,
        method: str,
        path: str,
        status: int,
        target: ResourcePath | OperationPath | None,
        actions: list[str],
        claims: Json | None,
    ) -> None:
        entry = {
            "method": method,
            "path": path,
            "status": status,
            "kind": "operation" if isinstance(target, OperationPath) else "arm",
            "actions": actions,
            "action": actions[0] if actions else None,
            "caller": (claims or {}).get("oid") or (claims or {}).get("appid"),
            "time": time.time(),
        }
        with self._log_lock:
            entry["seq"] = len(self.requests) + 1
            self.requests.append(entry)


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    if not headers:
        return response
    return Response(response.status, response.body, {**headers, **(response.headers or {})})


@dataclass(frozen=True)
class _InvalidJson:
    reason: str


def _api_version(target: ResourcePath | OperationPath) -> str:
    return target.api_version if isinstance(target, OperationPath) else target.type.api_version


def _etag_of(view: Json, target: ResourcePath) -> str:
    """The resource's etag, wherever its provider puts it in the body (``etag``, AKS's ``eTag``)."""
    value: Any = view
    for key in target.type.etag_at:
        value = value[key]
    return str(value)


def _handler_for(arm: LocalArm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "localarm"
        # Headers and body are written separately; without TCP_NODELAY every response waits ~40 ms
        # for the client's delayed ACK (Nagle).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log is available through the control API."""

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def _read_body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ArmError(413, "RequestEntityTooLarge", "The request body is too large.")
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return None
            try:
                return json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                return _InvalidJson(str(err))

        def _dispatch(self, method: str) -> None:
            try:
                self._handle(method)
            except (ConnectionError, ssl.SSLError, TimeoutError):
                self.close_connection = True
            except Exception:  # never crash a server thread: answer 500 and keep serving
                traceback.print_exc(file=sys.stderr)
                self._send(Response(500, {"error": {"code": "InternalServerError", "message": "localarm failed."}}))

        def _handle(self, method: str) -> None:
            split = urlsplit(self.path)
            path = split.path
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = self._read_body()
            except ArmError as err:
                self._send(Response(err.status, err.body()))
                self.close_connection = True
                return
            if path.startswith("/_localarm/"):
                self._send(arm.handle_control(method, path, body))
                return
            fault = arm.faults.take(method, path)
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
                fault = None
            failing = fault is not None and fault.kind == "fail"
            if failing:
                fault = None
            query = parse_qs(split.query)
            claims = claims_from_authorization(headers.get("authorization"))
            if fault is not None:
                injected = fault.error()
                response = Response(injected.status, injected.body(), injected.headers)
                try:
                    target: ResourcePath | OperationPath | None = parse_path(path)
                except ArmError:
                    target = None
                actions = rbac_actions(method, target, body) if target else []
            else:
                response, target, actions = arm.handle_arm(method, path, query, headers, body, fail=failing)
            arm.log_request(
                method=method,
                path=path,
                status=response.status,
                target=target,
                actions=actions,
                claims=claims,
            )
            response = self._send(response, correlation_id=headers.get("x-ms-correlation-request-id"))
            if (
                arm.traffic is not None
                and isinstance(target, ResourcePath)
                and query.get("api-version") == [target.type.api_version]
                # A request the service rejects as malformed is the client's bug, not traffic to validate.
                and response.status != 400
                and not (response.status >= 400 and target.type.arm_type in FLAT_ERROR_SPEC_TYPES)
                # AKS answers errors flat ({"code", "message", "subcode", "details"}), not in the ErrorResponse
                # envelope its spec declares: oav would flag the service's real shape, so they stay out.
                and not (response.status >= 400 and isinstance(response.body, dict) and "error" not in response.body)
            ):
                arm.traffic.record(
                    method=method,
                    path_and_query=self.path,
                    request_headers=headers,
                    request_body=body,
                    status=response.status,
                    response_headers=response.headers or {},
                    response_body=response.body,
                )

        def _send(self, response: Response, *, correlation_id: str | None = None) -> Response:
            payload = b"" if response.body is None else json.dumps(response.body).encode()
            headers = dict(response.headers or {})
            if payload:
                headers["Content-Type"] = "application/json; charset=utf-8"
            headers["x-ms-request-id"] = str(uuid.uuid4())
            headers["x-ms-correlation-request-id"] = correlation_id or str(uuid.uuid4())
            self.send_response(response.status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            return Response(response.status, response.body, headers)

    return Handler
