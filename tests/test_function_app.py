"""The Functions app: bindings, event dispatch, self-caused events, retries, malformed events, the sweep.

The decorated functions of ``function_app.py`` are called the way the Functions host calls them, with
events built from Microsoft's samples (``tests/fixtures/events``) retargeted at localarm's resources.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import function_app
from localarm.server import LocalArm
from remediation import triggers
from remediation.config import Config
from remediation.network import AzureNetwork
from remediation.reconcile import reconcile_cluster
from remediation.resource_id import ResourceId
from remediation.settings import Settings, SettingsError
from tests.conftest import (
    AKS_CLUSTER,
    AKS_SUBNET,
    FIREWALL,
    FIXTURES,
    OPERATOR,
    POLICY,
    REMEDIATOR,
    ROUTE_TABLE,
    SUB,
    VNET_SPOKE,
    demo_id,
)
from tests.landing_zone import DEFAULT_ROUTE, OWNED_GROUP, PLATFORM_GROUP, Operator, owned_rules, write_config

WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"


# ------------------------------------------------------------------------------ fixtures


def make_runtime(config: Config, arm: LocalArm, *, principal: str | None = REMEDIATOR) -> triggers.Runtime:
    settings = Settings(
        config_path=config.source,
        force_audit=False,
        sweep_schedule="0 0 2 * * *",
        sweep_concurrency=2,
        principal_id=principal,
    )
    network = AzureNetwork(
        endpoint=arm.endpoint, ca_bundle=str(arm.ca_bundle), principal_id=REMEDIATOR, polling_interval=0
    )
    return triggers.Runtime(settings=settings, config=config, network=network)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path)


@pytest.fixture
def rt(arm: LocalArm, config: Config) -> Iterator[triggers.Runtime]:
    runtime = make_runtime(config, arm)
    triggers.reset_runtime(runtime)
    yield runtime
    triggers.reset_runtime(None)


@pytest.fixture
def operator_of(operator: AzureNetwork) -> Operator:
    return Operator(operator)


@pytest.fixture
def converged(rt: triggers.Runtime, arm: LocalArm) -> triggers.Runtime:
    """The landing zone already at the baseline, logs cleared."""
    triggers.run_sweep(rt=rt)
    arm.advance_clock(1)
    arm.requests.clear()
    arm.events.clear()
    return rt


def event_grid_event(
    operation: str, resource: ResourceId | str, *, caller: str = OPERATOR, delete: bool = False
) -> func.EventGridEvent:
    """A Microsoft sample event (Event Grid schema) retargeted at a localarm resource."""
    sample = "resource-delete-success.eventgrid.json" if delete else "resource-write-success.eventgrid.json"
    raw = copy.deepcopy(json.loads((FIXTURES / "events" / sample).read_text())[0])
    raw["subject"] = raw["data"]["resourceUri"] = raw["data"]["authorization"]["scope"] = str(resource)
    raw["data"]["operationName"] = raw["data"]["authorization"]["action"] = operation
    raw["topic"] = f"/subscriptions/{SUB}"
    raw["data"]["subscriptionId"] = SUB
    raw["data"]["resourceProvider"] = "Microsoft.Network"
    claims = raw["data"]["claims"]
    claims["appid"] = caller
    claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] = caller
    claims["name"] = "Dana Operator"
    claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] = "dana@contoso.example"
    claims["ipaddr"] = "203.0.113.7"
    if "httpRequest" in raw["data"]:
        raw["data"]["httpRequest"].update(
            clientIpAddress="203.0.113.7",
            url=f"https://management.azure.com{resource}?api-version=2026-03-01",
        )
    return func.EventGridEvent(
        id=raw["id"],
        data=raw["data"],
        topic=raw["topic"],
        subject=raw["subject"],
        event_type=raw["eventType"],
        event_time=dt.datetime.fromisoformat(raw["eventTime"].replace("Z", "+00:00")[:26] + "+00:00"),
        data_version=raw["dataVersion"],
    )


def arm_writes(arm: LocalArm) -> list[str]:
    return [r["path"] for r in arm.requests if r["method"] in ("PUT", "DELETE")]


# -------------------------------------------------------------------------------- indexing


def test_the_app_indexes_an_event_grid_trigger_and_a_nightly_timer() -> None:
    functions = {f.get_function_name(): json.loads(f.get_function_json()) for f in function_app.app.get_functions()}
    assert set(functions) == {"on_resource_change", "nightly_sweep"}
    (event,) = functions["on_resource_change"]["bindings"]
    assert (event["type"], event["direction"], event["name"]) == ("eventGridTrigger", "IN", "event")
    (timer,) = functions["nightly_sweep"]["bindings"]
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "0 0 2 * * *"
    assert timer["runOnStartup"] is False


def test_sweep_schedule_comes_from_the_app_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEP_SCHEDULE", "0 30 3 * * *")
    try:
        reloaded = importlib.reload(function_app)
        timer = next(f for f in reloaded.app.get_functions() if f.get_function_name() == "nightly_sweep")
        assert json.loads(timer.get_function_json())["bindings"][0]["schedule"] == "0 30 3 * * *"
    finally:
        monkeypatch.delenv("SWEEP_SCHEDULE")
        importlib.reload(function_app)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SWEEP_SCHEDULE", "every night"),
        ("SWEEP_CONCURRENCY", "0"),
        ("REMEDIATION_MODE", "yolo"),
        ("REMEDIATOR_PRINCIPAL_ID", "the-app"),
    ],
)
def test_bad_settings_are_rejected_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_environment({name: value})


def test_importing_the_app_loads_no_azure_sdk() -> None:
    import subprocess
    import sys

    probe = "import sys, function_app; print(sorted(m for m in ('azure.mgmt.network', 'azure.identity') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(function_app.__file__).parent,
    )
    assert result.stdout.strip() == "[]"


# -------------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("operation", "resource"),
    [
        ("Microsoft.Network/azureFirewalls/write", FIREWALL),
        ("Microsoft.Network/firewallPolicies/write", POLICY),
        ("Microsoft.Network/firewallPolicies/ruleCollectionGroups/write", OWNED_GROUP),
        ("Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete", PLATFORM_GROUP),
        ("Microsoft.Network/routeTables/write", ROUTE_TABLE),
        ("Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE),
        ("Microsoft.Network/virtualNetworks/write", VNET_SPOKE),
        ("Microsoft.Network/virtualNetworks/subnets/write", AKS_SUBNET),
    ],
)
def test_events_for_resources_in_the_baseline_reconcile_the_cluster(
    arm: LocalArm, converged: triggers.Runtime, operation: str, resource: ResourceId
) -> None:
    outcome = triggers.handle_event(
        event_id="e1", event_type=WRITE, data=event_grid_event(operation, resource).get_json(), rt=converged
    )
    assert outcome.status == "handled"
    assert [r.cluster for r in outcome.results] == ["aks-demo"]
    assert arm.requests  # the handler re-read ARM


def test_case_differences_in_operation_and_ids_do_not_matter(arm: LocalArm, converged: triggers.Runtime) -> None:
    shouted = (
        str(ROUTE_TABLE).upper().replace("SUBSCRIPTIONS", "subscriptions").replace("RESOURCEGROUPS", "resourcegroups")
    )
    outcome = triggers.handle_event(
        event_id="e1",
        event_type=WRITE,
        data=event_grid_event("MICROSOFT.NETWORK/ROUTETABLES/WRITE", shouted).get_json(),
        rt=converged,
    )
    assert outcome.status == "handled"


@pytest.mark.parametrize(
    ("operation", "resource"),
    [
        (
            "Microsoft.Storage/storageAccounts/write",
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1",
        ),
        ("Microsoft.Network/routeTables/write", demo_id("rg-other", "routeTables", "rt-other")),
        ("Microsoft.Network/azureFirewalls/write", demo_id("rg-hub", "azureFirewalls", "fw-other")),
        ("Microsoft.Network/virtualNetworks/subnets/write", VNET_SPOKE.child("subnets", "other")),
        (
            "Microsoft.Network/loadBalancers/write",
            demo_id("MC_rg-aks_aks-demo_westeurope", "loadBalancers", "kubernetes"),
        ),
    ],
)
def test_events_no_cluster_involves_cost_no_arm_call(
    arm: LocalArm, converged: triggers.Runtime, operation: str, resource: Any
) -> None:
    outcome = triggers.handle_event(
        event_id="e1", event_type=WRITE, data=event_grid_event(operation, resource).get_json(), rt=converged
    )
    assert outcome.status in ("ignored", "out-of-scope")
    assert arm.requests == []


def test_a_policy_no_cluster_uses_costs_no_arm_call_once_the_topology_is_known(
    arm: LocalArm, converged: triggers.Runtime
) -> None:
    other_policy = demo_id("rg-hub", "firewallPolicies", "fwpol-other")
    outcome = triggers.handle_event(
        event_id="e1",
        event_type=WRITE,
        data=event_grid_event("Microsoft.Network/firewallPolicies/write", other_policy).get_json(),
        rt=converged,
    )
    assert outcome.status == "out-of-scope"
    assert arm.requests == []


def test_a_cold_worker_learns_which_policies_its_firewalls_use(arm: LocalArm, rt: triggers.Runtime) -> None:
    other_policy = demo_id("rg-hub", "firewallPolicies", "fwpol-other")
    outcome = triggers.handle_event(
        event_id="e1",
        event_type=WRITE,
        data=event_grid_event("Microsoft.Network/firewallPolicies/write", other_policy).get_json(),
        rt=rt,
    )
    assert outcome.status == "out-of-scope"
    assert [r["path"] for r in arm.requests] == [
        str(FIREWALL),
        str(POLICY),
        f"{POLICY}/ruleCollectionGroups",
    ]  # the firewall, its policy and the policy's groups (for the IP Groups its rules name), once
    arm.requests.clear()
    triggers.handle_event(
        event_id="e2",
        event_type=WRITE,
        data=event_grid_event("Microsoft.Network/firewallPolicies/write", other_policy).get_json(),
        rt=rt,
    )
    assert arm.requests == []


def test_other_event_types_are_ignored(arm: LocalArm, converged: triggers.Runtime) -> None:
    data = event_grid_event("Microsoft.Network/routeTables/write", ROUTE_TABLE).get_json()
    outcome = triggers.handle_event(
        event_id="e1", event_type="Microsoft.Resources.ResourceActionSuccess", data=data, rt=converged
    )
    assert outcome.status == "ignored"
    assert arm.requests == []


# ------------------------------------------------------------------------- the real thing


def test_an_operators_mistake_is_restored_through_the_decorated_function(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator
) -> None:
    operator_of.edit(
        DEFAULT_ROUTE, lambda b: b["properties"].update({"nextHopType": "Internet", "nextHopIpAddress": None})
    )
    arm.requests.clear()

    function_app.on_resource_change(event_grid_event("Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE))

    assert arm_writes(arm) == [str(ROUTE_TABLE)]
    assert operator_of.body(DEFAULT_ROUTE)["properties"]["nextHopType"] == "VirtualAppliance"


def test_the_result_is_logged_with_who_caused_it(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    operator_of.delete(DEFAULT_ROUTE)
    with caplog.at_level(logging.INFO, logger="remediation"):
        function_app.on_resource_change(
            event_grid_event("Microsoft.Network/routeTables/routes/delete", DEFAULT_ROUTE, delete=True)
        )
    (record,) = [r for r in caplog.records if hasattr(r, "remediation")]
    assert "restored" in record.getMessage() and "dana@contoso.example" in record.getMessage()
    result = record.remediation
    assert result["cause"]["caller"]["ipAddress"] == "203.0.113.7"
    assert result["findings"][0]["kind"] == "missing-route"


def test_delete_event_of_an_owned_group_recreates_it(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator
) -> None:
    before = owned_rules(operator_of.network, classic=False)
    operator_of.delete(OWNED_GROUP)
    arm.requests.clear()
    function_app.on_resource_change(
        event_grid_event("Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete", OWNED_GROUP, delete=True)
    )
    assert arm_writes(arm) == [str(OWNED_GROUP)]
    assert owned_rules(operator_of.network, classic=False) == before


def test_events_the_remediator_caused_are_skipped_without_an_arm_call(
    arm: LocalArm, converged: triggers.Runtime
) -> None:
    outcome = triggers.handle_event(
        event_id="e1",
        event_type=WRITE,
        data=event_grid_event(
            "Microsoft.Network/routeTables/routes/write", DEFAULT_ROUTE, caller=REMEDIATOR
        ).get_json(),
        rt=converged,
    )
    assert outcome.status == "skipped-self"
    assert arm.requests == []


def test_without_the_principal_setting_own_events_converge_to_no_writes(arm: LocalArm, config: Config) -> None:
    rt = make_runtime(config, arm, principal=None)
    triggers.run_sweep(rt=rt)
    arm.advance_clock(1)
    own = [e for e in arm.events if e["data"]["claims"]["oid"] == REMEDIATOR]
    assert own  # the sweep's writes came back as events
    arm.requests.clear()
    for event in own:
        outcome = triggers.handle_event(event_id=event["id"], event_type=event["eventType"], data=event["data"], rt=rt)
        assert outcome.status == "handled"
    assert arm_writes(arm) == []


def test_duplicate_and_reordered_events_converge_to_the_same_state(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator
) -> None:
    operator_of.delete(DEFAULT_ROUTE)
    operator_of.edit(AKS_SUBNET, lambda b: b["properties"].pop("routeTable"))
    subnet_event = event_grid_event("Microsoft.Network/virtualNetworks/subnets/write", AKS_SUBNET)
    route_event = event_grid_event("Microsoft.Network/routeTables/routes/delete", DEFAULT_ROUTE, delete=True)
    arm.requests.clear()

    for event in (subnet_event, route_event, subnet_event, route_event):  # later event first, then duplicates
        function_app.on_resource_change(event)
        arm.advance_clock(1)

    assert sorted(arm_writes(arm)) == sorted([str(ROUTE_TABLE), str(AKS_SUBNET)])
    final = reconcile_cluster(
        converged.config.clusters[0], config=converged.config, network=converged.network, wait=False
    )
    assert final.compliant and not final.changed


def test_an_event_for_a_resource_already_gone_converges(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator
) -> None:
    ghost = ROUTE_TABLE.child("routes", "temporary")
    operator_of.put(ghost, {"properties": {"addressPrefix": "10.99.0.0/16", "nextHopType": "None"}})
    operator_of.delete(ghost)
    arm.requests.clear()
    outcome = triggers.handle_event(
        event_id="e1",
        event_type=WRITE,
        data=event_grid_event("Microsoft.Network/routeTables/routes/write", ghost).get_json(),
        rt=converged,
    )
    assert outcome.status == "handled" and outcome.results[0].compliant
    assert arm_writes(arm) == []


def test_busy_policy_makes_the_invocation_fail_so_event_grid_retries(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator
) -> None:
    arm.store.lro_seconds = 120
    operator_of.network.put(
        OWNED_GROUP,
        _without_rule(operator_of, "aks-demo-ntp-udp-123"),
        etag=operator_of.network.get(OWNED_GROUP).etag,
        wait=False,
    )
    event = event_grid_event("Microsoft.Network/firewallPolicies/ruleCollectionGroups/write", OWNED_GROUP)

    with pytest.raises(triggers.RetryLater, match="busy"):
        function_app.on_resource_change(event)
    assert not [p for p in arm_writes(arm) if p.lower() == str(OWNED_GROUP).lower() and "ntp" in p]

    arm.advance_clock(121)  # the operator's write finishes; Event Grid redelivers
    function_app.on_resource_change(event)
    assert "aks-demo-ntp-udp-123" in {r["name"] for r in owned_rules(operator_of.network, classic=False)}


def test_arm_unreachable_makes_the_invocation_fail_for_a_retry(arm: LocalArm, converged: triggers.Runtime) -> None:
    arm.faults.add(_fault("unavailable", times=50))
    with pytest.raises(triggers.RetryLater, match="unreachable"):
        triggers.handle_event(
            event_id="e1",
            event_type=WRITE,
            data=event_grid_event("Microsoft.Network/routeTables/write", ROUTE_TABLE).get_json(),
            rt=converged,
        )
    arm.faults.clear()


def _fault(kind: str, *, times: int) -> Any:
    from localarm.faults import Fault

    return Fault(kind=kind, times=times, retry_after=0)


def _without_rule(operator: Operator, name: str) -> dict[str, Any]:
    body = operator.body(OWNED_GROUP)
    for collection in body["properties"]["ruleCollections"]:
        collection["rules"] = [r for r in collection["rules"] if r["name"] != name]
    return body


# ------------------------------------------------------------------------------ malformed


MALFORMED: list[tuple[str, Any]] = [
    ("data is null", None),
    ("data is a string", "not json at all"),
    ("data is a list", [1, 2, 3]),
    ("no operationName", {"resourceUri": str(ROUTE_TABLE)}),
    ("operationName is a number", {"operationName": 7, "resourceUri": str(ROUTE_TABLE)}),
    ("no resourceUri", {"operationName": "Microsoft.Network/routeTables/write"}),
    (
        "resourceUri is a dict",
        {"operationName": "Microsoft.Network/routeTables/write", "resourceUri": {"id": "x"}},
    ),
    (
        "resourceUri does not parse",
        {"operationName": "Microsoft.Network/routeTables/write", "resourceUri": "/subscriptions/nope"},
    ),
    (
        "subscription is not a GUID",
        {
            "operationName": "Microsoft.Network/routeTables/write",
            "resourceUri": "/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt",
        },
    ),
    (
        "claims of the wrong type",
        {
            "operationName": "Microsoft.Network/routeTables/routes/write",
            "resourceUri": "/subscriptions/"
            + SUB
            + "/resourceGroups/rg/providers/Microsoft.Network/routeTables/x/routes/y",
            "claims": ["appid"],
        },
    ),
]


@pytest.mark.parametrize(("case", "data"), MALFORMED, ids=[case for case, _ in MALFORMED])
def test_malformed_events_are_logged_and_dropped_without_raising_or_writing(
    arm: LocalArm, converged: triggers.Runtime, case: str, data: Any, caplog: pytest.LogCaptureFixture
) -> None:
    event = func.EventGridEvent(
        id="bad-1", data=data, topic=None, subject=None, event_type=WRITE, event_time=None, data_version=None
    )
    with caplog.at_level(logging.DEBUG, logger="remediation"):
        function_app.on_resource_change(event)
    assert arm_writes(arm) == []
    if case != "claims of the wrong type":
        assert any("bad-1" in r.getMessage() for r in caplog.records)


def test_an_event_with_no_type_is_dropped_without_an_arm_call(arm: LocalArm, converged: triggers.Runtime) -> None:
    event = func.EventGridEvent(
        id="x", data={}, topic=None, subject=None, event_type=None, event_time=None, data_version=None
    )
    function_app.on_resource_change(event)
    assert arm.requests == []


# --------------------------------------------------------------------------------- races


def test_two_invocations_racing_on_one_policy_keep_both_fixes_and_every_foreign_rule(
    arm: LocalArm, converged: triggers.Runtime, operator_of: Operator
) -> None:
    foreign_before = operator_of.body(PLATFORM_GROUP)["properties"]["ruleCollections"]
    body = operator_of.body(OWNED_GROUP)
    for collection in body["properties"]["ruleCollections"]:
        collection["rules"] = [
            r for r in collection["rules"] if r["name"] not in ("aks-demo-ntp-udp-123", "aks-demo-aks-fqdn-tag")
        ]
    operator_of.put(OWNED_GROUP, body)
    events = [
        event_grid_event("Microsoft.Network/firewallPolicies/ruleCollectionGroups/write", OWNED_GROUP),
        event_grid_event("Microsoft.Network/firewallPolicies/write", POLICY),
    ]
    errors: list[BaseException] = []

    def deliver(event: func.EventGridEvent) -> None:
        for _ in range(10):  # Event Grid redelivers a failed delivery
            try:
                function_app.on_resource_change(event)
                return
            except triggers.RetryLater:
                arm.advance_clock(1)
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)
                return

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    names = {
        r["name"]
        for c in ("aks-egress-net", "aks-egress-app")
        for r in owned_rules(operator_of.network, classic=False, collection=c)
    }
    assert {"aks-demo-ntp-udp-123", "aks-demo-aks-fqdn-tag"} <= names
    assert operator_of.body(PLATFORM_GROUP)["properties"]["ruleCollections"] == foreign_before


# ---------------------------------------------------------------------------------- sweep


def test_nightly_sweep_reconciles_every_cluster_and_survives_one_failing(
    arm: LocalArm, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import yaml

    path = tmp_path / "remediation.yaml"
    good = {
        "name": "aks-demo",
        "location": "westeurope",
        "firewall": str(FIREWALL),
        "routeTable": str(ROUTE_TABLE),
        "subnets": [str(AKS_SUBNET)],
    }
    broken = dict(
        good,
        name="aks-gone",
        firewall=str(demo_id("rg-hub", "azureFirewalls", "fw-gone")),
        routeTable=str(demo_id("rg-x", "routeTables", "rt-gone")),
        subnets=[f"{demo_id('rg-x', 'virtualNetworks', 'vnet-gone')}/subnets/aks-nodes"],
    )
    path.write_text(yaml.safe_dump({"mode": "enforce", "clusters": [broken, good]}))
    from remediation.config import load_config

    rt = make_runtime(load_config(path), arm)
    triggers.reset_runtime(rt)
    sweeps: list[Any] = []
    rt.on_sweep.append(sweeps.append)
    try:
        with caplog.at_level(logging.INFO, logger="remediation"):
            function_app.nightly_sweep(TimerRequest(past_due=False))
    finally:
        triggers.reset_runtime(None)

    (sweep,) = sweeps
    assert sweep.checked == 2 and sweep.fixed == 1 and sweep.failed == 1
    assert sweep.results[0].cluster == "aks-gone"  # worst first
    summary = next(r for r in caplog.records if hasattr(r, "remediation_sweep"))
    assert "2 cluster(s): 0 compliant, 1 fixed, 1 failed" in summary.getMessage()
    assert set(summary.remediation_sweep["durations"]) == {"aks-demo", "aks-gone"}


# ------------------------------------------------------------------------------- telling


@pytest.fixture
def env_runtime(arm: LocalArm, config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The worker's runtime built from app settings, as in Azure."""
    monkeypatch.setenv("REMEDIATION_CONFIG", str(config.source))
    monkeypatch.setenv("ARM_ENDPOINT", arm.endpoint)
    monkeypatch.setenv("ARM_CA_BUNDLE", str(arm.ca_bundle))
    monkeypatch.setenv("ARM_POLLING_INTERVAL", "0")
    monkeypatch.setenv("REMEDIATOR_PRINCIPAL_ID", REMEDIATOR)
    triggers.reset_runtime(None)
    yield monkeypatch
    triggers.reset_runtime(None)


def test_a_remediation_posts_a_card_and_the_sweep_a_digest_to_teams(
    arm: LocalArm, env_runtime: pytest.MonkeyPatch, operator_of: Operator
) -> None:
    from demo.teams_receiver import TeamsReceiver

    with TeamsReceiver() as teams:
        env_runtime.setenv("TEAMS_WEBHOOK_URL", teams.url)
        function_app.nightly_sweep(TimerRequest(past_due=False))
        arm.advance_clock(1)
        operator_of.delete(DEFAULT_ROUTE)
        function_app.on_resource_change(
            event_grid_event("Microsoft.Network/routeTables/routes/delete", DEFAULT_ROUTE, delete=True)
        )
        cards = [card for message in teams.received for card in message.cards]

    digest, restored = cards  # the sweep's clusters post no cards of their own: the digest covers them
    assert "Nightly sweep" in json.dumps(digest)
    text = json.dumps(restored)
    assert "Restored" in text and "missing-route" in text and "dana@contoso.example" in text


def test_a_bad_teams_setting_turns_alerts_off_but_never_stops_remediation(
    arm: LocalArm, env_runtime: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env_runtime.setenv("TEAMS_WEBHOOK_URL", "not a url")
    with caplog.at_level(logging.ERROR, logger="remediation"):
        function_app.nightly_sweep(TimerRequest(past_due=False))
    assert any("TeamsAlerts is off" in r.getMessage() for r in caplog.records)
    assert [r for r in arm.requests if r["method"] == "PUT"]  # the sweep still restored the baseline


# ---------------------------------------------------------------------- one list of operations


def test_every_watched_operation_reaches_the_dispatcher(arm: LocalArm, converged: triggers.Runtime) -> None:
    """The list infra/ filters Event Grid on is exactly what the handler acts on: none is ignored."""
    from remediation.events import watched

    examples = {
        "microsoft.network/azurefirewalls": FIREWALL,
        "microsoft.network/firewallpolicies": POLICY,
        "microsoft.network/firewallpolicies/rulecollectiongroups": OWNED_GROUP,
        "microsoft.network/routetables": ROUTE_TABLE,
        "microsoft.network/routetables/routes": DEFAULT_ROUTE,
        "microsoft.network/virtualnetworks": VNET_SPOKE,
        "microsoft.network/virtualnetworks/subnets": AKS_SUBNET,
        "microsoft.network/loadbalancers": demo_id("MC_rg-aks_aks-demo_westeurope", "loadBalancers", "kubernetes"),
        "microsoft.network/publicipaddresses": demo_id(
            "MC_rg-aks_aks-demo_westeurope", "publicIPAddresses", "kubernetes-a7c3e91f04b2"
        ),
        "microsoft.network/ipgroups": demo_id("rg-hub", "ipGroups", "ipg-aks-nodes"),
        "microsoft.containerservice/managedclusters": AKS_CLUSTER,
        "microsoft.containerservice/managedclusters/agentpools": AKS_CLUSTER.child("agentPools", "nodepool1"),
    }
    _, operations = watched()
    assert len(operations) <= 25  # Event Grid's limit on advanced filter values
    for operation in sorted(operations):
        kind, verb = operation.rsplit("/", 1)
        event_type = DELETE if verb == "delete" else WRITE
        outcome = triggers.handle_event(
            event_id="e",
            event_type=event_type,
            data=event_grid_event(operation, examples[kind]).get_json(),
            rt=converged,
        )
        assert outcome.status in ("handled", "out-of-scope"), (operation, outcome)


def test_the_watched_event_types_are_the_sdk_system_event_names() -> None:
    from azure.eventgrid import SystemEventNames

    from remediation.events import watched

    event_types, _ = watched()
    assert event_types == {
        SystemEventNames.ResourceWriteSuccessEventName.value,
        SystemEventNames.ResourceWriteFailureEventName.value,
        SystemEventNames.ResourceDeleteSuccessEventName.value,
    }


def test_load_balancer_and_public_ip_events_reach_clusters_that_publish_services(arm: LocalArm, tmp_path: Path) -> None:
    node_group = f"/subscriptions/{SUB}/resourceGroups/MC_rg-aks_aks-demo_westeurope"
    rt = make_runtime(write_config(tmp_path, inbound={"nodeResourceGroup": node_group}), arm)
    load_balancer = demo_id("MC_rg-aks_aks-demo_westeurope", "loadBalancers", "kubernetes")
    firewall_ip = demo_id("rg-hub", "publicIPAddresses", "pip-fw-hub-2")
    for operation, resource in (
        ("Microsoft.Network/loadBalancers/write", load_balancer),
        (
            "Microsoft.Network/publicIPAddresses/delete",
            demo_id("MC_rg-aks_aks-demo_westeurope", "publicIPAddresses", "gone"),
        ),
        ("Microsoft.Network/publicIPAddresses/write", firewall_ip),  # the firewall's own DNAT address
    ):
        outcome = triggers.handle_event(
            event_id="e", event_type=WRITE, data=event_grid_event(operation, resource).get_json(), rt=rt
        )
        assert outcome.status == "handled", operation
        arm.advance_clock(1)
    # the firewall's public IPs are known from the first reconcile, so an event for one of them concerns the cluster
    assert firewall_ip.key in rt.topology.public_ips_of("aks-demo")


def test_an_ip_group_event_reaches_the_clusters_whose_firewall_rules_name_the_group(
    arm: LocalArm, rt: triggers.Runtime, operator_of: Operator
) -> None:
    group = demo_id("rg-hub", "ipGroups", "ipg-aks-nodes")
    other = demo_id("rg-hub", "ipGroups", "ipg-elsewhere")
    for each in (group, other):
        operator_of.put(each, {"location": "westeurope", "properties": {"ipAddresses": ["10.240.0.0/16"]}})
    rule = {
        "ruleType": "NetworkRule",
        "name": "from-group",
        "ipProtocols": ["TCP"],
        "sourceIpGroups": [str(group)],
        "destinationAddresses": ["192.168.0.1"],
        "destinationPorts": ["22"],
    }
    collection = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "admin",
        "priority": 100,
        "action": {"type": "Allow"},
        "rules": [rule],
    }
    operator_of.put(
        POLICY.child("ruleCollectionGroups", "admin"),
        {"properties": {"priority": 500, "ruleCollections": [collection]}},
    )

    def event(resource: ResourceId) -> triggers.EventOutcome:
        data = event_grid_event("Microsoft.Network/ipGroups/write", resource).get_json()
        return triggers.handle_event(event_id="e", event_type=WRITE, data=data, rt=rt)

    assert event(group).status == "handled"
    arm.requests.clear()
    assert event(other).status == "out-of-scope"
    assert arm.requests == []  # learned from the first reconcile: no read to route the second event
