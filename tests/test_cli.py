"""``python -m remediation check|enforce``: tables, JSON, exit codes, and clear errors."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localarm.server import LocalArm
from remediation.cli import main
from tests.conftest import ROOT
from tests.landing_zone import write_config


@pytest.fixture
def env(arm: LocalArm, monkeypatch: pytest.MonkeyPatch) -> LocalArm:
    monkeypatch.setenv("ARM_ENDPOINT", arm.endpoint)
    monkeypatch.setenv("ARM_CA_BUNDLE", str(arm.ca_bundle))
    monkeypatch.setenv("ARM_POLLING_INTERVAL", "0")
    return arm


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(list(argv), out=out, err=err)
    except SystemExit as exit_:  # argparse mistakes
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_check_reports_drift_with_exit_3_and_writes_nothing(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path)
    code, out, _ = cli("check", "--config", str(tmp_path / "remediation.yaml"))
    assert code == 3
    assert "missing-rule" in out and "missing-route" in out and "would fix" in out
    assert not [r for r in env.requests if r["method"] == "PUT"]


def test_enforce_restores_then_check_exits_0(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path)
    config = str(tmp_path / "remediation.yaml")
    code, out, _ = cli("enforce", "--config", config)
    assert code == 0, out
    assert "restored" in out and "[applied]" in out
    code, out, _ = cli("check", "--config", config)
    assert code == 0
    assert "the baseline is in place" in out


def test_json_document_lists_clusters_findings_actions_and_arm_calls(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path)
    code, out, _ = cli("enforce", "--config", str(tmp_path / "remediation.yaml"), "--json", "--no-wait")
    document = json.loads(out)
    (cluster,) = document["clusters"]
    assert code == 0
    assert cluster["name"] == "aks-demo" and cluster["compliant"] is True
    assert {f["kind"] for f in cluster["findings"]} == {"missing-rule", "missing-route"}
    assert all(f["resource"].startswith("/subscriptions/") for f in cluster["findings"])
    assert {(a["method"], a["status"]) for a in cluster["actions"]} == {("PUT", "accepted")}
    assert cluster["armCalls"]["writes"] == 2 and cluster["armCalls"]["reads"] >= 4


def test_audit_mode_in_the_file_makes_enforce_write_nothing(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path, mode="audit")
    code, out, _ = cli("enforce", "--config", str(tmp_path / "remediation.yaml"))
    assert code == 3
    assert "[would-apply]" in out
    assert not [r for r in env.requests if r["method"] == "PUT"]


def test_unknown_cluster_is_a_usage_error(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path)
    code, _, err = cli("check", "--config", str(tmp_path / "remediation.yaml"), "--cluster", "nope")
    assert code == 2
    assert "no cluster named 'nope'" in err and "aks-demo" in err


def test_invalid_configuration_exits_2_naming_file_and_key(env: LocalArm, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mode: enforce\nclusters:\n  - name: x\n    location: westeurope\n    firewall: not-an-id\n")
    code, out, err = cli("check", "--config", str(path))
    assert code == 2 and out == ""
    assert str(path) in err and "clusters[0].firewall" in err
    assert "Traceback" not in err
    assert env.requests == []  # nothing touched Azure


def test_missing_arguments_exit_2(env: LocalArm) -> None:
    code, _, _ = cli("check")
    assert code == 2
    code, _, _ = cli("destroy", "--config", "x")
    assert code == 2


def test_unreachable_arm_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, localarm_server: LocalArm) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ARM_ENDPOINT", f"https://127.0.0.1:{port}")
    monkeypatch.setenv("ARM_CA_BUNDLE", str(localarm_server.ca_bundle))
    write_config(tmp_path)
    code, out, _ = cli("check", "--config", str(tmp_path / "remediation.yaml"), "--json")
    assert code == 1
    (cluster,) = json.loads(out)["clusters"]
    assert cluster["findings"][0]["kind"] == "arm-unavailable"


def test_bad_arm_endpoint_setting_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARM_ENDPOINT", "http://example.com")
    write_config(tmp_path)
    code, _, err = cli("check", "--config", str(tmp_path / "remediation.yaml"))
    assert code == 2 and "ARM_ENDPOINT" in err


def test_module_entry_point_runs(env: LocalArm, tmp_path: Path) -> None:
    write_config(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediation",
            "check",
            "--config",
            str(tmp_path / "remediation.yaml"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["clusters"][0]["compliant"] is False


def test_bad_sweep_concurrency_setting_is_a_usage_error(
    env: LocalArm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_CONCURRENCY", "lots")
    write_config(tmp_path)
    code, _, err = cli("check", "--config", str(tmp_path / "remediation.yaml"))
    assert code == 2 and "SWEEP_CONCURRENCY" in err and "Traceback" not in err


# --------------------------------------------------------------- hostile configuration files


def _hostile_file(kind: str, directory: Path) -> tuple[Path, str, str]:
    """A configuration path that once hung, exhausted memory or crashed the CLI: (path, key, problem)."""
    path = directory / "remediation.yaml"
    if kind == "fifo":
        os.mkfifo(path)
        return path, "(file)", "is a FIFO (named pipe)"
    if kind == "device":
        return Path("/dev/zero"), "(file)", "is a device"
    if kind == "6 MB":
        with path.open("wb") as file:
            file.truncate(6 * 1024 * 1024)
        return path, "(file)", "larger than 5 MB"
    if kind in ("100 deep", "10000 deep"):
        depth = int(kind.split(maxsplit=1)[0])
        path.write_text("clusters: " + "[" * depth + "]" * depth + "\n")
        return path, "(file)", "nested deeper than 64 levels"
    if kind == "alias bomb":
        lines = ["l0: &l0 lol", *(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10))]
        path.write_text("\n".join(lines) + "\nclusters: *l9\n")
        return path, "(file)", "once its YAML aliases (*name) are written out"
    assert kind == "bad subnet name"
    write_config(directory)
    text = path.read_text().replace("subnets/aks-nodes", "subnets/aks%2Fnodes")
    path.write_text(text)
    return path, "clusters[0].subnets[0]", "subnet name 'aks%2Fnodes' contains '%'"


@pytest.mark.parametrize("kind", ["fifo", "device", "6 MB", "100 deep", "10000 deep", "alias bomb", "bad subnet name"])
def test_a_hostile_configuration_file_exits_2_naming_file_and_key(env: LocalArm, tmp_path: Path, kind: str) -> None:
    path, key, problem = _hostile_file(kind, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "remediation", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # a hang guard, not a speed check: the FIFO used to block the CLI forever
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert f"{path}: {key}: " in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr
    assert env.requests == []  # nothing touched Azure
