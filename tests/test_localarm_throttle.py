"""localarm throttles as Azure Resource Manager does, when asked to: token buckets per principal and
subscription, one per operation class, refilled on localarm's clock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from localarm.server import LocalArm
from remediation.network import AzureNetwork, local_token
from tests.conftest import OPERATOR, ROUTE_TABLE, SUB, make_network
from tests.test_localarm import API, TESTER, raw, wait_for

READS = "x-ms-ratelimit-remaining-subscription-reads"
WRITES = "x-ms-ratelimit-remaining-subscription-writes"
DELETES = "x-ms-ratelimit-remaining-subscription-deletes"
GLOBAL_READS = "x-ms-ratelimit-remaining-subscription-global-reads"
ROUTE = ROUTE_TABLE.child("routes", "to-fw")
ROUTE_BODY = {
    "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.4"}
}


def control(arm: LocalArm, method: str, body: Any = None) -> requests.Response:
    return raw(arm, method, "/_localarm/throttle", body, api_version=None)


def throttle(arm: LocalArm, **settings: Any) -> None:
    response = control(arm, "POST", {"enabled": True, **settings})
    assert response.status_code == 200, response.text


def slow(capacity: int, refill: float = 0.1) -> dict[str, float]:
    """A bucket that refills too slowly for the test's own running time to matter: the clock decides."""
    return {"capacity": capacity, "refillPerSecond": refill}


def get_as(arm: LocalArm, principal: str, path: str = str(ROUTE_TABLE)) -> requests.Response:
    token = local_token({"oid": principal})
    return requests.get(
        f"{arm.endpoint}{path}?api-version={API}",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(arm.ca_bundle),
        timeout=10,
    )


@pytest.fixture
def client(arm: LocalArm) -> AzureNetwork:
    return make_network(arm, principal_id=TESTER)


# --------------------------------------------------------------------- on and off


def test_throttling_is_off_by_default(arm: LocalArm) -> None:
    responses = [raw(arm, "GET", str(ROUTE_TABLE)) for _ in range(3)]
    responses.append(raw(arm, "PUT", str(ROUTE), ROUTE_BODY))

    assert all(not any(h.lower().startswith("x-ms-ratelimit") for h in r.headers) for r in responses)
    assert control(arm, "GET").json()["enabled"] is False


def test_the_defaults_are_microsofts_documented_limits(arm: LocalArm) -> None:
    throttle(arm)

    settings = control(arm, "GET").json()
    assert settings["limits"] == {
        "reads": {"capacity": 250, "refillPerSecond": 25},
        "writes": {"capacity": 200, "refillPerSecond": 10},
        "deletes": {"capacity": 200, "refillPerSecond": 10},
    }
    assert settings["globalMultiplier"] == 15
    first = raw(arm, "GET", str(ROUTE_TABLE))
    # What a real first read answers: 249 left of the caller's 250, 3749 of the subscription's 3750.
    assert (first.headers[READS], first.headers[GLOBAL_READS]) == ("249", "3749")


def test_reset_and_delete_put_the_server_back_to_its_start(arm: LocalArm) -> None:
    throttle(arm, reads=slow(1))
    raw(arm, "POST", "/_localarm/reset", {}, api_version=None)
    assert control(arm, "GET").json()["enabled"] is False

    throttle(arm, reads=slow(1))
    assert control(arm, "DELETE").status_code == 204
    settings = control(arm, "GET").json()
    assert settings["enabled"] is False and settings["limits"]["reads"]["capacity"] == 250


@pytest.mark.parametrize(
    "settings",
    [
        {"enabled": "yes"},
        {"reads": {"capacity": 0, "refillPerSecond": 1}},
        {"reads": {"capacity": 5, "refillPerSecond": 0}},
        {"reads": {"capacity": 5}},
        {"writes": [200, 10]},
        {"globalMultiplier": 0.5},
        {"burst": 10},
        ["enabled"],
    ],
)
def test_malformed_settings_are_refused_and_change_nothing(arm: LocalArm, settings: Any) -> None:
    response = control(arm, "POST", settings)

    assert response.status_code == 400 and response.json()["error"]["message"]
    assert control(arm, "GET").json()["enabled"] is False


# ------------------------------------------------------------------- the buckets


def test_each_operation_class_draws_on_its_own_bucket(arm: LocalArm) -> None:
    throttle(arm, reads=slow(5), writes=slow(5), deletes=slow(5))

    read = raw(arm, "GET", str(ROUTE_TABLE))
    write = raw(arm, "PUT", str(ROUTE), ROUTE_BODY)
    poll = requests.get(
        write.headers["Azure-AsyncOperation"],
        headers={"Authorization": "Bearer " + local_token({"oid": OPERATOR})},
        verify=str(arm.ca_bundle),
        timeout=10,
    )
    arm.advance_clock(1)  # the route's operation completes (0.1 of a token flows back: still 3 reads left)
    delete = raw(arm, "DELETE", str(ROUTE))

    assert (read.headers[READS], write.headers[WRITES], delete.headers[DELETES]) == ("4", "4", "4")
    assert poll.headers[READS] == "3"  # operation-status polls are reads
    assert WRITES not in read.headers and READS not in write.headers and READS not in delete.headers


def test_an_empty_bucket_answers_429_with_retry_after_until_the_clock_refills_it(arm: LocalArm) -> None:
    throttle(arm, reads=slow(3))

    drained = [raw(arm, "GET", str(ROUTE_TABLE)) for _ in range(3)]
    refused = raw(arm, "GET", str(ROUTE_TABLE))

    assert [r.status_code for r in drained] == [200, 200, 200]
    assert [r.headers[READS] for r in drained] == ["2", "1", "0"]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"  # one token at 0.1 a second
    assert refused.headers[READS] == "0"
    error = refused.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"
    assert f"'read' requests for subscription '{SUB}' actor '{OPERATOR}'" in error["message"]
    assert "after '10' seconds" in error["message"]

    arm.advance_clock(10)
    assert raw(arm, "GET", str(ROUTE_TABLE)).status_code == 200
    assert raw(arm, "GET", str(ROUTE_TABLE)).status_code == 429


def test_buckets_refill_with_the_clock_but_never_beyond_their_capacity(arm: LocalArm) -> None:
    throttle(arm, reads=slow(4, refill=1))
    for _ in range(4):
        raw(arm, "GET", str(ROUTE_TABLE))

    arm.advance_clock(2)
    after_two_seconds = [raw(arm, "GET", str(ROUTE_TABLE)).status_code for _ in range(3)]
    arm.advance_clock(3600)
    after_an_hour = raw(arm, "GET", str(ROUTE_TABLE))

    assert after_two_seconds == [200, 200, 429]
    assert after_an_hour.headers[READS] == "3"


def test_a_throttled_write_changes_nothing(arm: LocalArm) -> None:
    throttle(arm, writes=slow(1))
    raw(arm, "PUT", str(ROUTE), ROUTE_BODY)
    arm.advance_clock(1)
    before = raw(arm, "GET", str(ROUTE)).json()
    events = len(arm.events)

    refused = raw(
        arm, "PUT", str(ROUTE), {**ROUTE_BODY, "properties": {**ROUTE_BODY["properties"], "nextHopType": "None"}}
    )

    assert refused.status_code == 429
    assert raw(arm, "GET", str(ROUTE)).json() == before
    assert len(arm.events) == events


# -------------------------------------------------------------- who is counted


def test_every_principal_has_buckets_of_its_own(arm: LocalArm) -> None:
    throttle(arm, reads=slow(2))
    for _ in range(3):
        get_as(arm, OPERATOR)

    other = get_as(arm, TESTER)

    assert get_as(arm, OPERATOR).status_code == 429
    assert other.status_code == 200 and other.headers[READS] == "1"
    levels = {(b["principal"], b["operations"]): b["remaining"] for b in control(arm, "GET").json()["buckets"]}
    assert levels == {(OPERATOR, "reads"): 0, (TESTER, "reads"): 1}


def test_the_subscription_bucket_throttles_all_principals_together(arm: LocalArm) -> None:
    throttle(arm, reads=slow(2), globalMultiplier=1)
    get_as(arm, OPERATOR)
    get_as(arm, OPERATOR)

    refused = get_as(arm, TESTER)

    assert refused.status_code == 429
    assert (refused.headers[READS], refused.headers[GLOBAL_READS]) == ("2", "0")


def test_429s_are_logged_and_counted_per_principal(arm: LocalArm) -> None:
    throttle(arm, reads=slow(1))
    for _ in range(3):
        get_as(arm, OPERATOR)
    get_as(arm, TESTER)

    assert control(arm, "GET").json()["throttled"] == {OPERATOR: 2}
    refused = [r for r in arm.requests if r["status"] == 429]
    assert len(refused) == 2
    assert all(r["caller"] == OPERATOR and r["actions"] == ["Microsoft.Network/routeTables/read"] for r in refused)


# ------------------------------------------------------------------ the SDK


def test_the_sdk_waits_out_retry_after_and_the_read_succeeds(arm: LocalArm, client: AzureNetwork) -> None:
    # One token a second: the SDK's one-second wait (Retry-After: 1) is what brings the token back.
    throttle(arm, reads={"capacity": 1, "refillPerSecond": 1})

    client.get(ROUTE_TABLE)
    assert client.get(ROUTE_TABLE).id == ROUTE_TABLE

    statuses = [r["status"] for r in arm.requests if r["path"].endswith("/rt-aks")]
    assert statuses == [200, 429, 200]


# --------------------------------------------------------------------- the CLI


def test_the_cli_flag_turns_throttling_on(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "localarm", "serve", "--scenario", "aks-demo", "--throttle", "--ready-file", str(ready)],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(ready.exists, timeout=20)
        info = json.loads(ready.read_text())
        response = requests.get(
            f"{info['endpoint']}{ROUTE_TABLE}?api-version={API}",
            headers={"Authorization": "Bearer " + local_token({"oid": OPERATOR})},
            verify=info["caBundle"],
            timeout=10,
        )
        assert response.status_code == 200 and response.headers[READS] == "249"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
