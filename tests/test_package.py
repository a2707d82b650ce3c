"""The deployable package: what `func`/`azd` would zip, filtered by .funcignore, with bytecode compiled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.package import SITE_PACKAGES, build_package

KEPT = [
    "function_app.py",
    "host.json",
    "requirements.txt",
    "remediation/__init__.py",
    "remediation/triggers.py",
    "remediation/profiles/seed-2020.yaml",
    "remediation/profiles/aks-current.yaml",
    "remediation/watched-operations.json",
]
LEFT_OUT = [
    "tests",
    "localarm",
    "infra",
    "demo",
    "docs",
    "tools",
    "build",
    ".venv",
    ".venv-infra",
    ".git",
    ".ci",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "requirements-dev.txt",
    "requirements-infra.txt",
    "local.settings.sample.json",
    "azure.yaml",
    "remediation.example.yaml",
]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "app"
    build_package(out, with_dependencies=True)
    return out


def test_the_package_holds_the_app_and_nothing_of_the_development_tree(package: Path) -> None:
    top = {p.name for p in package.iterdir()}
    for name in KEPT:
        assert (package / name).is_file(), name
    for name in LEFT_OUT:
        assert not (package / name).exists(), name
    assert top <= {"function_app.py", "host.json", "requirements.txt", "remediation", "__pycache__", ".python_packages"}


def test_every_module_of_the_app_is_compiled_to_bytecode(package: Path) -> None:
    tag = sys.implementation.cache_tag
    for source in [package / "function_app.py", *(package / "remediation").glob("*.py")]:
        assert (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").is_file(), source.name
    sdk = package / SITE_PACKAGES / "azure" / "mgmt" / "network" / "operations"
    assert (sdk / "__pycache__" / f"_operations.{tag}.pyc").is_file()


def test_the_dependencies_are_the_runtime_ones_only(package: Path) -> None:
    installed = {p.name.split("-")[0].lower() for p in (package / SITE_PACKAGES).glob("*.dist-info")}
    assert {"azure_functions", "azure_identity", "azure_mgmt_network", "azure_eventgrid", "pyyaml"} <= installed
    assert not installed & {"pytest", "hypothesis", "trustme", "mypy", "ruff", "jsonschema", "checkov", "pathspec"}


def test_the_package_indexes_on_its_own(package: Path) -> None:
    """The app imports from the package alone (no checkout, no dev venv) and lists both functions."""
    probe = "import function_app; print(sorted(f.get_function_name() for f in function_app.app.get_functions()))"
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path[:0] = ['.', '{SITE_PACKAGES}']; {probe}"],
        capture_output=True,
        text=True,
        cwd=package,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['nightly_sweep', 'on_resource_change']"
