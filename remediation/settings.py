"""The Functions app's settings (environment variables / app settings), read and checked in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SWEEP_SCHEDULE = "0 0 2 * * *"  # 02:00 UTC; Flex Consumption supports no other time zone
DEFAULT_SWEEP_CONCURRENCY = 4
DEFAULT_EVENT_RETRY_TIMEOUT = 20.0  # Event Grid waits 30 s for the function to answer

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-A-Za-z]+$")


class SettingsError(ValueError):
    """An app setting has a value the app cannot use; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    config_path: Path
    force_audit: bool
    sweep_schedule: str
    sweep_concurrency: int
    principal_id: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``REMEDIATION_CONFIG``, ``REMEDIATION_MODE``, ``SWEEP_SCHEDULE``, ``SWEEP_CONCURRENCY``
        and ``REMEDIATOR_PRINCIPAL_ID``; a bad value raises ``SettingsError``."""
        env = os.environ if environ is None else environ
        config = Path(env.get("REMEDIATION_CONFIG") or "remediation.yaml")
        if not config.is_absolute():
            config = APP_ROOT / config
        mode = (env.get("REMEDIATION_MODE") or "").strip().lower()
        if mode not in ("", "audit"):
            raise SettingsError(
                f"REMEDIATION_MODE must be 'audit' (force audit mode) or empty (use the file's mode), got {mode!r}"
            )
        return cls(
            config_path=config,
            force_audit=mode == "audit",
            sweep_schedule=sweep_schedule(env),
            sweep_concurrency=sweep_concurrency(env),
            principal_id=_principal(env.get("REMEDIATOR_PRINCIPAL_ID") or ""),
        )


def sweep_schedule(environ: Mapping[str, str] | None = None) -> str:
    """``SWEEP_SCHEDULE`` as an NCRONTAB expression (six fields, UTC), default ``0 0 2 * * *``."""
    env = os.environ if environ is None else environ
    schedule = (env.get("SWEEP_SCHEDULE") or DEFAULT_SWEEP_SCHEDULE).strip()
    fields = schedule.split()
    if len(fields) not in (5, 6) or not all(_NCRONTAB_FIELD.match(f) for f in fields):
        raise SettingsError(
            f"SWEEP_SCHEDULE must be an NCRONTAB expression such as '{DEFAULT_SWEEP_SCHEDULE}' "
            f"(second minute hour day month day-of-week, UTC), got {schedule!r}"
        )
    return schedule


def sweep_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """``SWEEP_CONCURRENCY``: clusters reconciled at once (1..32), default 4."""
    env = os.environ if environ is None else environ
    text = env.get("SWEEP_CONCURRENCY") or ""
    if not text:
        return DEFAULT_SWEEP_CONCURRENCY
    if not text.strip().isdigit() or not 1 <= int(text) <= 32:
        raise SettingsError(f"SWEEP_CONCURRENCY must be a whole number from 1 to 32, got {text!r}")
    return int(text)


def _principal(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if not _GUID.match(text):
        raise SettingsError(
            f"REMEDIATOR_PRINCIPAL_ID must be the identity's object (principal) ID, a GUID, got {text!r}"
        )
    return text.lower()
