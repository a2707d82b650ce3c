"""Hostile and misdelivered events: either schema, wrong types, huge or forged text.

Events reach ``function_app.on_resource_change`` as the Functions host builds them: raw JSON through
azure-functions' own Event Grid converter (``delivered``), which hands over a ``func.EventGridEvent`` or,
for a CloudEvents 1.0 payload, a ``func.CloudEvent``. Whatever arrives, the handler must not raise, must
not call ARM for what it cannot use, and must log one bounded line per event, never a forged one.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum

import function_app
from localarm.server import LocalArm
from remediation import triggers
from remediation.config import Config
from remediation.events import MalformedEvent, caller_from_claims, delivery_of, parse_change
from remediation.resource_id import ResourceId
from tests.conftest import FIXTURES, OPERATOR, ROUTE_TABLE, SUB, VNET_SPOKE
from tests.landing_zone import DEFAULT_ROUTE, Operator, write_config
from tests.test_function_app import arm_writes, make_runtime

WRITE = "Microsoft.Resources.ResourceWriteSuccess"
MAX_LOG_LINE = 2000


# ------------------------------------------------------------------------------ helpers


def delivered(raw: object) -> Any:
    """What the Functions host passes the function for one element of an Event Grid delivery."""
    return EventGridEventInConverter.decode(Datum(json.dumps(raw), "json"), trigger_metadata={})


def arm_event(
    operation: str, resource: ResourceId | str, *, schema: str = "eventgrid", claims: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Microsoft's sample write event, in either schema, retargeted at a resource (raw JSON, as posted)."""
    raw = copy.deepcopy(json.loads((FIXTURES / "events" / f"resource-write-success.{schema}.json").read_text())[0])
    data = raw["data"]
    raw["subject"] = data["resourceUri"] = data["authorization"]["scope"] = str(resource)
    data["operationName"] = data["authorization"]["action"] = operation
    data["subscriptionId"] = SUB
    data["claims"].update(
        {
            "appid": OPERATOR,
            "http://schemas.microsoft.com/identity/claims/objectidentifier": OPERATOR,
            "name": "Dana Operator",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "dana@contoso.example",
            "ipaddr": "203.0.113.7",
            **(claims or {}),
        }
    )
    raw["topic" if schema == "eventgrid" else "source"] = f"/subscriptions/{SUB}"
    return raw


def assert_bounded_single_lines(records: list[logging.LogRecord]) -> None:
    for record in records:
        message = record.getMessage()
        assert len(message) <= MAX_LOG_LINE, f"{len(message)} characters: {message[:200]}"
        assert message.isprintable(), f"a control character in: {message[:200]!r}"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path)


@pytest.fixture
def converged(arm: LocalArm, config: Config) -> Iterator[triggers.Runtime]:
    """The landing zone at the baseline, the worker's runtime installed, logs cleared."""
    rt = make_runtime(config, arm)
    triggers.reset_runtime(rt)
    triggers.run_sweep(rt=rt)
    arm.advance_clock(1)
    arm.requests.clear()
    yield rt
    triggers.reset_runtime(None)


@pytest.fixture(autouse=True)
def debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every record the remediator logs, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="remediation")


def remediation_records(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.name.startswith("remediation")]


# ------------------------------------------------------------------------- either schema


def test_a_cloudevents_delivery_reaches_the_function_as_a_cloud_event_with_the_same_fields() -> None:
    event_grid = delivered(arm_event("Microsoft.Network/routeTables/write", ROUTE_TABLE))
    cloud = delivered(arm_event("Microsoft.Network/routeTables/write", ROUTE_TABLE, schema="cloudevent"))
    assert isinstance(event_grid, func.EventGridEvent) and isinstance(cloud, func.CloudEvent)
    assert not hasattr(cloud, "event_type")  # what once made the function raise AttributeError
    assert delivery_of(cloud) == delivery_of(event_grid)
    assert delivery_of(cloud).event_type == WRITE
    assert delivery_of(cloud).event_time == "2018-07-19T18:38:04.611735+00:00"


def test_a_cloudevents_delivery_restores_the_baseline_like_the_event_grid_schema(
    arm: LocalArm, converged: triggers.Runtime, operator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    operator_of = Operator(operator)
    operator_of.edit(
        DEFAULT_ROUTE, lambda b: b["properties"].update({"nextHopType": "Internet", "nextHopIpAddress": None})
    )
    arm.requests.clear()

    function_app.on_resource_change(
        delivered(arm_event("Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE, schema="cloudevent"))
    )

    assert arm_writes(arm) == [str(DEFAULT_ROUTE.parent)]  # the route table, in one write
    (result,) = [r for r in caplog.records if hasattr(r, "remediation")]
    cause = result.remediation["cause"]
    assert (cause["eventType"], cause["eventTime"]) == (WRITE, "2018-07-19T18:38:04.611735+00:00")
    assert "restored" in result.getMessage() and "dana@contoso.example" in result.getMessage()


def test_a_cloudevents_payload_read_by_an_older_converter_is_dropped_naming_the_schema(
    arm: LocalArm, converged: triggers.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # azure-functions < 1.25 reads only the Event Grid keys: the event arrives with no event type.
    raw = arm_event("Microsoft.Network/routeTables/write", ROUTE_TABLE, schema="cloudevent")
    event = func.EventGridEvent(
        id=raw["id"],
        data=raw["data"],
        topic=None,
        subject=raw["subject"],
        event_type=None,
        event_time=None,
        data_version=None,
    )

    function_app.on_resource_change(event)

    assert arm.requests == []
    (warning,) = [r for r in remediation_records(caplog.records) if r.levelno >= logging.WARNING]
    assert "no event type" in warning.getMessage() and "event delivery schema" in warning.getMessage()


# ------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"event_type": 42}, "its event type is the number 42, expected a string"),
        ({"event_type": ["Microsoft.Resources.ResourceWriteSuccess"]}, "its event type is a list, expected a string"),
        ({"event_type": {"a": 1}}, "its event type is a dict, expected a string"),
        ({"event_type": True}, "its event type is true (a boolean), expected a string"),
        ({"id": None}, "its id is missing (null), expected a non-empty string"),
        ({"id": 7}, "its id is the number 7, expected a non-empty string"),
        ({"id": "x" * 100_000}, "is not an event id (at most 128 printable characters; ARM's are GUIDs)"),
        ({"id": "e1\nremediation: forged"}, "is not an event id"),
        ({"event_time": "yesterday"}, "its event time 'yesterday' is not an ISO 8601 time"),
        ({"event_time": 1_700_000_000}, "its event time is the number 1700000000, expected an ISO 8601 string"),
        ({"data": "not json at all"}, "data is a string, expected a JSON object"),
        ({"data": b"\x00\x01"}, "data is a bytes, expected a JSON object"),
    ],
)
def test_a_wrong_typed_field_is_logged_once_and_dropped_without_an_arm_call(
    arm: LocalArm, converged: triggers.Runtime, caplog: pytest.LogCaptureFixture, fields: dict[str, Any], problem: str
) -> None:
    raw = arm_event("Microsoft.Network/routeTables/write", ROUTE_TABLE)
    values: dict[str, Any] = {
        "id": raw["id"],
        "data": raw["data"],
        "topic": raw["topic"],
        "subject": raw["subject"],
        "event_type": raw["eventType"],
        "event_time": None,
        "data_version": raw["dataVersion"],
        **fields,
    }
    event = func.EventGridEvent(**values)

    function_app.on_resource_change(event)  # no TypeError, no AttributeError

    assert arm.requests == []
    (warning,) = [r for r in remediation_records(caplog.records) if r.levelno >= logging.WARNING]
    assert problem in warning.getMessage()
    assert_bounded_single_lines(caplog.records)


def test_handle_event_reports_wrong_types_as_malformed(converged: triggers.Runtime) -> None:
    outcome = triggers.handle_event(event_id=["e"], event_type={"t": 1}, data=object(), rt=converged)
    assert (outcome.event_id, outcome.status) == ("<list>", "malformed")


# ------------------------------------------------------------------------- huge and forged text


def test_a_megabyte_resource_uri_leaves_every_log_record_bounded(
    arm: LocalArm, converged: triggers.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/routeTables/" + "r" * 1_000_000
    function_app.on_resource_change(delivered(arm_event("Microsoft.Network/routeTables/write", uri)))

    assert arm.requests == []
    (warning,) = [r for r in remediation_records(caplog.records) if r.levelno >= logging.WARNING]
    assert f"is {len(uri)} characters long" in warning.getMessage()
    assert_bounded_single_lines(caplog.records)


def test_huge_claims_are_cut_when_read_so_logs_and_cards_stay_small(
    arm: LocalArm, converged: triggers.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "n" * 100_000
    claims = {"name": huge, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": huge, "ipaddr": huge}
    function_app.on_resource_change(
        delivered(arm_event("Microsoft.Network/routeTables/write", ROUTE_TABLE, claims=claims))
    )

    (result,) = [r for r in caplog.records if hasattr(r, "remediation")]  # the reconcile ran and logged at INFO
    assert "nnnn…(+99744 chars)" in result.getMessage()
    assert_bounded_single_lines(caplog.records)
    caller = caller_from_claims(claims)
    assert caller.name is not None and len(caller.name) < 300  # what a Teams card shows


def test_a_newline_in_a_claim_makes_no_extra_log_line(
    arm: LocalArm, converged: triggers.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "eve@contoso.example\nremediation: cluster aks-demo compliant after nothing by nobody"
    claims = {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": forged}
    function_app.on_resource_change(
        delivered(arm_event("Microsoft.Network/routeTables/write", ROUTE_TABLE, claims=claims))
    )

    (result,) = [r for r in caplog.records if hasattr(r, "remediation")]
    assert "eve@contoso.example\\nremediation: cluster aks-demo" in result.getMessage()
    assert_bounded_single_lines(caplog.records)
    assert len(logging.Formatter("%(levelname)s %(message)s").format(result).splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("rt\naks", "route table name 'rt\\\\naks' contains a control or other invisible character"),
        ("rt aks", "route table name 'rt aks' contains whitespace"),
        ("rt%2Faks", "route table name 'rt%2Faks' contains '%'"),
        ("r" * 81, "is 81 characters long (ARM allows 1 to 80 characters for a route table name)"),
    ],
)
def test_a_resource_uri_naming_what_arm_would_refuse_is_malformed(
    arm: LocalArm, converged: triggers.Runtime, caplog: pytest.LogCaptureFixture, name: str, problem: str
) -> None:
    uri = f"/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/routeTables/{name}"
    raw = arm_event("Microsoft.Network/routeTables/write", uri)
    with pytest.raises(MalformedEvent, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_change(event_id="e", event_type=WRITE, data=raw["data"])

    outcome = triggers.handle_event(event_id="e", event_type=WRITE, data=raw["data"], rt=converged)

    assert outcome.status == "malformed"
    assert arm.requests == []
    assert_bounded_single_lines(caplog.records)


def test_a_subnet_uri_with_a_slash_too_many_is_malformed(converged: triggers.Runtime) -> None:
    uri = f"{VNET_SPOKE}/subnets/aks/nodes"
    raw = arm_event("Microsoft.Network/virtualNetworks/subnets/write", uri)
    outcome = triggers.handle_event(event_id="e", event_type=WRITE, data=raw["data"], rt=converged)
    assert outcome.status == "malformed" and "a name cannot contain '/'" in outcome.reason
