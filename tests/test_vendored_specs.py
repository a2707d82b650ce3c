"""The vendored specs are whole: every ``$ref`` resolves, and every file is the one MANIFEST.json records."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

SPECS = ROOT / "localarm" / "specs"
SPECIFICATION = SPECS / "specification"


def _refs(node: Any, *, under_examples: bool = False) -> Iterator[str]:
    """Every ``$ref`` in a spec, except the example links of ``x-ms-examples`` (examples are not vendored)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not under_examples:
                yield value
            else:
                yield from _refs(value, under_examples=under_examples or key == "x-ms-examples")
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item, under_examples=under_examples)


def _resolve(file: Path, ref: str) -> bool:
    target, _, pointer = ref.partition("#")
    path = Path(os.path.normpath(file.parent / target)) if target else file
    if not path.is_file():
        return False
    node: Any = json.loads(path.read_text())
    for part in filter(None, pointer.split("/")):
        name = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


SPEC_FILES = sorted(SPECIFICATION.rglob("*.json"))


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: str(p.relative_to(SPECIFICATION)))
def test_every_ref_in_a_vendored_spec_resolves(spec: Path) -> None:
    refs = sorted(set(_refs(json.loads(spec.read_text()))))
    dangling = [ref for ref in refs if not _resolve(spec, ref)]
    assert not dangling, f"{len(dangling)} of {len(refs)} $refs do not resolve: {dangling[:10]}"


def test_the_ref_check_can_fail(tmp_path: Path) -> None:
    spec = tmp_path / "a.json"
    spec.write_text(json.dumps({"definitions": {"A": {"$ref": "./b.json#/definitions/B"}}}))
    (tmp_path / "b.json").write_text(json.dumps({"definitions": {"C": {}}}))
    assert not _resolve(spec, "./b.json#/definitions/B")
    assert _resolve(spec, "./b.json#/definitions/C")


def _vendored(entry: dict[str, Any]) -> Path | None:
    """Where a MANIFEST entry's spec file lives in localarm/specs (entries of the shared reference included)."""
    file = entry["file"]
    if file.startswith("specification/"):
        return SPECS / file
    if "/specs/specification/" in file:
        return SPECIFICATION / file.split("/specs/specification/", 1)[1]
    return None  # examples, traffic samples and recordings stay in the shared reference


def test_every_vendored_spec_is_recorded_in_the_manifest_with_its_hash() -> None:
    manifest = json.loads((SPECS / "MANIFEST.json").read_text())
    recorded = {path: entry for entry in manifest["files"] if (path := _vendored(entry)) is not None}

    assert set(recorded) == set(SPEC_FILES)
    for path, entry in recorded.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path
        assert entry["source_repo"] == "Azure/azure-rest-api-specs" and len(entry["source_commit"]) == 40
