"""Microsoft Teams alerts: Adaptive Cards built as data, posted through a Teams Workflows webhook.

Cards are pure functions of what a reconcile found and did: ``remediation_card`` for one cluster (with the
ARM change that caused it, if any), ``digest_card`` for the nightly sweep, ``teams_message`` for the
envelope a Workflows webhook ("When a Teams webhook request is received") accepts, cut to fit under Teams'
28 KB limit. ``TeamsAlerts`` is the thin edge that posts them: a sink for ``Runtime.on_result`` and
``Runtime.on_sweep`` that never raises.

Posting rules: at most four requests per second per process; 429 and 5xx are retried honouring
``Retry-After`` with exponential backoff otherwise, within a budget per message (10 s: the Event Grid
trigger has 30 s in all); anything else, or a spent budget, is logged as a warning and dropped. The
webhook URL is a secret (it carries the flow's signature): it appears in no log, exception or card. The
standard library's ``urllib`` posts the message because it logs nothing (urllib3 logs request paths at
DEBUG).

Sweep results reach ``on_result`` with ``change=None`` like command-line ones; they are told apart by
``result.trigger == "sweep"`` and are left to the one digest card ``on_sweep`` posts.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from http.client import HTTPException
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from remediation.config import Mode
from remediation.deadline import current as deadline_of_invocation
from remediation.events import ResourceChange
from remediation.findings import ActionStatus, FindingKind, sorted_findings
from remediation.log_text import printable
from remediation.network import is_loopback
from remediation.reconcile import ClusterResult, SweepResult
from remediation.resource_id import InvalidResourceId, ResourceId
from remediation.settings import SettingsError

Card = dict[str, Any]

log = logging.getLogger("remediation.alerts")

CARD_VERSION = "1.5"  # the highest version Teams renders
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Teams rejects messages over 28 KB; keep room for what the Workflows flow wraps around the card.
MAX_MESSAGE_BYTES = 26 * 1024
MAX_LISTED = 40  # items per list on a card, for reading; the byte limit may cut further
MAX_TEXT = 400  # characters of one finding's or action's text
MAX_LINKS = 3
PORTAL = "https://portal.azure.com/#resource"
# What the remediator leaves to a person because something it does not own is in the way: a port another
# rule takes, a Deny that comes first, a route around the firewall (deleted only on opt-in), an AKS cluster
# whose outbound type sends egress around its route table.
CONFLICT_KINDS = frozenset(
    {FindingKind.DNAT_CONFLICT, FindingKind.SHADOWED_RULE, FindingKind.EGRESS_BYPASS, FindingKind.OUTBOUND_TYPE}
)
POST_BUDGET_SECONDS = 10.0
ATTEMPT_TIMEOUT_SECONDS = 5.0
BACKOFF_SECONDS = 0.5
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SWEEP_TRIGGER = "sweep"

# The lists ``teams_message`` may cut; their last fact may be "+N more".
FINDINGS_LIST, ACTIONS_LIST, CLUSTERS_LIST = "findings", "actions", "clusters"
_LISTS = frozenset({FINDINGS_LIST, ACTIONS_LIST, CLUSTERS_LIST})
_MORE = re.compile(r"^\+(\d+) more$")


class Outcome(StrEnum):
    """What a reconcile amounts to, for a person reading the channel."""

    RESTORED = "restored"
    WOULD_RESTORE = "would-restore"
    BUSY = "busy"
    FAILED = "failed"
    CONFLICT = "conflict"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Outcome.RESTORED: "Restored",
    Outcome.WOULD_RESTORE: "Would restore (audit mode)",
    Outcome.BUSY: "Busy, will retry",
    Outcome.FAILED: "Failed",
    Outcome.CONFLICT: "Conflict",
}
_STYLES = {
    Outcome.RESTORED: "good",
    Outcome.WOULD_RESTORE: "accent",
    Outcome.BUSY: "warning",
    Outcome.FAILED: "attention",
    Outcome.CONFLICT: "attention",
}
# Worst first, for the digest.
_SEVERITY = [Outcome.CONFLICT, Outcome.FAILED, Outcome.BUSY, Outcome.WOULD_RESTORE, Outcome.RESTORED]
_TRIGGERS = {"event": "ARM change event", "sweep": "nightly sweep", "check": "command line", "enforce": "command line"}


def outcome_of(result: ClusterResult) -> Outcome | None:
    """The outcome of one reconcile; ``None`` when it found nothing to tell (no card, no alert)."""
    if not result.actions and not any(f.blocking for f in result.findings):
        return None
    outstanding = result.outstanding
    if any(f.kind in CONFLICT_KINDS for f in outstanding):
        return Outcome.CONFLICT
    if result.failed:
        return Outcome.FAILED
    if result.busy:
        return Outcome.BUSY
    if result.mode is Mode.AUDIT:
        # A finding no write would fix (the firewall is gone, DNS proxy is off) needs a person, not audit mode.
        would_fix = {f for a in result.actions if a.status == ActionStatus.WOULD_APPLY for f in a.fixes}
        return Outcome.FAILED if any(f not in would_fix for f in outstanding) else Outcome.WOULD_RESTORE
    return Outcome.FAILED if outstanding else Outcome.RESTORED


# ---------------------------------------------------------------------------------- cards


def remediation_card(result: ClusterResult, change: ResourceChange | None) -> Card | None:
    """The card for one reconcile (``change``: the ARM event that caused it, ``None`` for the sweep or
    command line); ``None`` when the reconcile found nothing."""
    outcome = outcome_of(result)
    if outcome is None:
        return None
    audit = result.mode is Mode.AUDIT
    focus = _focus(result, change)
    facts = [_fact("Cluster", result.cluster)]
    if focus is not None:
        facts.append(_fact("Resource", _short(focus)))
    if change is not None:
        # The verb only: the resource type is on the line above, and the whole name would not wrap.
        facts.append(_fact("Operation", change.operation.rsplit("/", 1)[-1]))
        facts.extend(_caller_facts(change))
    facts.append(_fact("When", _when(change.event_time if change else None, result.started)))
    facts.append(_fact("Trigger", f"{_TRIGGERS.get(result.trigger, result.trigger)}, {result.mode} mode"))
    if change is not None and change.correlation_id:
        facts.append(_fact("Correlation ID", change.correlation_id))
    facts.append(_fact("Reconcile", _cost(result)))

    # After a partial restore, say which findings are still there.
    unresolved = set(result.outstanding) if result.changed else set()
    drifted = [
        _fact(str(f.kind), _clip(f.detail + (" (not restored)" if f in unresolved else "")))
        for f in sorted_findings(result.findings)
    ]
    done = [_fact(a.status, _clip(_describe_action(a.method, a.resource, a.summary, a.detail))) for a in result.actions]
    body: list[Card] = [
        _headline(f"{_label(outcome, result)}: {result.cluster}", _summary(outcome, result), style=_STYLES[outcome]),
        {"type": "FactSet", "id": "details", "facts": facts},
    ]
    if drifted:
        body += [_heading("What had drifted"), _list(FINDINGS_LIST, drifted)]
    if done:
        body += [_heading("What would be done" if audit else "What was done"), _list(ACTIONS_LIST, done)]
    links = _links(focus, (a.resource for a in result.actions))
    return _card(body, links, fallback=f"{_label(outcome, result)}: {result.cluster}")


def event_card(results: Sequence[ClusterResult], change: ResourceChange | None) -> Card | None:
    """The one card for one event: the single cluster's card, or, when the change concerned several clusters
    (a hub shared by many spokes), the outcome for each and what was done for all of them together."""
    told = [(outcome, r) for r in results if (outcome := outcome_of(r)) is not None]
    if len(told) <= 1:
        return remediation_card(told[0][1], change) if told else None
    worst = min((o for o, _ in told), key=_SEVERITY.index)
    first = told[0][1]
    headline = f"{worst.label}: {len(told)} clusters"
    restored = sum(1 for o, _ in told if o is Outcome.RESTORED)
    writes = {(a.method, a.resource, a.summary): a for _, r in told for a in r.actions}
    summary = f"{restored} of {len(told)} clusters put back with {_count(len(writes), 'write')}" + (
        "; the others need attention." if restored < len(told) else "."
    )
    facts = []
    if change is not None:
        facts += [
            _fact("Resource", _short(str(change.resource))),
            _fact("Operation", change.operation.rsplit("/", 1)[-1]),
        ]
        facts.extend(_caller_facts(change))
    facts.append(_fact("When", _when(change.event_time if change else None, first.started)))
    facts.append(_fact("Trigger", f"{_TRIGGERS.get(first.trigger, first.trigger)}, {first.mode} mode"))
    if change is not None and change.correlation_id:
        facts.append(_fact("Correlation ID", change.correlation_id))
    facts.append(_fact("Reconcile", _cost(first)))
    listed = sorted(told, key=lambda pair: _SEVERITY.index(pair[0]))
    clusters = [_fact(r.cluster, _clip(_cluster_line(r, o))) for o, r in listed]
    done = [
        _fact(a.status, _clip(_describe_action(a.method, a.resource, a.summary, a.detail))) for a in writes.values()
    ]
    body: list[Card] = [
        _headline(headline, summary, style=_STYLES[worst]),
        {"type": "FactSet", "id": "details", "facts": facts},
        _heading("Clusters, worst first"),
        _list(CLUSTERS_LIST, clusters),
    ]
    if done:
        audit = first.mode is Mode.AUDIT
        body += [_heading("What would be done" if audit else "What was done"), _list(ACTIONS_LIST, done)]
    focus = str(change.resource) if change else None
    return _card(body, _links(focus, (writes and (a.resource for a in writes.values())) or ()), fallback=headline)


def digest_card(sweep: SweepResult) -> Card:
    """The one card the nightly sweep posts: counts, then the clusters that needed anything, worst first."""
    outcomes = [(outcome_of(r), r) for r in sweep.results]
    tally = Counter(o for o, _ in outcomes if o is not None)
    compliant = sum(1 for o, _ in outcomes if o is None)
    needing = sum(tally[o] for o in (Outcome.CONFLICT, Outcome.FAILED, Outcome.BUSY, Outcome.WOULD_RESTORE))
    plural = "s" if sweep.checked != 1 else ""
    if needing:
        verb = "needs" if needing == 1 else "need"
        headline = f"Nightly sweep: {needing} of {sweep.checked} cluster{plural} {verb} attention"
    elif tally[Outcome.RESTORED]:
        headline = f"Nightly sweep: restored {tally[Outcome.RESTORED]} of {sweep.checked} cluster{plural}"
    else:
        headline = f"Nightly sweep: all {sweep.checked} cluster{plural} compliant"
    worst = next((o for o in _SEVERITY if tally[o]), None)
    style = _STYLES[worst] if worst is not None else "good"
    summary = f"Started {_when(None, sweep.started)}, took {sweep.duration_seconds:.1f} s."
    counts = [
        _fact("Checked", str(sweep.checked)),
        _fact("Compliant", str(compliant)),
        _fact("Fixed", str(tally[Outcome.RESTORED])),
    ]
    if tally[Outcome.WOULD_RESTORE]:
        counts.append(_fact("Would fix (audit mode)", str(tally[Outcome.WOULD_RESTORE])))
    if tally[Outcome.BUSY]:
        counts.append(_fact("Busy, will retry", str(tally[Outcome.BUSY])))
    if tally[Outcome.CONFLICT]:
        counts.append(_fact("Conflict", str(tally[Outcome.CONFLICT])))
    counts.append(_fact("Failed", str(tally[Outcome.FAILED])))
    # Stable: within one outcome, the sweep's own order (worst first) holds.
    listed = sorted(((o, r) for o, r in outcomes if o is not None), key=lambda pair: _SEVERITY.index(pair[0]))
    clusters = [_fact(r.cluster, _clip(_cluster_line(r, o))) for o, r in listed]
    body: list[Card] = [
        _headline(headline, summary, style=style),
        {"type": "FactSet", "id": "counts", "facts": counts},
    ]
    if clusters:
        body += [_heading("Clusters, worst first"), _list(CLUSTERS_LIST, clusters)]
    return _card(body, [], fallback=headline)


def teams_message(card: Card, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Card:
    """The Workflows webhook envelope around one card, its longest lists cut (ending in "+N more") to fit."""
    card = copy.deepcopy(card)
    message = _envelope(card)
    for _ in range(10_000):  # each round drops at least one item; the bound only guards against a bug
        overflow = _size(message) - max_bytes
        if overflow <= 0:
            return message
        lists = [el for el in _elements(card.get("body", [])) if el.get("id") in _LISTS and _items(el) > 1]
        if not lists:
            break
        longest = max(lists, key=lambda el: _size(el["facts"]))
        _cut(longest, overflow)
    # Nothing left to cut (a card of huge single texts): keep the headline and say where the rest is.
    note = _paragraph("This alert is too large for Teams; the full result is in the log and the audit trail.")
    card["body"] = [*card.get("body", [])[:1], note]
    if _size(_envelope(card)) > max_bytes:
        card["body"] = [note]
    return _envelope(card)


def render_text(card: Mapping[str, Any]) -> str:
    """A compact plain-text rendering of a card for a console: headline, facts, lists."""
    lines: list[str] = []
    for element in _elements(card.get("body", [])):
        kind = element.get("type")
        if kind == "TextBlock":
            lines.append(str(element.get("text", "")))
        elif kind == "FactSet" and element.get("id") in _LISTS:
            facts = element.get("facts", [])
            width = max((len(f["title"]) for f in facts), default=0)
            lines.extend(f"  {f['title']:<{width}}  {f['value']}".rstrip() for f in facts)
        elif kind == "FactSet":
            lines.extend(_joined([f"{f['title']}: {f['value']}" for f in element.get("facts", [])]))
    return "\n".join(lines)


def _joined(parts: list[str], *, width: int = 110) -> list[str]:
    """Short facts side by side ("a · b · c"), as many to a line as fit."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += f" · {part}"
        else:
            lines.append(f"  {part}")
    return lines


def _card(body: list[Card], links: Sequence[tuple[str, str]], *, fallback: str) -> Card:
    card: Card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": fallback,
        "body": body,
    }
    if links:
        card["actions"] = [{"type": "Action.OpenUrl", "title": title, "url": url} for title, url in links]
    return card


def _headline(title: str, summary: str, *, style: str) -> Card:
    return {
        "type": "Container",
        "style": style,
        "bleed": True,
        "items": [
            {"type": "TextBlock", "text": _clip(title), "size": "Large", "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": _clip(summary), "wrap": True, "spacing": "Small"},
        ],
    }


def _heading(text: str) -> Card:
    return {"type": "TextBlock", "text": text, "weight": "Bolder", "separator": True, "spacing": "Medium"}


def _paragraph(text: str) -> Card:
    return {"type": "TextBlock", "text": text, "wrap": True}


def _fact(title: str, value: str) -> dict[str, str]:
    return {"title": title, "value": value}


def _list(name: str, facts: list[dict[str, str]]) -> Card:
    shown = facts[:MAX_LISTED]
    if len(facts) > len(shown):
        shown.append(_fact("", f"+{len(facts) - len(shown)} more"))
    return {"type": "FactSet", "id": name, "facts": shown}


def _envelope(card: Card) -> Card:
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _elements(elements: Iterable[Any]) -> Iterable[Card]:
    """Every element of a body, containers included, in reading order."""
    for element in elements:
        if not isinstance(element, dict):
            continue
        yield element
        yield from _elements(element.get("items", []))
        for column in element.get("columns", []):
            yield from _elements(column.get("items", []))


def _hidden(facts: list[dict[str, str]]) -> int:
    """How many items an existing "+N more" line already stands for."""
    match = _MORE.match(facts[-1]["value"]) if facts and facts[-1]["title"] == "" else None
    return int(match.group(1)) if match else 0


def _items(factset: Card) -> int:
    facts = factset["facts"]
    return len(facts) - (1 if _hidden(facts) else 0)


def _cut(factset: Card, overflow: int) -> None:
    """Drop enough items from the end of a list to win back about ``overflow`` bytes, keeping one."""
    facts: list[dict[str, str]] = factset["facts"]
    hidden = _hidden(facts)
    items = facts[:-1] if hidden else facts
    average = max(1, _size(items) // len(items))
    drop = min(len(items) - 1, max(1, math.ceil(overflow / average)))
    factset["facts"] = [*items[: len(items) - drop], _fact("", f"+{hidden + drop} more")]


def _summary(outcome: Outcome, result: ClusterResult) -> str:
    findings = sum(1 for f in result.findings if f.blocking)
    writes = len(result.actions)
    if outcome is Outcome.RESTORED:
        pending = any(a.status == ActionStatus.ACCEPTED for a in result.actions)
        tail = ", which Azure is still applying." if pending else "."
        return f"Put back {_count(findings, 'drifted item')} with {_count(writes, 'write')}{tail}"
    if outcome is Outcome.WOULD_RESTORE:
        return f"Nothing was written. {_count(writes, 'write')} would put back {_count(findings, 'drifted item')}."
    if outcome is Outcome.BUSY:
        return f"Another operation is in progress, so the remediator did not write there. {_again(result)}."
    outstanding = result.outstanding
    if outcome is Outcome.CONFLICT:
        conflict = next(f for f in sorted_findings(outstanding) if f.kind in CONFLICT_KINDS)
        return _clip(f"Something the remediator does not own is in the way; it needs a person: {conflict.detail}")
    first = f": {outstanding[0].detail}" if outstanding else ""
    retry = f"{_again(result)}. " if result.retry_reason else ""  # first, so that clipping keeps it
    return _clip(f"{retry}{_count(len(outstanding), 'finding')} still need a fix{first}")


def _cluster_line(result: ClusterResult, outcome: Outcome) -> str:
    kinds = Counter(str(f.kind) for f in (result.outstanding or result.findings) if f.blocking)
    what = ", ".join(f"{kind} ({n})" if n > 1 else kind for kind, n in kinds.most_common())
    label = _label(outcome, result)
    return f"{label}: {what}" if what else label


def _label(outcome: Outcome, result: ClusterResult) -> str:
    """The outcome's label; a failure that will be retried says so."""
    return "Failed, will retry" if outcome is Outcome.FAILED and result.retry_reason else outcome.label


def _again(result: ClusterResult) -> str:
    return "Event Grid will deliver the event again" if result.trigger == "event" else "The next run will retry"


def _describe_action(method: str, resource: str, summary: str, detail: str) -> str:
    text = f"{method} {_short(resource)}: {summary}"
    return f"{text} ({detail})" if detail else text


def _caller_facts(change: ResourceChange) -> list[dict[str, str]]:
    caller = change.caller
    facts = []
    who = f"{caller.name} ({caller.upn})" if caller.name and caller.upn else caller.upn or caller.name
    if who:
        facts.append(_fact("Changed by", who))
    if caller.app_id:
        facts.append(_fact("App ID", caller.app_id))
    if caller.ip_address:
        facts.append(_fact("Client IP", caller.ip_address))
    return facts


def _cost(result: ClusterResult) -> str:
    calls = result.arm_calls
    reads, writes = _count(calls.get("reads", 0), "ARM read"), _count(calls.get("writes", 0), "write")
    text = f"{result.duration_seconds:.2f} s, {reads}, {writes}"
    return f"{text}, {result.attempts} attempts" if result.attempts > 1 else text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _when(event_time: str | None, fallback: datetime) -> str:
    moment = fallback
    if event_time:
        try:
            moment = datetime.fromisoformat(event_time)
        except ValueError:
            return event_time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parse(resource: str) -> ResourceId | None:
    try:
        return ResourceId.parse(resource)
    except InvalidResourceId:
        return None


def _focus(result: ClusterResult, change: ResourceChange | None) -> str | None:
    """The resource the card is about: the one that changed, else the first written, else the worst finding's."""
    if change is not None:
        return str(change.resource)
    if result.actions:
        return result.actions[0].resource
    findings = sorted_findings(result.findings)
    return findings[0].resource if findings else None


def _short(resource: str) -> str:
    """``fwpol-hub/aks-egress-baseline (ruleCollectionGroups, rg-hub)``: readable, still unambiguous in context."""
    rid = _parse(resource)
    if rid is None:
        return resource
    return f"{rid.path} ({rid.types[-1]}, {rid.resource_group})"


def _links(focus: str | None, others: Iterable[str]) -> list[tuple[str, str]]:
    """Portal links to the top-level resources involved (child resources such as routes have no blade)."""
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    for resource in (focus, *others):
        rid = _parse(resource) if resource else None
        if rid is None or rid.top.key in seen or len(links) >= MAX_LINKS:
            continue
        seen.add(rid.top.key)
        links.append((f"Open {rid.top.name} in the Azure portal", PORTAL + rid.top.text))
    return links


# --------------------------------------------------------------------------------- posting


class RateLimit:
    """At most ``requests`` requests in any window of ``per_seconds``; thread-safe."""

    def __init__(self, *, requests: int = 4, per_seconds: float = 1.0) -> None:
        self.requests = requests
        self.per_seconds = per_seconds
        self._sent: deque[float] = deque(maxlen=requests)
        self._lock = threading.Lock()

    def acquire(self, *, deadline: float) -> bool:
        """Wait for a slot and take it; ``False`` (nothing taken) if none frees up before ``deadline``."""
        while True:
            with self._lock:
                now = time.monotonic()
                if len(self._sent) < self.requests or now - self._sent[0] >= self.per_seconds:
                    self._sent.append(now)
                    return True
                wait = self._sent[0] + self.per_seconds - now
            if now + wait > deadline:
                return False
            time.sleep(wait)


# Teams throttles a webhook above four requests per second: one limit for every poster in the process.
PROCESS_RATE = RateLimit(requests=4, per_seconds=1.0)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured; following would re-send the card somewhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class TeamsAlerts:
    """Posts a card per remediation and a digest per sweep to a Teams Workflows webhook; never raises."""

    def __init__(
        self,
        webhook_url: str,
        *,
        budget_seconds: float = POST_BUDGET_SECONDS,
        attempt_timeout_seconds: float = ATTEMPT_TIMEOUT_SECONDS,
        backoff_seconds: float = BACKOFF_SECONDS,
        rate: RateLimit = PROCESS_RATE,
    ) -> None:
        _check_webhook_url(webhook_url)
        self._url = webhook_url
        self._secrets = _secret_parts(webhook_url)
        self.budget_seconds = budget_seconds
        self.attempt_timeout_seconds = attempt_timeout_seconds
        self.backoff_seconds = backoff_seconds
        self._rate = rate
        self._opener = urllib.request.build_opener(_NoRedirects())
        self._posted: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self._posted_lock = threading.Lock()

    def __repr__(self) -> str:
        return "TeamsAlerts(webhook=<TEAMS_WEBHOOK_URL>)"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **options: Any) -> TeamsAlerts | None:
        """Alerts to ``TEAMS_WEBHOOK_URL``, or ``None`` (one INFO line) when it is not set; a value that is
        not a usable URL raises ``SettingsError`` (without the value: it is a secret)."""
        env = os.environ if environ is None else environ
        url = (env.get("TEAMS_WEBHOOK_URL") or "").strip()
        if not url:
            log.info("Teams alerts: off (TEAMS_WEBHOOK_URL is not set)")
            return None
        alerts = cls(url, **options)
        log.info("Teams alerts: on (TEAMS_WEBHOOK_URL is set)")
        return alerts

    def on_event(self, results: Sequence[ClusterResult], change: ResourceChange | None) -> None:
        """Post one card for what one event (or command) caused, however many clusters it concerned. Never
        raises."""
        results = [r for r in results if r.trigger != SWEEP_TRIGGER]  # the sweep posts one digest instead
        names = ", ".join(r.cluster for r in results)
        try:
            told = tuple(sorted((r.cluster, str(o)) for r in results if (o := outcome_of(r)) is not None))
            card = event_card(results, change)
            if card is None:
                return
            # Event Grid redelivers an event the handler asked to retry: say the same thing about it only once.
            key = (change.event_id, told) if change is not None else None
            if key is not None and self._posted_before(key):
                return
            if self.post(card, what=f"cluster(s) {names}") and key is not None:
                self._remember(key)
        except Exception as err:  # the sink contract: a Teams problem must never fail a remediation
            log.warning("Teams alert for cluster(s) %s failed: %s", printable(names), self._redact(err))

    def on_sweep(self, sweep: SweepResult) -> None:
        """Post the sweep's one digest card. Never raises."""
        try:
            self.post(digest_card(sweep), what="the sweep digest")
        except Exception as err:  # the sink contract, as above
            log.warning("Teams sweep digest failed: %s", self._redact(err))

    def post(self, card: Card, *, what: str = "a card") -> bool:
        """Send one card within the budget (and what the invocation's deadline leaves: every card of one
        invocation shares it); ``True`` once Teams accepted it. Failures are logged, not raised."""
        body = json.dumps(teams_message(card), separators=(",", ":"), ensure_ascii=False).encode()
        started = time.monotonic()
        budget = deadline_of_invocation().within(self.budget_seconds)
        deadline = started + budget
        reason = "no attempt made"
        for attempt in range(1, 100):
            if not self._rate.acquire(deadline=deadline):
                reason += "; the rate limit left no time for another attempt"
                break
            status, retry_after, reason = self._send(body, timeout=deadline - time.monotonic())
            if status is not None and 200 <= status < 300:
                log.debug("Teams alert for %s delivered (HTTP %d, attempt %d)", what, status, attempt)
                return True
            if status is not None and status not in RETRIED_STATUSES:
                break
            delay = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (attempt - 1)
            if time.monotonic() + delay >= deadline:
                reason += f"; waiting {delay:g} s more would pass the {round(budget, 1):g} s budget"
                break
            time.sleep(delay)
        log.warning(
            "Teams alert for %s not delivered after %.1f s: %s",
            what,
            time.monotonic() - started,
            reason,
        )
        return False

    def _send(self, body: bytes, *, timeout: float) -> tuple[int | None, float | None, str]:
        """One POST: (status, Retry-After seconds, what happened), no exception for HTTP or network trouble."""
        timeout = max(0.1, min(timeout, self.attempt_timeout_seconds))
        request = urllib.request.Request(
            self._url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read()
                return int(response.status), None, f"HTTP {response.status}"
        except urllib.error.HTTPError as err:
            with err:
                retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
            return int(err.code), retry_after, f"HTTP {err.code}"
        except (OSError, HTTPException) as err:  # refused, reset, DNS, TLS, timeout (URLError is an OSError)
            return None, None, self._redact(err)

    def _posted_before(self, key: tuple[object, ...]) -> bool:
        with self._posted_lock:
            return key in self._posted

    def _remember(self, key: tuple[object, ...]) -> None:
        with self._posted_lock:
            self._posted[key] = None
            while len(self._posted) > 1024:
                self._posted.popitem(last=False)

    def _redact(self, err: BaseException) -> str:
        """An exception as one bounded line of text, with the webhook URL (or its path and query) cut out."""
        reason = getattr(err, "reason", None)
        text = f"{type(err).__name__}: {reason if reason is not None else err}"
        for secret in self._secrets:
            text = text.replace(secret, "<TEAMS_WEBHOOK_URL>")
        return printable(text, limit=500)


def _secret_parts(url: str) -> tuple[str, ...]:
    """The URL and the pieces of it an error message might quote, longest first (so each is cut whole)."""
    parts = urlsplit(url)
    values = [value for _, value in parse_qsl(parts.query)]
    pieces = {url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query, *values}
    return tuple(sorted((p for p in pieces if len(p) >= 8), key=len, reverse=True))


def _check_webhook_url(url: str) -> None:
    """The URL must be usable; the error never quotes it."""
    if url.startswith("@Microsoft.KeyVault("):
        raise SettingsError(
            "TEAMS_WEBHOOK_URL is an unresolved Key Vault reference: give the app's identity "
            "'Key Vault Secrets User' on the vault and check the secret URI"
        )
    if any(c.isspace() or not c.isprintable() for c in url):
        raise SettingsError("TEAMS_WEBHOOK_URL contains spaces or control characters (value not shown: it is a secret)")
    try:
        parts = urlsplit(url)
        valid = bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(url)))
    except ValueError:
        valid = False
    if not valid:
        raise SettingsError(
            "TEAMS_WEBHOOK_URL must be the https:// URL of a Teams Workflows webhook (value not shown: it is a secret)"
        )


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date); ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
