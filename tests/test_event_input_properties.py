"""Random malformed deliveries of both schemas against the real ``function_app.on_resource_change``.

Envelopes with missing fields, wrong types, huge strings and control characters; ``data`` that is no
object, or an ARM-like object with random operation names, URIs and claims. Each reaches the function
either as the Functions host builds it (raw JSON through azure-functions' own converter) or as an
event object holding arbitrary Python values. Whatever arrives: no exception, no ARM request (none of
these events concerns the configured cluster, so even the reads are wasted), and every log record is
one printable line of at most 2,000 characters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from localarm.server import LocalArm
from remediation import triggers
from remediation.events import watched
from tests.conftest import SUB
from tests.landing_zone import write_config
from tests.test_event_input import MAX_LOG_LINE, delivered
from tests.test_function_app import make_runtime

HOSTILE = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

EVENT_TYPES, OPERATIONS = watched()

# Text an attacker would choose: control characters, line and paragraph separators, bidi overrides.
nasty_chars = st.sampled_from(["\n", "\r", "\x1b", "\x00", "\x85", "\u2028", "\u2029", "\u202e", "\t", " ", "%", "/"])
nasty_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(nasty_chars, st.text(max_size=5)), max_size=20).map("".join),
    st.integers(1_000, 300_000).map(lambda n: "x\n" * n),  # huge, and a line break in every other character
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), nasty_text)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
not_json = st.one_of(st.binary(max_size=10), st.just(object()), st.just({1, 2}), st.just(float("nan")))

# Plausible parts: names ARM accepts, never one of the landing zone's (none of those starts with "zz").
names = st.from_regex(r"zz[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9_])?", fullmatch=True)
kinds = st.sampled_from(
    [
        "Microsoft.Network/routeTables",
        "Microsoft.Network/routeTables/routes",
        "Microsoft.Network/azureFirewalls",
        "Microsoft.Network/firewallPolicies",
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/virtualNetworks/subnets",
        "Microsoft.Network/loadBalancers",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Storage/storageAccounts",
    ]
)
operations = st.sampled_from(sorted(OPERATIONS)) | st.sampled_from(
    ["Microsoft.Storage/storageAccounts/write", "Microsoft.Network/routeTables/join/action"]
)
event_types = st.sampled_from(sorted(EVENT_TYPES)) | st.just("Microsoft.Resources.ResourceActionSuccess")
iso_times = st.sampled_from(["2018-07-19T18:38:04.6117357Z", "2026-01-01T00:00:00+00:00"])
claims = st.dictionaries(
    st.sampled_from(["name", "appid", "ipaddr", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "oid"]),
    nasty_text,
)


@st.composite
def resource_uris(draw: st.DrawFn) -> str:
    """A resource ID of a kind the remediator watches (or not), in a resource group the cluster uses (or not)."""
    namespace, *types = draw(kinds).split("/")
    group = draw(st.sampled_from(["rg-spoke", "rg-hub", "MC_rg-aks_aks-demo_westeurope"]) | names)
    path = "/".join(f"{kind}/{draw(names)}" for kind in types)
    return (
        draw(st.sampled_from(["/subscriptions/", "/SUBSCRIPTIONS/"]))
        + f"{SUB}/resourceGroups/{group}/providers/{namespace}/{path}"
    )


@st.composite
def hostile_uris(draw: st.DrawFn) -> object:
    """A resource ID with one part broken: a hostile name or segment, an escaped or extra '/', or no text."""
    uri = draw(resource_uris())
    parts = uri.split("/")
    index = draw(st.integers(2, len(parts) - 1))
    parts[index] = draw(nasty_text)
    broken = "/".join(parts)
    return draw(
        st.sampled_from([broken, uri.replace("/", "%2F"), uri + "/extra", uri.replace("/providers", "")]) | json_values
    )


def _maybe_broken(draw: st.DrawFn, broken: set[str], name: str, good: Any, bad: Any) -> Any:
    return draw(bad if name in broken else good)


@st.composite
def arm_data(draw: st.DrawFn, *, bad: Any) -> object:
    """``data`` of an ARM event: plausible, with some fields missing or replaced by ``bad`` values."""
    broken = draw(st.sets(st.sampled_from(["operationName", "resourceUri", "claims", "httpRequest", "correlationId"])))
    data: dict[str, Any] = {
        "operationName": _maybe_broken(draw, broken, "operationName", operations, nasty_text | bad),
        "resourceUri": _maybe_broken(draw, broken, "resourceUri", resource_uris(), hostile_uris() | bad),
        "claims": _maybe_broken(draw, broken, "claims", claims, bad),
        "httpRequest": _maybe_broken(
            draw, broken, "httpRequest", st.fixed_dictionaries({"clientIpAddress": nasty_text}), bad
        ),
        "correlationId": _maybe_broken(draw, broken, "correlationId", st.uuids().map(str), bad),
    }
    for key in draw(st.sets(st.sampled_from(sorted(data)), max_size=2)):
        del data[key]
    return data


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object as Event Grid posts it (one array element), in either schema, with some fields
    missing or broken."""
    broken = draw(st.sets(st.sampled_from(["id", "type", "data", "time"]), max_size=2))
    fields = {
        "id": _maybe_broken(draw, broken, "id", st.uuids().map(str), json_values),
        "type": _maybe_broken(draw, broken, "type", event_types, json_values),
        "data": _maybe_broken(draw, broken, "data", arm_data(bad=json_values), json_values),
        # The converter itself refuses a time it cannot parse, before the function runs.
        "time": _maybe_broken(draw, broken, "time", iso_times, st.none() | st.just("")),
        "subject": draw(json_values),
    }
    for key in draw(st.sets(st.sampled_from(sorted(fields)), max_size=1)):
        del fields[key]
    if draw(st.booleans()):  # CloudEvents 1.0
        return {"specversion": "1.0", "source": f"/subscriptions/{SUB}", **fields}
    renamed = {"type": "eventType", "time": "eventTime"}
    return {"topic": f"/subscriptions/{SUB}", **{renamed.get(k, k): v for k, v in fields.items()}}


@st.composite
def built_events(draw: st.DrawFn) -> Any:
    """An event object holding arbitrary Python values, as a host (or a test) could build without a converter."""
    anything = json_values | not_json
    broken = draw(st.sets(st.sampled_from(["id", "type", "data", "time"]), max_size=2))
    event_id = _maybe_broken(draw, broken, "id", st.uuids().map(str), anything)
    event_type = _maybe_broken(draw, broken, "type", event_types, anything)
    data = _maybe_broken(draw, broken, "data", arm_data(bad=anything), anything)
    time = _maybe_broken(draw, broken, "time", st.datetimes() | st.none(), anything)
    if draw(st.booleans()):
        return func.CloudEvent(
            id=event_id, source=draw(anything), type=event_type, specversion="1.0", data=data, time=time
        )
    return func.EventGridEvent(
        id=event_id,
        data=data,
        topic=draw(anything),
        subject=draw(anything),
        event_type=event_type,
        event_time=time,
        data_version=draw(anything),
    )


@pytest.fixture
def converged(arm: LocalArm, tmp_path: Path) -> Iterator[triggers.Runtime]:
    """The landing zone at the baseline and the worker's runtime installed: what firewall policy the
    firewall uses is known, so no event below needs an ARM read to be found out of scope."""
    rt = make_runtime(write_config(tmp_path), arm)
    triggers.reset_runtime(rt)
    triggers.run_sweep(rt=rt)
    yield rt
    triggers.reset_runtime(None)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _deliver(arm: LocalArm, event: Any) -> None:
    logger = logging.getLogger("remediation")
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    arm.requests.clear()
    try:
        function_app.on_resource_change(event)  # must not raise: there is nothing to retry in these events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert arm.requests == []
    for record in handler.records:
        message = record.getMessage()
        assert len(message) <= MAX_LOG_LINE, f"{len(message)} characters: {message[:300]!r}"
        assert message.isprintable(), f"not one printable line: {message[:300]!r}"


@HOSTILE
@given(raw=raw_events())
def test_malformed_deliveries_through_the_functions_converter_are_dropped_quietly(
    arm: LocalArm, converged: triggers.Runtime, raw: dict[str, Any]
) -> None:
    json.dumps(raw)  # what Event Grid posts is JSON
    _deliver(arm, delivered(raw))


@HOSTILE
@given(event=built_events())
def test_event_objects_holding_any_values_are_dropped_quietly(
    arm: LocalArm, converged: triggers.Runtime, event: Any
) -> None:
    _deliver(arm, event)
