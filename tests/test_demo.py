"""``make demo`` keeps working: it runs end to end and exits 0 only when the landing zone converged."""

from __future__ import annotations

import subprocess
import sys

from remediation.config import load_config
from tests.conftest import ROOT


def test_demo_runs_end_to_end_and_converges() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo"], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for story in (
        "deletes the baseline rule",
        "points 0.0.0.0/0 at Internet",
        "deletes the whole rule collection group",
        "adds node pool `batch` on a new subnet",
        "detaches the route table",
        "gets a new LoadBalancer service",
        "loses the service again",
    ):
        assert story in out
    steps = out.split("\n\n")
    sweep = next(s for s in steps if "nightly sweep runs once" in s)
    assert "learned routeTable" in sweep and "rt-aks" in sweep  # the configuration names the cluster only
    pool = next(s for s in steps if "adds node pool `batch`" in s)
    assert "agentPools/write" in pool and "subnet-not-associated" in pool
    assert "associate route table rt-aks" in pool and "aks-egress-net: restore" in pool
    service = next(s for s in steps if "gets a new LoadBalancer service" in s)
    assert "missing-dnat" in service and "aks-egress-dnat: add" in service
    gone = next(s for s in steps if "loses the service again" in s)
    assert "stale-dnat" in gone and "remove stale" in gone
    assert "compliant" in out.split("Is everything back?")[1]


def test_the_example_configuration_is_valid() -> None:
    config = load_config(ROOT / "remediation.example.yaml")
    assert config.mode == "audit" and config.clusters[0].name == "aks-prod-weu"
