"""Baseline profiles: the egress a cluster must be allowed, as data, and their expansion into firewall rules.

A profile is a YAML file of rule templates; the shipped ones live in ``profiles/`` next to this module and
document their own format in a header comment. Templates refer to the cluster through placeholders
(``{location}``, ``{apiServerAddress}``, ``{dnsServers}``, ``{monitorWorkspaceIds}``, ``{egressSources}``)
and select rules by the cluster's facts (``when: {tunnel: legacy}``); ``expand_baseline`` fills them in and
returns the rules exactly as they are written to ARM. ``fqdn_tag_contents`` says which names an FQDN tag
stands for, from ``profiles/fqdn-tags.json``.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from remediation.documents import (
    FILE_KEY,
    DocumentError,
    Problem,
    Problems,
    child_key,
    read_document,
    shown,
)

if TYPE_CHECKING:
    from remediation.config import ClusterConfig

PROFILES_DIR = Path(__file__).parent / "profiles"
FQDN_TAGS = PROFILES_DIR / "fqdn-tags.json"
T = TypeVar("T")

# The facts a profile rule can be selected by (``when``), with the values each takes.
FACTS: dict[str, tuple[object, ...]] = {
    "tunnel": ("konnectivity", "legacy"),  # how nodes reach the control plane
    "private": (True, False),  # a private cluster (its API server has no public endpoint)
    "ntp": (True, False),  # the nodes need NTP through the firewall (nodes built before March 2021)
    "monitoring": (True, False),  # Container insights / Azure Monitor egress (workspaces configured)
}


# --- Errors ---------------------------------------------------------------------------------------------


class ProfileError(DocumentError):
    """A baseline profile that cannot be used."""


class UnknownProfileError(ProfileError):
    """The profile is neither a built-in name nor a path to a file."""


class BaselineError(ValueError):
    """The baseline cannot be built for a cluster from what was observed (e.g. no IPv4 egress sources)."""


# --- Value grammars shared by profiles and the configuration ---------------------------------------------

_SERVICE_TAG = re.compile(r"^[A-Z][A-Za-z0-9]*(\.[A-Za-z0-9]+)?$")
_FQDN_TAG = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", re.I)
_RULE_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]{0,37}[a-z0-9])?$")
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
_NETWORK_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "any": "Any"}
_APPLICATION_PROTOCOLS = {"http": "Http", "https": "Https", "mssql": "Mssql"}


def address_problem(text: str, *, service_tags: bool = False) -> str | None:
    """Why ``text`` is not ``*``, an IPv4 address, CIDR or ``a-b`` range (or a service tag), else None."""
    if text == "*":
        return None
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            if network.version != 4:
                return f"{text!r} is IPv6; Azure Firewall rules take IPv4 only"
            if str(network) != text:
                return f"{text!r} has host bits set; did you mean {str(network)!r}?"
            return None
        if text.count("-") == 1 and ":" not in text:
            start, end = (ipaddress.ip_address(part.strip()) for part in text.split("-"))
            if start.version != 4 or end.version != 4:
                return f"{text!r} is IPv6; Azure Firewall rules take IPv4 only"
            return None if start <= end else f"{text!r}: the range starts after it ends"
        if ipaddress.ip_address(text).version != 4:
            return f"{text!r} is IPv6; Azure Firewall rules take IPv4 only"
        return None
    except ValueError:
        pass
    if service_tags and _SERVICE_TAG.match(text):
        return None
    expected = "'*', an IPv4 address, a CIDR or an a-b range" + (", or a service tag" if service_tags else "")
    hint = " (FQDNs belong under fqdns)" if service_tags and _FQDN.match(text) else ""
    return f"{text!r} is not {expected}{hint}"


def _fqdn_problem(text: str, *, wildcard: bool) -> str | None:
    if wildcard and text == "*":
        return None
    if wildcard and text.startswith("*."):
        text = text[2:]
    elif "*" in text:
        if wildcard:
            return f"{text!r}: a wildcard is allowed only as a leading '*.'"
        return f"{text!r}: wildcards are not allowed in network rule FQDNs"
    return None if _FQDN.match(text) else f"{text!r} is not an FQDN"


def _fqdn_tag_problem(text: str) -> str | None:
    return None if _FQDN_TAG.match(text) else f"{text!r} is not an FQDN tag name (like AzureKubernetesService)"


def _port(value: object) -> str | None:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        return None
    if text == "*":
        return text
    match = _PORT.match(text)
    if match is None:
        return None
    low = int(match[1])
    high = int(match[2]) if match[2] else low
    if not 1 <= low <= high <= 65535:
        return None
    return f"{low}-{high}" if match[2] else str(low)


# --- Placeholders ----------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LIST_PLACEHOLDERS = ("dnsServers", "monitorWorkspaceIds", "egressSources")
_SINGLE_PLACEHOLDERS = ("location", "apiServerAddress")
# Used to check a template's shape at load time: a template is valid if its filled-in form is.
_SAMPLES = {
    "location": "westeurope",
    "apiServerAddress": "203.0.113.10",
    "dnsServers": "192.0.2.53",
    "monitorWorkspaceIds": "00000000-0000-0000-0000-000000000000",
    "egressSources": "10.240.0.0/16",
}
_KNOWN = ", ".join("{" + name + "}" for name in (*_SINGLE_PLACEHOLDERS, *_LIST_PLACEHOLDERS))


def _template_problem(text: str, check: Callable[[str], str | None]) -> str | None:
    """Why ``text`` is not a valid template for a field whose filled-in values ``check`` validates."""
    names = _PLACEHOLDER.findall(text)
    for name in names:
        if name not in _SAMPLES:
            return f"unknown placeholder {{{name}}} in {text!r} (known: {_KNOWN})"
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        return f"{text!r} has an unmatched brace"
    lists = sorted({name for name in names if name in _LIST_PLACEHOLDERS})
    if len(lists) > 1:
        return f"{text!r} uses more than one list placeholder ({', '.join(lists)}); split it into entries"
    sample = _fill_one(text, {name: _SAMPLES[name] for name in names})
    problem = check(sample)
    if problem is not None and names:
        return f"{text!r} is not valid once filled in: {problem}"
    return problem


def _all_conditional(templates: Sequence[str]) -> bool:
    """True when every template can expand to nothing, i.e. uses a placeholder that may be unset."""
    return all(set(_PLACEHOLDER.findall(text)) - {"location"} for text in templates)


_UNREACHABLE_FALLBACK = (
    "the fallback can never be used: it applies only when every destination uses a placeholder "
    "that may be unset ({apiServerAddress}, {dnsServers}, {monitorWorkspaceIds}, {egressSources})"
)


def _fill_one(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match[1]], template)


def _fill(templates: Sequence[str], values: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Fill in each template; a list placeholder gives one entry per value, an unset placeholder none."""
    filled: dict[str, None] = {}
    for template in templates:
        names = list(dict.fromkeys(_PLACEHOLDER.findall(template)))
        for combination in itertools.product(*(values[name] for name in names)):
            filled.setdefault(_fill_one(template, dict(zip(names, combination, strict=True))), None)
    return tuple(filled)


# --- Profiles --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRuleTemplate:
    """A network rule of a profile, before the cluster's values are filled in.

    ``without_dns_proxy`` are the destinations written instead of ``fqdns`` when the firewall's DNS proxy is
    off (FQDNs in network rules then match nothing).
    """

    key: str
    description: str
    protocols: tuple[str, ...]
    ports: tuple[str, ...]
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    fqdns: tuple[str, ...]
    fallback_destinations: tuple[str, ...]
    fallback_fqdns: tuple[str, ...]
    when: Mapping[str, object] = field(default_factory=dict)
    source: str = ""
    without_dns_proxy: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplicationRuleTemplate:
    """An application rule of a profile, before the cluster's values are filled in."""

    key: str
    description: str
    protocols: tuple[tuple[str, int], ...]
    sources: tuple[str, ...]
    fqdn_tags: tuple[str, ...]
    target_fqdns: tuple[str, ...]
    fallback_fqdns: tuple[str, ...]
    when: Mapping[str, object] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class Profile:
    """A parsed baseline profile: rule templates plus where they come from."""

    name: str
    description: str
    source: str
    path: Path
    network_rules: tuple[NetworkRuleTemplate, ...]
    application_rules: tuple[ApplicationRuleTemplate, ...]


DEFAULT_SOURCES = ("{egressSources}",)


def builtin_profiles() -> tuple[str, ...]:
    """Names of the profiles shipped with the package, sorted."""
    return tuple(sorted(path.stem for path in PROFILES_DIR.glob("*.yaml")))


def load_profile(name_or_path: str, *, relative_to: Path) -> Profile:
    """Load a built-in profile by name, or a profile file by path (relative to the directory ``relative_to``).

    Raises ``UnknownProfileError`` for a name that is neither, ``ProfileError`` for a faulty file.
    """
    if name_or_path in builtin_profiles():
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    elif "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path).expanduser()
        if not path.is_absolute():
            path = relative_to / path
    else:
        known = ", ".join(builtin_profiles())
        raise UnknownProfileError(
            Path(name_or_path),
            [
                Problem(
                    FILE_KEY,
                    f"unknown profile {name_or_path!r} (built-in: {known}; or a path to a profile file)",
                )
            ],
        )
    document = read_document(path, ProfileError)
    problems = Problems(path)
    top = problems.mapping(
        document, "", required=("description", "source"), optional=("networkRules", "applicationRules")
    )
    if top is None:  # pragma: no cover - read_document guarantees a mapping
        raise problems.error(ProfileError)
    description = problems.text(top.get("description"), "description") if "description" in top else None
    source = problems.text(top.get("source"), "source") if "source" in top else None
    network = _rule_list(problems, top, "networkRules", _network_rule)
    application = _rule_list(problems, top, "applicationRules", _application_rule)
    if "networkRules" not in top and "applicationRules" not in top:
        problems.add(FILE_KEY, "the profile has no rules (expected networkRules and/or applicationRules)")
    rule_keys = [(f"{key}.name", rule.key) for key, rule in network]
    rule_keys += [(f"{key}.name", rule.key) for key, rule in application]
    problems.unique(rule_keys, what="rule name")
    if problems or description is None or source is None:
        raise problems.error(ProfileError)
    return Profile(
        name=path.stem,
        description=description,
        source=source,
        path=path,
        network_rules=tuple(rule for _, rule in network),
        application_rules=tuple(rule for _, rule in application),
    )


def _rule_list(
    problems: Problems,
    top: Mapping[str, object],
    name: str,
    parse: Callable[[Problems, object, str], T | None],
) -> list[tuple[str, T]]:
    if name not in top:
        return []
    items = problems.items(top[name], name)
    parsed = [(key, parse(problems, item, key)) for key, item in items or ()]
    return [(key, rule) for key, rule in parsed if rule is not None]


def _templates(
    problems: Problems,
    rule: Mapping[str, object],
    key: str,
    name: str,
    check: Callable[[str], str | None],
    *,
    placeholders: bool = True,
) -> tuple[str, ...]:
    """The list at ``rule[name]`` (absent: empty), each entry checked as a template of ``check``'s grammar."""
    if name not in rule:
        return ()
    entries = problems.texts(rule[name], child_key(key, name))
    result = []
    for entry_key, text in entries or ():
        if not placeholders and _PLACEHOLDER.search(text):
            problems.add(entry_key, f"{text!r}: placeholders are not allowed in {name}")
            continue
        problem = _template_problem(text, check)
        if problem is None:
            result.append(text)
        else:
            problems.add(entry_key, problem)
    return tuple(result)


def _rule_name_and_description(problems: Problems, rule: Mapping[str, object], key: str) -> tuple[str, str]:
    name = problems.text(rule.get("name"), child_key(key, "name")) if "name" in rule else None
    if name is not None and not _RULE_KEY.match(name):
        problems.add(
            child_key(key, "name"),
            f"{name!r} is not a rule name (lowercase letters, digits and '-', 1..39 characters)",
        )
    description = (
        problems.text(rule.get("description"), child_key(key, "description")) if "description" in rule else None
    )
    return name or "", description or ""


def _choices(
    problems: Problems, value: object, key: str, parse: Callable[[object], T | None], expected: str
) -> tuple[T, ...]:
    """Each item of the list ``value`` parsed by ``parse`` (None means invalid); duplicates are problems."""
    seen: dict[T, str] = {}
    for item_key, item in problems.items(value, key) or ():
        parsed = parse(item)
        if parsed is None:
            problems.add(item_key, f"{shown(item)} is not {expected}")
        elif parsed in seen:
            problems.add(item_key, f"duplicate entry {item!r} (also {seen[parsed]})")
        else:
            seen[parsed] = item_key
    return tuple(seen)


def _network_protocol(value: object) -> str | None:
    return _NETWORK_PROTOCOLS.get(value.lower()) if isinstance(value, str) else None


def _application_protocol(value: object) -> tuple[str, int] | None:
    if not isinstance(value, str) or value.count(":") != 1:
        return None
    kind, port = value.split(":")
    canonical = _APPLICATION_PROTOCOLS.get(kind.strip().lower())
    if canonical is None or not port.strip().isdigit() or not 1 <= int(port) <= 65535:
        return None
    return canonical, int(port)


def _network_rule(problems: Problems, value: object, key: str) -> NetworkRuleTemplate | None:
    rule = problems.mapping(
        value,
        key,
        required=("name", "description", "protocols", "ports"),
        optional=(
            "sources",
            "destinations",
            "fqdns",
            "fallbackDestinations",
            "fallbackFqdns",
            "withoutDnsProxy",
            "when",
            "source",
        ),
    )
    if rule is None:
        return None
    name, description = _rule_name_and_description(problems, rule, key)
    when, source = _when(problems, rule, key), _source(problems, rule, key)
    protocols = (
        _choices(
            problems,
            rule["protocols"],
            child_key(key, "protocols"),
            _network_protocol,
            "TCP, UDP, ICMP or Any",
        )
        if "protocols" in rule
        else ()
    )
    ports = (
        _choices(
            problems,
            rule["ports"],
            child_key(key, "ports"),
            _port,
            "a port ('443'), a range ('80-90') or '*'",
        )
        if "ports" in rule
        else ()
    )

    def address(text: str) -> str | None:
        return address_problem(text, service_tags=True)

    def fqdn(text: str) -> str | None:
        return _fqdn_problem(text, wildcard=False)

    sources = _templates(problems, rule, key, "sources", address_problem) if "sources" in rule else DEFAULT_SOURCES
    destinations = _templates(problems, rule, key, "destinations", address)
    fqdns = _templates(problems, rule, key, "fqdns", fqdn)
    fallback_destinations = _templates(problems, rule, key, "fallbackDestinations", address)
    fallback_fqdns = _templates(problems, rule, key, "fallbackFqdns", fqdn)
    without_dns_proxy = _templates(problems, rule, key, "withoutDnsProxy", address)
    if "withoutDnsProxy" in rule and "fqdns" not in rule and "fallbackFqdns" not in rule:
        problems.add(child_key(key, "withoutDnsProxy"), "only a rule with fqdns needs an alternative without DNS proxy")
    if "destinations" not in rule and "fqdns" not in rule:
        problems.add(key, "the rule has no destinations (expected destinations and/or fqdns)")
    elif ("fallbackDestinations" in rule or "fallbackFqdns" in rule) and not _all_conditional((*destinations, *fqdns)):
        problems.add(key, _UNREACHABLE_FALLBACK)
    return NetworkRuleTemplate(
        key=name,
        description=description,
        protocols=protocols,
        ports=ports,
        sources=sources,
        destinations=destinations,
        fqdns=fqdns,
        fallback_destinations=fallback_destinations,
        fallback_fqdns=fallback_fqdns,
        when=when,
        source=source,
        without_dns_proxy=without_dns_proxy,
    )


def _when(problems: Problems, rule: Mapping[str, object], key: str) -> dict[str, object]:
    """The facts a rule is selected by: ``when: {tunnel: legacy, private: false}``."""
    if "when" not in rule:
        return {}
    when = problems.mapping(rule["when"], child_key(key, "when"), optional=tuple(FACTS))
    result: dict[str, object] = {}
    for fact, value in (when or {}).items():
        allowed = FACTS[fact]
        if value in allowed and type(value) is type(allowed[0]):
            result[fact] = value
        else:
            choices = ", ".join(str(v).lower() for v in allowed)
            problems.add(child_key(child_key(key, "when"), fact), f"{shown(value)} is not one of {choices}")
    return result


def _source(problems: Problems, rule: Mapping[str, object], key: str) -> str:
    """Where a rule comes from (a documentation page and section), shown with its findings."""
    return (problems.text(rule["source"], child_key(key, "source")) or "") if "source" in rule else ""


def _application_rule(problems: Problems, value: object, key: str) -> ApplicationRuleTemplate | None:
    rule = problems.mapping(
        value,
        key,
        required=("name", "description", "protocols"),
        optional=("sources", "fqdnTags", "targetFqdns", "fallbackFqdns", "when", "source"),
    )
    if rule is None:
        return None
    name, description = _rule_name_and_description(problems, rule, key)
    when, source = _when(problems, rule, key), _source(problems, rule, key)
    protocols = (
        _choices(
            problems,
            rule["protocols"],
            child_key(key, "protocols"),
            _application_protocol,
            "a protocol and port like 'Https:443' (Http, Https or Mssql)",
        )
        if "protocols" in rule
        else ()
    )

    def target(text: str) -> str | None:
        return _fqdn_problem(text, wildcard=True)

    sources = _templates(problems, rule, key, "sources", address_problem) if "sources" in rule else DEFAULT_SOURCES
    fqdn_tags = _templates(problems, rule, key, "fqdnTags", _fqdn_tag_problem, placeholders=False)
    target_fqdns = _templates(problems, rule, key, "targetFqdns", target)
    fallback_fqdns = _templates(problems, rule, key, "fallbackFqdns", target)
    if "fqdnTags" not in rule and "targetFqdns" not in rule:
        problems.add(key, "the rule has no destinations (expected fqdnTags or targetFqdns)")
    elif "fqdnTags" in rule and "targetFqdns" in rule:
        # Azure rejects an application rule that has both; the profile should say what will be written.
        problems.add(key, "fqdnTags and targetFqdns cannot be combined in one rule; split it into two rules")
    elif "fallbackFqdns" in rule and not _all_conditional(target_fqdns):
        problems.add(key, _UNREACHABLE_FALLBACK)
    return ApplicationRuleTemplate(
        key=name,
        description=description,
        protocols=protocols,
        sources=sources,
        fqdn_tags=fqdn_tags,
        target_fqdns=target_fqdns,
        fallback_fqdns=fallback_fqdns,
        when=when,
        source=source,
    )


# --- Expansion -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineNetworkRule:
    """A network rule the cluster must have, in the form written to ARM; ``name`` is ``<cluster>-<key>``.

    ``without_dns_proxy`` are the destination addresses to write instead of ``destination_fqdns`` on a
    firewall whose DNS proxy is off (empty: the profile gives no alternative).
    """

    name: str
    key: str
    description: str
    protocols: tuple[str, ...]
    sources: tuple[str, ...]
    destination_addresses: tuple[str, ...]
    destination_fqdns: tuple[str, ...]
    ports: tuple[str, ...]
    source: str = ""
    without_dns_proxy: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselineApplicationRule:
    """An application rule the cluster must have; ``protocols`` are ``(protocolType, port)`` pairs."""

    name: str
    key: str
    description: str
    sources: tuple[str, ...]
    protocols: tuple[tuple[str, int], ...]
    fqdn_tags: tuple[str, ...]
    target_fqdns: tuple[str, ...]
    source: str = ""


BaselineRule = BaselineNetworkRule | BaselineApplicationRule


@dataclass(frozen=True)
class Baseline:
    """The rules one cluster must be allowed, in profile order, and the names its FQDN tags stand for."""

    network_rules: tuple[BaselineNetworkRule, ...]
    application_rules: tuple[BaselineApplicationRule, ...]
    tag_contents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def rules(self) -> tuple[BaselineRule, ...]:
        return (*self.network_rules, *self.application_rules)


def cluster_facts(cluster: ClusterConfig) -> dict[str, object]:
    """The facts profile rules are selected by, as the configuration states them."""
    return {
        "tunnel": cluster.tunnel,
        "private": cluster.private,
        "ntp": cluster.ntp,
        "monitoring": bool(cluster.monitor_workspace_ids),
    }


def expand_baseline(profile: Profile, cluster: ClusterConfig, *, egress_sources: Sequence[str]) -> Baseline:
    """The rules ``cluster`` must have under ``profile``; ``egress_sources`` are its node subnets' prefixes.

    Pure and deterministic. IPv6 prefixes are skipped (Azure Firewall rules are IPv4-only). A rule whose
    ``when`` does not hold for the cluster's facts is left out.
    """
    facts = cluster_facts(cluster)
    values: dict[str, tuple[str, ...]] = {
        "location": (cluster.location,),
        "apiServerAddress": (cluster.api_server_address,) if cluster.api_server_address else (),
        "dnsServers": tuple(cluster.dns_servers),
        "monitorWorkspaceIds": tuple(cluster.monitor_workspace_ids),
        "egressSources": _egress_sources(cluster.name, egress_sources),
    }

    def selected(when: Mapping[str, object]) -> bool:
        return all(facts.get(fact) == value for fact, value in when.items())

    def sources(key: str, templates: Sequence[str]) -> tuple[str, ...]:
        filled = _fill(templates, values)
        if not filled:
            raise BaselineError(
                f"cluster {cluster.name!r}: rule {key!r} has no source addresses "
                f"({', '.join(templates)} gave nothing; are the node subnets' IPv4 prefixes known?)"
            )
        return filled

    network: list[BaselineNetworkRule] = []
    for rule in profile.network_rules:
        if not selected(rule.when):
            continue
        addresses, fqdns = _fill(rule.destinations, values), _fill(rule.fqdns, values)
        if not addresses and not fqdns:
            addresses = _fill(rule.fallback_destinations, values)
            fqdns = _fill(rule.fallback_fqdns, values)
        if not addresses and not fqdns:
            continue
        network.append(
            BaselineNetworkRule(
                name=f"{cluster.name}-{rule.key}",
                key=rule.key,
                description=rule.description,
                protocols=rule.protocols,
                sources=sources(rule.key, rule.sources),
                destination_addresses=addresses,
                destination_fqdns=fqdns,
                ports=rule.ports,
                source=rule.source or profile.source,
                without_dns_proxy=_without_dns_proxy(addresses, fqdns, _fill(rule.without_dns_proxy, values)),
            )
        )
    application: list[BaselineApplicationRule] = []
    for app_rule in profile.application_rules:
        if not selected(app_rule.when):
            continue
        targets = _fill(app_rule.target_fqdns, values) or _fill(app_rule.fallback_fqdns, values)
        if not targets and not app_rule.fqdn_tags:
            continue
        application.append(
            BaselineApplicationRule(
                name=f"{cluster.name}-{app_rule.key}",
                key=app_rule.key,
                description=app_rule.description,
                sources=sources(app_rule.key, app_rule.sources),
                protocols=app_rule.protocols,
                fqdn_tags=app_rule.fqdn_tags,
                target_fqdns=targets,
                source=app_rule.source or profile.source,
            )
        )
    tags = {tag for rule in application for tag in rule.fqdn_tags}
    return Baseline(
        network_rules=tuple(network),
        application_rules=tuple(application),
        tag_contents=fqdn_tag_contents(tags, location=cluster.location, facts=facts),
    )


def _without_dns_proxy(
    addresses: tuple[str, ...], fqdns: tuple[str, ...], alternative: tuple[str, ...]
) -> tuple[str, ...]:
    """What to write instead of FQDNs when the firewall has no DNS proxy: the addresses plus the profile's
    alternative, or nothing when the profile gives none."""
    return tuple(dict.fromkeys((*addresses, *alternative))) if fqdns and alternative else ()


def _egress_sources(cluster: str, prefixes: Sequence[str]) -> tuple[str, ...]:
    result: dict[str, None] = {}
    for prefix in prefixes:
        try:
            network = ipaddress.ip_network(prefix)
        except (TypeError, ValueError):
            raise BaselineError(f"cluster {cluster!r}: egress source {prefix!r} is not an address prefix") from None
        if network.version == 4:
            result.setdefault(str(network), None)
    return tuple(result)


# --- FQDN tags --------------------------------------------------------------------------------------------


@cache
def _fqdn_tags() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FQDN_TAGS.read_text())
    return {tag.casefold(): entries for tag, entries in document["tags"].items()}


def fqdn_tag_contents(tags: Iterable[str], *, location: str, facts: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """The FQDN patterns each known FQDN tag stands for, for a cluster in ``location`` with ``facts``.

    A tag that is not listed in ``profiles/fqdn-tags.json`` is left out: it stays an opaque name that only
    itself (or ``*``) matches.
    """
    contents: dict[str, tuple[str, ...]] = {}
    for tag in tags:
        entries = _fqdn_tags().get(tag.casefold())
        if entries is None:
            continue
        contents[tag] = tuple(
            entry["fqdn"].replace("{location}", location)
            for entry in entries
            if all(facts.get(fact) == value for fact, value in entry.get("when", {}).items())
        )
    return contents
