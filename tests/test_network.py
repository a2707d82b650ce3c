"""The Azure network adapter: which credential goes where, the loopback guard, settings, lazy imports."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.rest import HttpRequest

from localarm.server import LocalArm
from remediation.network import (
    ArmUnavailable,
    AzureNetwork,
    LocalTokenCredential,
    credential_for,
    is_loopback,
)
from tests.conftest import ROOT, SUB


class RealLookingCredential:
    """Stands in for DefaultAzureCredential: anything that is not a local token."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken("a-real-token", int(time.time()) + 3600)


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("https://127.0.0.1:8443", True),
        ("https://localhost", True),
        ("https://[::1]:443", True),
        ("https://management.azure.com", False),
        ("https://127.0.0.1.nip.io", False),
    ],
)
def test_loopback_is_recognised_by_address_not_by_name_prefix(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_a_loopback_endpoint_gets_a_local_token_carrying_the_configured_identity() -> None:
    credential = credential_for("https://127.0.0.1:1", principal_id="11111111-2222-3333-4444-555555555555")
    assert isinstance(credential, LocalTokenCredential)
    assert credential.claims["oid"] == "11111111-2222-3333-4444-555555555555"


def test_an_azure_endpoint_gets_default_azure_credential() -> None:
    from azure.identity import DefaultAzureCredential

    assert isinstance(credential_for("https://management.azure.com"), DefaultAzureCredential)


def test_a_local_token_is_refused_for_a_real_endpoint_and_a_real_credential_for_loopback() -> None:
    with pytest.raises(ValueError, match="refusing"):
        AzureNetwork(endpoint="https://management.azure.com", credential=LocalTokenCredential(principal_id="x"))
    with pytest.raises(ValueError, match="refusing"):
        AzureNetwork(endpoint="https://127.0.0.1:1", credential=RealLookingCredential())  # type: ignore[arg-type]


def test_a_real_token_never_reaches_a_loopback_server(arm: LocalArm) -> None:
    """Even if a URL from a response (an LRO poll) pointed there, the guard stops the request."""
    credential = RealLookingCredential()
    network = AzureNetwork(
        endpoint="https://management.azure.com",
        credential=credential,  # type: ignore[arg-type]
        ca_bundle=str(arm.ca_bundle),  # TLS to localarm would succeed: only the guard stands in the way
    )
    client = network._client(SUB)
    firewall = (
        f"{arm.endpoint}/subscriptions/{SUB}/resourceGroups/rg-hub/providers/Microsoft.Network/azureFirewalls/fw-hub"
    )
    with pytest.raises(ArmUnavailable, match="loopback"):
        client.send_request(HttpRequest("GET", f"{firewall}?api-version=2026-03-01"))
    assert arm.requests == []


def test_a_local_token_never_leaves_the_machine(arm: LocalArm) -> None:
    network = AzureNetwork(endpoint=arm.endpoint, ca_bundle=str(arm.ca_bundle))
    client = network._client(SUB)
    with pytest.raises(ArmUnavailable, match="loopback"):
        client.send_request(HttpRequest("GET", "https://management.azure.com/subscriptions"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ARM_ENDPOINT", "http://management.azure.com", "ARM_ENDPOINT must be an https"),
        ("ARM_ENDPOINT", "management.azure.com", "ARM_ENDPOINT must be an https"),
        ("ARM_CA_BUNDLE", "/nonexistent/ca.pem", "ARM_CA_BUNDLE"),
        ("ARM_POLLING_INTERVAL", "soon", "ARM_POLLING_INTERVAL"),
        ("ARM_POLLING_INTERVAL", "-1", "ARM_POLLING_INTERVAL"),
    ],
)
def test_bad_settings_are_rejected_naming_the_setting(name: str, value: str, message: str) -> None:
    env = {"ARM_ENDPOINT": "https://127.0.0.1:1", name: value}
    with pytest.raises(ValueError, match=message):
        AzureNetwork.from_environment(env)


def test_importing_the_adapter_imports_no_sdk() -> None:
    probe = (
        "import sys, remediation.network; "
        "print([m for m in ('azure.mgmt.network', 'azure.identity', 'azure.core') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_writes_strip_read_only_properties_before_they_leave(arm: LocalArm, tmp_path: Path) -> None:
    """A body read from ARM (etag, provisioningState, computed IPs) goes back without them."""
    with LocalArm(scenario="aks-demo", traffic_dir=tmp_path, lro_seconds=0) as server:
        network = AzureNetwork(endpoint=server.endpoint, ca_bundle=str(server.ca_bundle), polling_interval=0)
        from tests.conftest import FIREWALL

        firewall = network.get(FIREWALL)
        network.put(FIREWALL, firewall.body, etag=firewall.etag, wait=False)
    import json

    (put,) = [json.loads(p.read_text()) for p in tmp_path.glob("*-put.json")]
    sent = json.dumps(put["liveRequest"]["body"])
    assert '"etag"' not in sent and "provisioningState" not in sent and "privateIPAddress" not in sent
    assert put["liveRequest"]["headers"]["if-match"] == firewall.etag
