"""Every ARM request the suite made, and every answer localarm gave, conforms to Microsoft's OpenAPI specs.

Runs Microsoft's ``oav validate-traffic`` once, after all other tests, over ``build/traffic``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, TRAFFIC_DIR

OAV = ROOT / "tests" / "node" / "node_modules" / ".bin" / "oav"
SPECS = ROOT / "localarm" / "specs" / "specification"

# Operations the product and localarm's own tests must exercise; a report covering fewer means the
# traffic (or the spec loading: oav exits 0 when a spec fails to load) is not what we think.
REQUIRED_OPERATIONS = {
    "AzureFirewalls_Get",
    "AzureFirewalls_CreateOrUpdate",
    "FirewallPolicies_Get",
    "FirewallPolicyRuleCollectionGroups_CreateOrUpdate",
    "FirewallPolicyRuleCollectionGroups_Get",
    "FirewallPolicyRuleCollectionGroups_List",
    "RouteTables_Get",
    "RouteTables_CreateOrUpdate",
    "Routes_CreateOrUpdate",
    "Routes_Get",
    "Routes_Delete",
    "Subnets_Get",
    "Subnets_CreateOrUpdate",
    "LoadBalancers_CreateOrUpdate",
    "IpGroups_CreateOrUpdate",
    "IpGroups_Get",
    "IpGroups_ListByResourceGroup",
    "IpGroups_Delete",
    # Microsoft.ContainerService (tests/test_localarm_containerservice.py)
    "ManagedClusters_Get",
    "ManagedClusters_CreateOrUpdate",
    "ManagedClusters_ListByResourceGroup",
    "ManagedClusters_Delete",
    "AgentPools_Get",
    "AgentPools_CreateOrUpdate",
    "AgentPools_List",
    "AgentPools_Delete",
}


def _run_oav(traffic: Path, report: Path, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(OAV),
            "validate-traffic",
            str(traffic),
            str(SPECS),
            "-l",
            "error",
            "-r",
            "",
            "--jsonReport",
            str(report),
            "-f",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.after_all_traffic
def test_suite_traffic_passes_oav_validate_traffic(tmp_path: Path) -> None:
    files = sorted(TRAFFIC_DIR.glob("*.json"))
    assert files, "no ARM traffic was recorded: run the whole suite (make test), not this test alone"
    report_path, log_path = tmp_path / "report.json", tmp_path / "oav.log"

    result = _run_oav(TRAFFIC_DIR, report_path, log_path)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(report_path.read_text())
    assert report["errors"] == [], json.dumps(report["errors"][:5], indent=1)
    assert report["failedOperations"] == 0
    covered = {op for entry in report["passedOperationsList"] for op in entry["operationIds"]}
    missing = REQUIRED_OPERATIONS - covered
    assert not missing, f"traffic covers no {sorted(missing)}; covered: {sorted(covered)}"


@pytest.mark.after_all_traffic
def test_oav_check_would_catch_a_bad_request(tmp_path: Path) -> None:
    """The check above can fail: oav flags a read-only property sent in a request."""
    sample = json.loads((ROOT / "tests" / "fixtures" / "traffic-samples" / "routes_create.json").read_text())
    sample["liveRequest"]["body"]["properties"]["nextHopType"] = 42
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bad.json").write_text(json.dumps(sample))
    shutil.copy(ROOT / "tests" / "fixtures" / "traffic-samples" / "routes_get.json", bad / "good.json")

    _run_oav(bad, tmp_path / "report.json", tmp_path / "oav.log")

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["errors"] or report["failedOperations"] > 0
