"""Named starting states for localarm, each one JSON data file beside this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localarm.resource_types import ResourcePath, parse_path
from localarm.store import Store

_DIR = Path(__file__).parent


def available() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in _DIR.glob("*.json")))


def read(name: str) -> dict[str, Any]:
    """The scenario document: ``description``, ``subscriptionId`` and ordered ``resources``."""
    if name not in available():
        raise ValueError(f"unknown scenario {name!r}; available: {', '.join(available())}")
    document: dict[str, Any] = json.loads((_DIR / f"{name}.json").read_text())
    return document


def load(name: str, store: Store) -> None:
    """Create every resource of the named scenario in order, as already-provisioned platform state."""
    seed(read(name), store, label=name)


def seed(document: dict[str, Any], store: Store, *, label: str = "document") -> None:
    """Create every resource of a scenario document in order; a resource may only refer to earlier ones."""
    for resource in document["resources"]:
        target = parse_path(resource["id"])
        if not isinstance(target, ResourcePath) or target.is_collection:
            raise ValueError(f"scenario {label}: {resource['id']} is not a resource ID")
        store.seed(resource["id"], resource["body"], target)
