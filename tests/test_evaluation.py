"""Specification of how a firewall's rules decide baseline traffic: the first matching rule wins.

Azure Firewall processes network rules before application rules; within each, a parent policy's rule
collection groups before the child's, then rule collection group priority, then rule collection priority
(learn.microsoft.com/azure/firewall/rule-processing). A ``Judgement`` is read relative to the slot of the
remediator's own collection: what an earlier rule decides, the remediator's rule can no longer change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pytest

from remediation.evaluation import Judgement, NamedTarget, Need, PlacedRule, RuleOrder, Slot, Stage
from remediation.rules import (
    Action,
    AddressSet,
    ApplicationRule,
    FilterRule,
    NetworkRule,
    PortSet,
    Protocol,
    parse_application_rule,
    parse_network_rule,
)

NETWORK, APPLICATION = Stage.NETWORK, Stage.APPLICATION


def network(
    *,
    protocols: tuple[str, ...] = ("TCP",),
    sources: tuple[str, ...] = ("*",),
    addresses: tuple[str, ...] = (),
    fqdns: tuple[str, ...] = (),
    ports: tuple[str, ...] = ("*",),
    **wire: object,
) -> NetworkRule:
    return parse_network_rule(
        {
            "name": "rule",
            "ipProtocols": list(protocols),
            "sourceAddresses": list(sources),
            "destinationAddresses": list(addresses),
            "destinationFqdns": list(fqdns),
            "destinationPorts": list(ports),
            **wire,
        },
        groups=GROUPS,
    )


def application(
    *,
    sources: tuple[str, ...] = ("*",),
    protocols: tuple[tuple[str, int], ...] = (("Https", 443),),
    tags: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    **wire: object,
) -> ApplicationRule:
    return parse_application_rule(
        {
            "name": "app",
            "sourceAddresses": list(sources),
            "protocols": [{"protocolType": kind, "port": port} for kind, port in protocols],
            "fqdnTags": list(tags),
            "targetFqdns": list(targets),
            **wire,
        },
        groups=GROUPS,
    )


def slot(
    stage: Stage,
    *,
    depth: int = 0,
    group_priority: int = 200,
    group: str = "group",
    priority: int = 200,
    collection: str = "owned",
) -> Slot:
    """Where a rule collection is processed: stage, policy depth (0 is the root parent), group, collection."""
    return (stage, depth, group_priority, group, priority, collection)


def placed(
    action: Action,
    rule: FilterRule,
    *,
    depth: int = 0,
    group_priority: int = 200,
    priority: int = 200,
    collection: str | None = None,
    index: int = 0,
) -> PlacedRule:
    """``rule`` in a collection of ``action`` (named after its action and priority unless told)."""
    stage = NETWORK if isinstance(rule, NetworkRule) else APPLICATION
    where = slot(
        stage,
        depth=depth,
        group_priority=group_priority,
        priority=priority,
        collection=collection or f"{action.lower()}-{priority}",
    )
    position = (*where, index)
    return PlacedRule(rule=rule, action=action, position=position, location=f"{action} at {position}")


def allow(rule: FilterRule, **where: Any) -> PlacedRule:
    return placed(Action.ALLOW, rule, **where)


def deny(rule: FilterRule, **where: Any) -> PlacedRule:
    return placed(Action.DENY, rule, **where)


def judge(
    need: FilterRule | Need,
    *rules: PlacedRule,
    at: Slot | None = None,
    tag_contents: Mapping[str, Sequence[str]] | None = None,
    ignore: Collection[PlacedRule] = (),
) -> Judgement:
    """Judge ``need`` (a rule's traffic, or a need) against ``rules``, the owned collection at ``at``
    (by default: priority 200 in the network or application stage, as the need is)."""
    if not isinstance(need, Need):
        need = Need.of(need, tag_contents=tag_contents)
    if at is None:
        at = slot(APPLICATION if any(not isinstance(p, Protocol) for p in need.protocols) else NETWORK)
    return RuleOrder(rules).judge(need, slot=at, ignore=ignore)


def firsts(judgement: Judgement) -> set[PlacedRule | None]:
    return {part.first for part in judgement.parts}


NODES = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/aks-nodes"
GONE = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/deleted"
GROUPS = {NODES.lower(): AddressSet.parse(["10.240.0.0/16"])}

TUNNEL = network(protocols=("UDP",), sources=("10.240.0.0/16",), addresses=("AzureCloud.westeurope",), ports=("1194",))
HTTPS_TO_MCR = application(sources=("10.240.0.0/16",), targets=("mcr.microsoft.com",))
EVERYTHING = network(protocols=("Any",), addresses=("*",))
AKS_TAG = {"AzureKubernetesService": ["mcr.microsoft.com", "*.data.mcr.microsoft.com", "management.azure.com"]}


# --- Nothing, and the simplest answers --------------------------------------------------------------------------


def test_traffic_no_rule_matches_is_denied_and_needs_the_owned_rule() -> None:
    judgement = judge(TUNNEL)
    assert firsts(judgement) == {None}
    assert not judgement.allowed
    assert judgement.needs_owned_rule
    assert judgement.denied_first == judgement.overridden == ()


def test_a_foreign_allow_before_the_slot_allows_the_traffic() -> None:
    allowing = allow(TUNNEL, priority=100)
    judgement = judge(TUNNEL, allowing)
    assert firsts(judgement) == {allowing}
    assert judgement.allowed
    assert not judgement.needs_owned_rule


def test_a_foreign_allow_after_the_slot_allows_the_traffic_without_the_owned_rule() -> None:
    judgement = judge(TUNNEL, allow(TUNNEL, priority=300))
    assert judgement.allowed
    assert not judgement.needs_owned_rule


# --- Processing order -------------------------------------------------------------------------------------------


def test_network_rules_decide_before_application_rules_whatever_their_priorities() -> None:
    network_deny = deny(network(addresses=("*",), ports=("443",)), group_priority=65000, priority=65000)
    application_allow = allow(application(targets=("*",)), group_priority=100, priority=100)
    owned = slot(APPLICATION, group_priority=100, priority=50)
    judgement = judge(HTTPS_TO_MCR, network_deny, application_allow, at=owned)
    assert firsts(judgement) == {network_deny}
    assert judgement.denied_first == (network_deny,)  # before even the first application collection
    assert not judgement.needs_owned_rule
    assert not judgement.allowed


def test_an_https_packet_no_network_rule_matches_goes_on_to_the_application_rules() -> None:
    other_port = deny(network(addresses=("*",), ports=("80",)), priority=100)
    udp = deny(network(protocols=("UDP",), addresses=("*",), ports=("443",)), priority=100)
    application_allow = allow(application(targets=("mcr.microsoft.com",)), priority=100)
    judgement = judge(HTTPS_TO_MCR, other_port, udp, application_allow)
    assert firsts(judgement) == {application_allow}
    assert judgement.allowed


def test_a_network_allow_of_tcp_443_to_star_lets_https_through_before_an_application_deny() -> None:
    network_allow = allow(network(addresses=("*",), ports=("443",)), priority=300)
    application_deny = deny(application(targets=("*",)), priority=100)
    judgement = judge(HTTPS_TO_MCR, network_allow, application_deny, at=slot(APPLICATION, priority=50))
    assert firsts(judgement) == {network_allow}
    assert judgement.allowed
    assert judgement.overridden == ()


def test_a_parent_policy_decides_before_its_child_whatever_the_priorities() -> None:
    parent_deny = deny(TUNNEL, depth=0, group_priority=65000, priority=65000)
    child_allow = allow(TUNNEL, depth=1, group_priority=100, priority=100)
    judgement = judge(TUNNEL, child_allow, parent_deny, at=slot(NETWORK, depth=1, group_priority=100, priority=50))
    assert firsts(judgement) == {parent_deny}
    assert judgement.denied_first == (parent_deny,)
    assert not judgement.needs_owned_rule


def test_group_priority_decides_before_collection_priority() -> None:
    early_group = deny(TUNNEL, group_priority=100, priority=900)
    late_group = allow(TUNNEL, group_priority=200, priority=100)
    assert firsts(judge(TUNNEL, late_group, early_group, at=slot(NETWORK, group_priority=300))) == {early_group}


def test_collection_priority_decides_within_a_group() -> None:
    first = deny(TUNNEL, priority=100)
    second = allow(TUNNEL, priority=150)
    assert firsts(judge(TUNNEL, second, first)) == {first}


def test_collections_of_equal_priority_are_ordered_by_name() -> None:
    # The documentation does not order them; the evaluator's stated choice is the collection name.
    alpha = deny(TUNNEL, priority=100, collection="alpha")
    beta = allow(TUNNEL, priority=100, collection="beta")
    assert firsts(judge(TUNNEL, beta, alpha)) == {alpha}


def test_rule_order_inside_a_collection_picks_the_first_rule_but_never_changes_the_verdict() -> None:
    for wide_index, narrow_index in [(0, 1), (1, 0)]:
        wide = allow(network(protocols=("UDP",), addresses=("*",)), priority=100, index=wide_index)
        narrow = allow(TUNNEL, priority=100, index=narrow_index)
        judgement = judge(TUNNEL, narrow, wide)
        assert firsts(judgement) == {wide if wide_index < narrow_index else narrow}
        assert judgement.allowed


# --- Relative to the slot: what the owned rule can and cannot change --------------------------------------------


def test_a_foreign_allow_after_a_deny_proves_nothing_and_the_owned_rule_overrides_the_deny() -> None:
    blocking = deny(TUNNEL, priority=200)
    allowing = allow(TUNNEL, priority=300)
    judgement = judge(TUNNEL, blocking, allowing, at=slot(NETWORK, priority=100))
    assert firsts(judgement) == {blocking}
    assert not judgement.allowed
    assert judgement.needs_owned_rule
    assert judgement.overridden == (blocking,)
    assert judgement.denied_first == ()


def test_a_deny_before_the_slot_shadows_the_owned_rule() -> None:
    blocking = deny(TUNNEL, priority=200)
    judgement = judge(TUNNEL, blocking, allow(TUNNEL, priority=300), at=slot(NETWORK, priority=250))
    assert judgement.denied_first == (blocking,)
    assert not judgement.needs_owned_rule
    assert judgement.overridden == ()


def test_a_deny_after_an_allow_that_already_takes_the_traffic_is_not_reported() -> None:
    judgement = judge(TUNNEL, allow(TUNNEL, priority=100), deny(EVERYTHING, priority=150))
    assert judgement.allowed
    assert judgement.denied_first == judgement.overridden == ()
    assert judgement.missing() == ""


def test_denies_are_reported_in_processing_order_each_once() -> None:
    late = deny(network(protocols=("UDP",), sources=("10.240.128.0/17",), addresses=("*",)), priority=150)
    early = deny(network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("*",)), priority=100)
    also_late = deny(network(protocols=("UDP",), addresses=("AzureCloud",)), priority=150, index=1)
    assert judge(TUNNEL, late, also_late, early).denied_first == (early, late)


def test_ignored_rules_are_left_out() -> None:
    owned = allow(TUNNEL, collection="owned")
    assert judge(TUNNEL, owned).allowed
    judgement = judge(TUNNEL, owned, ignore=[owned])
    assert judgement.needs_owned_rule
    assert firsts(judgement) == {None}


def test_ignoring_a_deny_lets_the_rule_behind_it_decide() -> None:
    blocking = deny(TUNNEL, priority=100)
    allowing = allow(TUNNEL, priority=150)
    assert firsts(judge(TUNNEL, blocking, allowing, ignore=[blocking])) == {allowing}


# --- Parts of the traffic ----------------------------------------------------------------------------------------


def test_traffic_may_be_allowed_by_two_rules_split_by_source() -> None:
    first_half = allow(network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("AzureCloud",)), priority=100)
    second_half = network(protocols=("UDP",), sources=("10.240.128.0/17",), addresses=("*",))
    judgement = judge(TUNNEL, first_half, allow(second_half, priority=150))
    assert judgement.allowed
    assert len(firsts(judgement)) == 2


def test_missing_names_the_part_nothing_allows() -> None:
    half = allow(network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("AzureCloud",)), priority=100)
    judgement = judge(TUNNEL, half)
    assert judgement.needs_owned_rule
    assert judgement.missing() == "UDP 1194 from 10.240.128.0/17 to AzureCloud.westeurope"


def test_missing_names_a_protocol_nothing_allows() -> None:
    tcp = network(protocols=("TCP", "UDP"), addresses=("20.0.0.1",), ports=("443",))
    judgement = judge(tcp, allow(network(addresses=("20.0.0.1",), ports=("443",)), priority=100))
    assert judgement.missing() == "UDP 443 from * to 20.0.0.1"


def test_missing_cuts_a_long_list_short() -> None:
    sieve = [
        allow(network(protocols=("UDP",), sources=(f"10.240.{i}.0/24",), addresses=("*",)), priority=100, index=i)
        for i in range(0, 40, 2)
    ]
    missing = judge(TUNNEL, *sieve).missing()
    assert missing.count("; ") == 8
    assert missing.endswith("; and more")


def test_icmp_is_matched_whatever_the_ports_of_the_rule() -> None:
    ping = network(protocols=("ICMP",), addresses=("10.0.0.1",), ports=("*",))
    blocking = deny(network(protocols=("ICMP",), addresses=("10.0.0.0/8",), ports=("7",)), priority=100)
    assert judge(ping, blocking).denied_first == (blocking,)


def test_protocol_any_with_explicit_ports_does_not_match_icmp() -> None:
    ping = network(protocols=("ICMP",), addresses=("10.0.0.1",))
    any_on_a_port = allow(network(protocols=("Any",), addresses=("*",), ports=("7",)), priority=100)
    any_on_star = allow(network(protocols=("Any",), addresses=("*",), ports=("*",)), priority=150)
    assert firsts(judge(ping, any_on_a_port, any_on_star)) == {any_on_star}


def test_deny_on_other_ports_protocols_or_sources_does_not_shadow() -> None:
    judgement = judge(
        TUNNEL,
        deny(network(protocols=("UDP",), addresses=("*",), ports=("1195",)), priority=100),
        deny(network(protocols=("TCP",), addresses=("*",), ports=("1194",)), priority=100, index=1),
        deny(network(protocols=("UDP",), sources=("10.241.0.0/16",), addresses=("*",)), priority=100, index=2),
    )
    assert judgement.denied_first == ()
    assert firsts(judgement) == {None}


def test_application_denies_never_take_network_traffic() -> None:
    star = deny(application(protocols=(("Https", 1194),), targets=("*",)), priority=100)
    assert firsts(judge(TUNNEL, star)) == {None}


ONE_ADDRESS = AddressSet.parse(["20.1.2.3"])


def test_first_match_answers_for_one_packet_and_refuses_more() -> None:
    rule = allow(TUNNEL, priority=100)
    one = Need(
        AddressSet.parse(["10.240.0.1"]),
        frozenset({Protocol.UDP}),
        PortSet.parse(["1194"]),
        names=(NamedTarget("AzureCloud.westeurope", "azurecloud.westeurope", "service tag", addresses=ONE_ADDRESS),),
    )
    assert RuleOrder([rule]).first_match(one) == rule
    with pytest.raises(ValueError, match="one packet"):
        half = allow(network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("*",)), priority=50)
        RuleOrder([half, rule]).first_match(Need.of(TUNNEL))


# --- Service tags and addresses whose real values are unknown ----------------------------------------------------


def test_a_deny_on_the_parent_tag_shadows_a_regional_tag() -> None:
    blocking = deny(network(protocols=("UDP",), addresses=("AzureCloud",)), priority=100)
    assert judge(TUNNEL, blocking).denied_first == (blocking,)


def test_a_deny_on_azurecloud_shadows_another_services_tag() -> None:
    blocking = deny(network(protocols=("Any",), addresses=("azurecloud",)), priority=100)
    storage = network(addresses=("Storage.WestEurope",), ports=("443",))
    assert judge(storage, blocking).denied_first == (blocking,)


def test_a_deny_on_a_region_shadows_part_of_its_parent_tag_and_other_regions_do_not() -> None:
    regional = deny(network(protocols=("UDP",), addresses=("AzureCloud.westeurope",)), priority=100)
    other_region = deny(network(protocols=("UDP",), addresses=("AzureCloud.northeurope",)), priority=100, index=1)
    parent = network(protocols=("UDP",), addresses=("AzureCloud",), ports=("1194",))
    judgement = judge(parent, regional, other_region)
    assert judgement.denied_first == (regional, other_region)
    assert judgement.needs_owned_rule  # the rest of AzureCloud
    assert judge(TUNNEL, other_region).denied_first == ()


def test_different_services_tags_are_disjoint() -> None:
    storage = deny(network(protocols=("UDP",), addresses=("Storage.westeurope",)), priority=100)
    assert firsts(judge(TUNNEL, storage)) == {None}


def test_service_tags_compare_case_insensitively() -> None:
    shouting = allow(network(protocols=("udp",), addresses=("AZURECLOUD.WESTEUROPE",), ports=("1194",)), priority=100)
    assert judge(TUNNEL, shouting).allowed


def test_a_deny_split_over_two_collections_covering_every_address_shadows_a_service_tag() -> None:
    lower_half = deny(network(protocols=("UDP",), addresses=("0.0.0.0/1",)), priority=100)
    upper_half = deny(network(protocols=("UDP",), addresses=("128.0.0.0/1",)), priority=150, collection="other")
    judgement = judge(TUNNEL, upper_half, lower_half)
    assert judgement.denied_first == (lower_half, upper_half)
    assert not judgement.needs_owned_rule


def test_a_deny_on_some_addresses_alone_does_not_shadow_a_service_tag() -> None:
    judgement = judge(TUNNEL, deny(network(protocols=("UDP",), addresses=("20.0.0.0/8",)), priority=100))
    assert judgement.denied_first == ()
    assert judgement.needs_owned_rule  # the addresses outside 20.0.0.0/8
    assert not judgement.allowed


def test_a_deny_on_private_addresses_never_meets_a_service_tag() -> None:
    # A name whose addresses are unknown is assumed to resolve to public addresses (stated in the README).
    private = deny(network(protocols=("UDP",), addresses=("10.0.0.0/8", "192.168.0.0/16")), priority=100)
    judgement = judge(TUNNEL, private)
    assert firsts(judgement) == {None}
    assert judgement.denied_first == ()


def test_a_deny_on_every_public_address_shadows_a_service_tag() -> None:
    public = deny(
        network(protocols=("UDP",), addresses=("1.0.0.0-9.255.255.255", "11.0.0.0-223.255.255.255")), priority=100
    )
    judgement = judge(TUNNEL, public)
    assert judgement.denied_first == (public,)
    assert not judgement.needs_owned_rule


def test_address_ranges_allow_only_part_of_a_service_tag() -> None:
    wide = allow(network(protocols=("UDP",), addresses=("0.0.0.0/1", "128.0.0.0/2")), priority=100)
    judgement = judge(TUNNEL, wide)
    assert not judgement.allowed
    assert judgement.needs_owned_rule


def test_address_ranges_covering_every_address_allow_a_service_tag() -> None:
    halves = [
        allow(network(protocols=("UDP",), addresses=("0.0.0.0/1",)), priority=100),
        allow(network(protocols=("UDP",), addresses=("128.0.0.0/1",)), priority=100, index=1),
    ]
    assert judge(TUNNEL, *halves).allowed


def test_a_deny_on_addresses_shadows_a_name_known_to_resolve_inside_them() -> None:
    blocking = deny(network(protocols=("UDP",), addresses=("20.0.0.0/8",)), priority=100)
    known = Need.of(TUNNEL)
    (target,) = known.names
    resolved = Need(
        known.sources,
        known.protocols,
        known.ports,
        names=(NamedTarget(target.name, target.key, target.kind, addresses=AddressSet.parse(["20.1.2.0/24"])),),
    )
    assert judge(resolved, blocking).denied_first == (blocking,)


def test_star_destination_matches_tags_fqdns_and_addresses() -> None:
    star = allow(network(protocols=("Any",), addresses=("*",)), priority=100)
    wanted = network(addresses=("AzureMonitor", "20.1.2.3"), fqdns=("ntp.ubuntu.com",), ports=("443",))
    judgement = judge(wanted, star)
    assert judgement.allowed
    assert firsts(judgement) == {star}


# --- IP Groups -----------------------------------------------------------------------------------------------------


def test_a_deny_from_an_ip_group_shadows_traffic_from_its_addresses() -> None:
    from_nodes = deny(network(protocols=("UDP",), sources=(), addresses=("*",), sourceIpGroups=[NODES]), priority=100)
    assert judge(TUNNEL, from_nodes).denied_first == (from_nodes,)


def test_a_deny_to_an_ip_group_shadows_traffic_to_its_addresses() -> None:
    to_nodes = deny(network(destinationIpGroups=[NODES]), priority=100)
    kubelet = network(sources=("10.1.0.0/16",), addresses=("10.240.0.4",), ports=("10250",))
    assert judge(kubelet, to_nodes).denied_first == (to_nodes,)


def test_an_ip_group_that_could_not_be_read_matches_nothing() -> None:
    unknown = deny(network(protocols=("UDP",), sources=(), addresses=("*",), sourceIpGroups=[GONE]), priority=100)
    assert firsts(judge(TUNNEL, unknown)) == {None}


# --- FQDNs and FQDN tags ------------------------------------------------------------------------------------------


def test_a_dot_wildcard_matches_names_below_the_domain_but_not_the_domain() -> None:
    wildcard = deny(application(targets=("*.contoso.com",)), priority=100)
    assert judge(application(targets=("a.contoso.com",)), wildcard).denied_first == (wildcard,)
    assert judge(application(targets=("b.a.contoso.com",)), wildcard).denied_first == (wildcard,)
    assert judge(application(targets=("contoso.com",)), wildcard).denied_first == ()
    assert judge(application(targets=("notcontoso.com",)), wildcard).denied_first == ()


def test_a_wildcard_without_a_dot_matches_the_domain_and_any_name_ending_alike() -> None:
    suffix = deny(application(targets=("*contoso.com",)), priority=100)
    assert judge(application(targets=("contoso.com",)), suffix).denied_first == (suffix,)
    assert judge(application(targets=("notcontoso.com",)), suffix).denied_first == (suffix,)
    assert judge(application(targets=("*.contoso.com",)), suffix).denied_first == (suffix,)
    assert judge(application(targets=("contoso.org",)), suffix).denied_first == ()


def test_a_wildcard_takes_the_names_it_holds_before_a_later_rule_naming_one_of_them() -> None:
    suffix = allow(application(targets=("*a.contoso.com",)), priority=100)
    apex = deny(application(targets=("a.contoso.com",)), priority=150)
    judgement = judge(application(targets=("*.contoso.com",)), apex, suffix)
    assert judgement.denied_first == ()
    assert suffix in firsts(judgement)
    assert judgement.needs_owned_rule  # the names below contoso.com not ending in a.contoso.com


def test_a_deny_on_a_name_below_a_wanted_wildcard_shadows_part_of_it() -> None:
    below = deny(application(targets=("b.a.contoso.com",)), priority=100)
    judgement = judge(application(targets=("*.contoso.com",)), below)
    assert judgement.denied_first == (below,)
    assert judgement.needs_owned_rule


def test_an_exact_name_does_not_allow_a_wildcard() -> None:
    exact = allow(application(targets=("a.contoso.com",)), priority=100)
    assert not judge(application(targets=("*.contoso.com",)), exact).allowed


def test_an_application_deny_on_a_name_the_aks_tag_lists_shadows_the_tag() -> None:
    blocking = deny(application(targets=("MCR.microsoft.com",)), priority=100)
    judgement = judge(application(tags=("AzureKubernetesService",)), blocking, tag_contents=AKS_TAG)
    assert judgement.denied_first == (blocking,)
    assert judgement.needs_owned_rule  # the tag's other names
    assert "management.azure.com" in judgement.missing()


def test_without_its_contents_an_fqdn_tag_is_met_only_by_itself_or_star() -> None:
    by_name = deny(application(targets=("mcr.microsoft.com",)), priority=100)
    by_tag = allow(application(tags=("azurekubernetesservice",)), priority=150)
    judgement = judge(application(tags=("AzureKubernetesService",)), by_name, by_tag)
    assert firsts(judgement) == {by_tag}
    star = deny(application(targets=("*",)), priority=100)
    assert judge(application(tags=("AzureKubernetesService",)), star).denied_first == (star,)


def test_an_fqdn_tag_rule_matches_every_name_the_tag_lists() -> None:
    by_tag = allow(application(tags=("AzureKubernetesService",)), priority=100)
    judgement = judge(application(tags=("AzureKubernetesService",)), by_tag, tag_contents=AKS_TAG)
    assert judgement.allowed
    assert firsts(judgement) == {by_tag}


def test_an_fqdn_tag_rule_does_not_match_a_name_its_tag_does_not_list() -> None:
    by_tag = allow(application(tags=("AzureKubernetesService",)), priority=100)
    assert not judge(application(targets=("example.org",)), by_tag, tag_contents=AKS_TAG).allowed


def test_an_application_rule_needs_the_protocol_and_port() -> None:
    https_only = allow(application(tags=("AzureKubernetesService",)), priority=100)
    wanted = application(protocols=(("Http", 80), ("Https", 443)), tags=("AzureKubernetesService",))
    judgement = judge(wanted, https_only)
    assert not judgement.allowed
    assert judgement.missing() == "Http:80 from * to AzureKubernetesService"


def test_application_destination_addresses_narrow_a_rule_to_those_addresses() -> None:
    narrowed = deny(application(targets=("mcr.microsoft.com",), destinationAddresses=["20.0.0.0/8"]), priority=100)
    judgement = judge(HTTPS_TO_MCR, narrowed)
    assert judgement.denied_first == ()  # mcr.microsoft.com may resolve elsewhere
    assert narrowed in firsts(judgement)
    assert judgement.needs_owned_rule


def test_a_network_rule_to_an_fqdn_takes_https_to_that_name_first() -> None:
    by_fqdn = deny(network(fqdns=("mcr.microsoft.com",), ports=("443",)), priority=300)
    application_allow = allow(application(targets=("*",)), priority=100)
    judgement = judge(HTTPS_TO_MCR, by_fqdn, application_allow, at=slot(APPLICATION, priority=50))
    assert firsts(judgement) == {by_fqdn}


def test_fqdn_rules_reports_network_allows_that_match_by_fqdn() -> None:
    ntp = network(protocols=("UDP",), sources=("10.240.0.0/16",), fqdns=("ntp.ubuntu.com",), ports=("123",))
    by_fqdn = allow(network(protocols=("UDP",), fqdns=("NTP.ubuntu.com",), ports=("123",)), priority=100)
    judgement = judge(ntp, by_fqdn)
    assert judgement.allowed
    assert judgement.fqdn_rules == (by_fqdn,)


def test_fqdn_rules_leaves_out_allows_that_match_by_address() -> None:
    ntp = network(protocols=("UDP",), fqdns=("ntp.ubuntu.com",), ports=("123",))
    by_address = allow(network(protocols=("UDP",), addresses=("*",), fqdns=("ntp.ubuntu.com",)), priority=100)
    judgement = judge(ntp, by_address)
    assert judgement.allowed
    assert judgement.fqdn_rules == ()


def test_fqdn_rules_reports_a_network_fqdn_allow_carrying_https() -> None:
    by_fqdn = allow(network(fqdns=("mcr.microsoft.com",), ports=("443",)), priority=100)
    judgement = judge(HTTPS_TO_MCR, by_fqdn)
    assert judgement.allowed
    assert judgement.fqdn_rules == (by_fqdn,)


def test_fqdn_rules_leaves_out_denies() -> None:
    ntp = network(protocols=("UDP",), fqdns=("ntp.ubuntu.com",), ports=("123",))
    by_fqdn = deny(network(protocols=("UDP",), fqdns=("ntp.ubuntu.com",)), priority=100)
    judgement = judge(ntp, by_fqdn)
    assert judgement.fqdn_rules == ()
    assert judgement.denied_first == (by_fqdn,)


# --- Needs ---------------------------------------------------------------------------------------------------------


def test_a_network_need_names_its_tags_and_fqdns_with_unknown_addresses() -> None:
    need = Need.of(network(addresses=("20.0.0.1", "AzureCloud"), fqdns=("NTP.ubuntu.com",), ports=("123",)))
    assert need.addresses == AddressSet.parse(["20.0.0.1"])
    assert [(t.name, t.key, t.kind, t.addresses) for t in need.names] == [
        ("AzureCloud", "azurecloud", "service tag", None),
        ("NTP.ubuntu.com", "ntp.ubuntu.com", "fqdn", None),
    ]


def test_a_name_of_unknown_addresses_may_have_any_public_address() -> None:
    (target,) = Need.of(TUNNEL).names
    assert target.span.covers(AddressSet.parse(["1.0.0.0-9.255.255.255", "11.0.0.0/8", "128.0.0.0/3"]))
    private = AddressSet.parse(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8"])
    assert not target.span.intersects(private)


def test_an_application_need_lists_the_names_of_its_tags_and_carries_the_tag() -> None:
    need = Need.of(application(tags=("AzureKubernetesService",), targets=("example.org",)), tag_contents=AKS_TAG)
    carried = {t.key: t.fqdn_tags for t in need.names}
    assert carried == {
        "mcr.microsoft.com": {"azurekubernetesservice"},
        "*.data.mcr.microsoft.com": {"azurekubernetesservice"},
        "management.azure.com": {"azurekubernetesservice"},
        "example.org": frozenset(),
    }


def test_an_application_need_keeps_a_tag_of_unknown_contents_as_one_opaque_name() -> None:
    (target,) = Need.of(application(tags=("WindowsUpdate",)), tag_contents=AKS_TAG).names
    assert (target.name, target.key, target.kind, target.fqdn_tags) == (
        "WindowsUpdate",
        "tag:windowsupdate",
        "fqdn tag",
        frozenset({"windowsupdate"}),
    )


# --- Found by the reference simulation, fixed since ---------------------------------------------------------------


def test_an_fqdn_tag_deny_shadows_a_name_the_tag_lists_even_when_the_need_names_it_directly() -> None:
    # An application rule naming an FQDN tag matches every name the tag stands for, however the need came to
    # name it: Need.of is told (tag_contents) that AzureKubernetesService lists mcr.microsoft.com.
    blocking = deny(application(tags=("AzureKubernetesService",)), priority=100)
    judgement = judge(HTTPS_TO_MCR, blocking, tag_contents=AKS_TAG)
    assert judgement.denied_first == (blocking,)
    assert not judgement.needs_owned_rule


def test_a_deny_on_part_of_the_addresses_an_application_need_is_narrowed_to_does_not_shadow_it() -> None:
    # A Deny is reported as shadowing only where it decides every address the name may have: an application
    # rule's destinationAddresses (20.0.0.0/8) narrow where mcr.microsoft.com may resolve, they do not say
    # where it does, so a Deny on half of them (20.0.0.0/9) decides nothing for sure.
    narrowed = application(targets=("mcr.microsoft.com",), destinationAddresses=["20.0.0.0/8"])
    half = deny(network(addresses=("20.0.0.0/9",), ports=("443",)), priority=100)
    judgement = judge(narrowed, half)
    assert judgement.needs_owned_rule
    assert judgement.denied_first == ()


def test_a_deny_on_half_the_internet_alone_does_not_shadow_a_service_tag() -> None:
    # A Deny is reported only where it decides every address a name may have. Unknown addresses span every
    # *public* address, several intervals (1.0.0.0-9.255.255.255, 11.0.0.0-100.63.255.255, ...), decided
    # together: a Deny on 0.0.0.0/1 holds whole intervals of the span, but not the addresses above 128.0.0.0.
    lower_half = deny(network(protocols=("UDP",), addresses=("0.0.0.0/1",)), priority=100)
    judgement = judge(TUNNEL, lower_half)
    assert judgement.needs_owned_rule
    assert judgement.denied_first == ()


def test_a_deny_on_half_the_addresses_before_the_slot_and_half_after_it_shadows_nothing() -> None:
    # The lower half is denied before the slot, the upper half only after it, so the owned rule still decides
    # part of the traffic.
    before = deny(network(protocols=("UDP",), addresses=("0.0.0.0/1",)), priority=100)
    after = deny(network(protocols=("UDP",), addresses=("128.0.0.0/1",)), priority=300)
    judgement = judge(TUNNEL, before, after)
    assert judgement.denied_first == ()
    assert judgement.overridden == (after,)
    assert judgement.needs_owned_rule
