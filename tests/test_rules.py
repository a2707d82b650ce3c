"""Specification of the rule algebra: sets of addresses and ports, parsing wire rules, names, and semantic equality.

How rules decide traffic in order (first match, shadowing) is specified in ``test_evaluation.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediation.rules import (
    AddressSet,
    ApplicationRule,
    AppProtocol,
    Destinations,
    NetworkRule,
    PortSet,
    Protocol,
    RuleSyntaxError,
    fqdn_covers,
    ip_group_addresses,
    ip_group_references,
    parse_application_rule,
    parse_network_rule,
    same_traffic,
    tag_covers,
)

EXAMPLES = Path(__file__).parent / "fixtures" / "arm-examples"


def network(
    *,
    protocols: tuple[str, ...] = ("TCP",),
    sources: tuple[str, ...] = ("*",),
    addresses: tuple[str, ...] = (),
    fqdns: tuple[str, ...] = (),
    ports: tuple[str, ...] = ("*",),
    name: str = "rule",
) -> NetworkRule:
    return parse_network_rule(
        {
            "name": name,
            "ruleType": "NetworkRule",
            "ipProtocols": list(protocols),
            "sourceAddresses": list(sources),
            "destinationAddresses": list(addresses),
            "destinationFqdns": list(fqdns),
            "destinationPorts": list(ports),
        },
        strict=True,
    )


def application(
    *,
    sources: tuple[str, ...] = ("*",),
    protocols: tuple[tuple[str, int], ...] = (("Https", 443),),
    tags: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    name: str = "app",
) -> ApplicationRule:
    return parse_application_rule(
        {
            "name": name,
            "ruleType": "ApplicationRule",
            "sourceAddresses": list(sources),
            "protocols": [{"protocolType": kind, "port": port} for kind, port in protocols],
            "fqdnTags": list(tags),
            "targetFqdns": list(targets),
        },
        strict=True,
    )


# --- Ports -----------------------------------------------------------------------------------------------


def test_port_set_reads_single_ports_ranges_and_star() -> None:
    assert PortSet.parse(["443", "80-90"]).intervals == ((80, 90), (443, 443))
    assert PortSet.parse(["*"]) == PortSet.ANY


def test_port_set_merges_overlapping_and_adjacent_ranges() -> None:
    assert PortSet.parse(["80-90", "85-100", "101", "200"]) == PortSet(((80, 101), (200, 200)))


def test_port_set_tolerates_spaces_and_numbers_in_wire_lists() -> None:
    assert PortSet.parse([" 80 - 90 ", 443]) == PortSet(((80, 90), (443, 443)))


@pytest.mark.parametrize("junk", ["http", "0", "70000", "90-80", "1-2-3", "", "-5"])
def test_port_set_drops_unreadable_entries(junk: str) -> None:
    assert PortSet.parse([junk, "22"]) == PortSet(((22, 22),))


@pytest.mark.parametrize("junk", ["http", "0", "70000", "90-80"])
def test_strict_port_parsing_refuses_unreadable_entries(junk: str) -> None:
    with pytest.raises(RuleSyntaxError, match="port"):
        PortSet.parse([junk], strict=True)


def test_port_set_prints_for_humans() -> None:
    assert str(PortSet.parse(["443", "80-90"])) == "80-90, 443"
    assert str(PortSet.ANY) == "*"


def test_port_set_minus_splits_a_range() -> None:
    assert PortSet.parse(["1-2000"]).minus(PortSet.parse(["1001-1500"])) == PortSet.parse(["1-1000", "1501-2000"])


def test_port_set_refuses_values_outside_the_port_range() -> None:
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        PortSet(((0, 10),))


# --- Addresses -------------------------------------------------------------------------------------------


def test_address_set_reads_addresses_cidrs_ranges_and_star() -> None:
    parsed = AddressSet.parse(["10.0.0.1", "10.1.0.0/16", "192.168.1.1-192.168.1.12"])
    assert str(parsed) == "10.0.0.1, 10.1.0.0/16, 192.168.1.1-192.168.1.12"
    assert AddressSet.parse(["*"]) == AddressSet.ANY


def test_zero_prefix_is_the_same_as_star() -> None:
    assert AddressSet.parse(["0.0.0.0/0"]) == AddressSet.ANY
    assert str(AddressSet.ANY) == "*"


def test_cidr_spelling_and_range_spelling_are_the_same_set() -> None:
    assert AddressSet.parse(["10.0.0.0/24"]) == AddressSet.parse(["10.0.0.0-10.0.0.255"])


def test_adjacent_blocks_merge_into_one_interval() -> None:
    halves = AddressSet.parse(["10.240.0.0/17", "10.240.128.0/17"])
    assert halves == AddressSet.parse(["10.240.0.0/16"])
    assert str(halves) == "10.240.0.0/16"


def test_cidr_with_host_bits_is_read_as_its_network_but_refused_when_strict() -> None:
    assert AddressSet.parse(["10.0.0.5/24"]) == AddressSet.parse(["10.0.0.0/24"])
    with pytest.raises(RuleSyntaxError):
        AddressSet.parse(["10.0.0.5/24"], strict=True)


@pytest.mark.parametrize(
    "junk", ["2001:db8::/32", "::1", "10.0.0.256", "010.0.0.1", "10.0.0", "10.0.0.0/33", "10.0.0.9-10.0.0.1"]
)
def test_unreadable_and_ipv6_addresses_match_nothing(junk: str) -> None:
    assert AddressSet.parse([junk]).is_empty


def test_address_set_tolerates_spaces() -> None:
    assert AddressSet.parse([" 10.0.0.0 / 24 "]) == AddressSet.parse(["10.0.0.0/24"])


def test_address_set_algebra_answers_containment_and_overlap() -> None:
    vnet = AddressSet.parse(["10.240.0.0/16"])
    half = AddressSet.parse(["10.240.0.0/17"])
    assert vnet.covers(half)
    assert not half.covers(vnet)
    assert half.intersects(vnet)
    assert not half.intersects(AddressSet.parse(["10.240.128.0/17"]))
    assert vnet.minus(half) == AddressSet.parse(["10.240.128.0/17"])
    assert (10 << 24 | 240 << 16 | 5) in half


# --- Parsing rules ---------------------------------------------------------------------------------------


def test_classic_and_policy_network_rules_parse_to_the_same_rule() -> None:
    common = {"name": "apiudp", "sourceAddresses": ["*"], "destinationAddresses": ["AzureCloud.westeurope"]}
    classic = parse_network_rule({**common, "protocols": ["UDP"], "destinationPorts": ["1194"]})
    policy = parse_network_rule(
        {**common, "ruleType": "NetworkRule", "ipProtocols": ["UDP"], "destinationPorts": ["1194"]}
    )
    assert classic == policy
    assert classic.protocols == {Protocol.UDP}
    assert classic.destinations.service_tags == {"AzureCloud.westeurope"}


def test_protocol_any_with_star_ports_means_tcp_udp_and_icmp() -> None:
    assert network(protocols=("Any",), ports=("*",)).protocols == {Protocol.TCP, Protocol.UDP, Protocol.ICMP}


def test_protocol_any_with_explicit_ports_means_tcp_and_udp() -> None:
    assert network(protocols=("Any",), ports=("53",)).protocols == {Protocol.TCP, Protocol.UDP}
    assert network(protocols=("any",), ports=("1-1024", "8080")).protocols == {Protocol.TCP, Protocol.UDP}


def test_explicit_icmp_next_to_explicit_ports_stays_icmp() -> None:
    assert network(protocols=("ICMP", "TCP"), ports=("443",)).protocols == {Protocol.ICMP, Protocol.TCP}


def test_protocols_are_read_case_insensitively() -> None:
    rule = parse_network_rule({"ipProtocols": [" tcp", "Udp "], "destinationAddresses": ["*"]})
    assert rule.protocols == {Protocol.TCP, Protocol.UDP}


def test_destination_addresses_split_into_ranges_and_service_tags() -> None:
    destinations = Destinations.parse(addresses=["10.0.0.0/8", " AzureMonitor ", "Storage.WestEurope", "::1"])
    assert destinations.addresses == AddressSet.parse(["10.0.0.0/8"])
    assert destinations.service_tags == {"AzureMonitor", "Storage.WestEurope"}


def test_destination_fqdns_keep_their_spelling_and_lose_a_trailing_dot() -> None:
    assert Destinations.parse(fqdns=["NTP.ubuntu.com."]).fqdns == {"NTP.ubuntu.com"}


def test_unreadable_entries_in_foreign_rules_never_raise() -> None:
    rule = parse_network_rule(
        {
            "ipProtocols": ["TCP", "SCTP", None],
            "sourceAddresses": "10.0.0.0/8",
            "destinationAddresses": [{"odd": 1}, "fe80::1"],
            "destinationPorts": ["443", "https"],
        }
    )
    assert rule.protocols == {Protocol.TCP}
    assert rule.sources == AddressSet.parse(["10.0.0.0/8"])
    assert rule.destinations.is_empty
    assert rule.ports == PortSet.parse(["443"])


def test_a_wire_value_that_is_not_a_rule_object_parses_to_a_rule_matching_nothing() -> None:
    rule = parse_network_rule(["not", "a", "rule"])  # type: ignore[arg-type]
    assert same_traffic(rule, network(sources=()))


def test_strict_parsing_refuses_what_it_cannot_evaluate() -> None:
    with pytest.raises(RuleSyntaxError, match="SCTP"):
        parse_network_rule({"ipProtocols": ["SCTP"]}, strict=True)
    with pytest.raises(RuleSyntaxError, match="IP Groups"):
        parse_network_rule({"ipProtocols": ["TCP"], "sourceIpGroups": ["/subscriptions/x/ipGroups/g"]}, strict=True)
    with pytest.raises(RuleSyntaxError, match="webCategories"):
        parse_application_rule({"webCategories": ["Hacking"]}, strict=True)


def test_geo_filtered_network_rule_matches_nothing() -> None:
    wire = json.loads((EXAMPLES / "FirewallPolicyRuleCollectionGroupGet.json").read_text())
    (wire_rule,) = wire["responses"]["200"]["body"]["properties"]["ruleCollections"][0]["rules"]
    rule = parse_network_rule(wire_rule)
    assert rule.sources.is_empty
    assert same_traffic(rule, network(sources=()))


def test_classic_firewall_example_parses_ranges_and_fqdns() -> None:
    wire = json.loads((EXAMPLES / "AzureFirewallGet.json").read_text())
    collection = wire["responses"]["200"]["body"]["properties"]["networkRuleCollections"][0]
    by_address, by_fqdn = (parse_network_rule(rule) for rule in collection["properties"]["rules"])
    assert str(by_address.sources) == "10.1.4.12-10.1.4.255, 192.168.1.1-192.168.1.12"
    assert by_address.destinations.is_any
    assert str(by_address.ports) == "443-444, 8443"
    assert by_fqdn.destinations.fqdns == {"www.amazon.com"}


def test_application_protocols_are_canonicalised() -> None:
    rule = parse_application_rule(
        {"protocols": [{"protocolType": "https", "port": "443"}, {"protocolType": "HTTP", "port": 80}]}
    )
    assert rule.protocols == {AppProtocol("Https", 443), AppProtocol("Http", 80)}
    assert str(AppProtocol("mssql", 1433)) == "Mssql:1433"


def test_unknown_application_protocols_are_dropped_or_refused() -> None:
    wire = {"protocols": [{"protocolType": "Ftp", "port": 21}, {"protocolType": "Https"}]}
    assert parse_application_rule(wire).protocols == frozenset()
    with pytest.raises(RuleSyntaxError):
        parse_application_rule(wire, strict=True)
    with pytest.raises(RuleSyntaxError):
        AppProtocol("Ftp", 21)


def test_web_category_rule_names_no_destination() -> None:
    wire = json.loads((EXAMPLES / "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut.json").read_text())
    (wire_rule,) = wire["parameters"]["parameters"]["properties"]["ruleCollections"][0]["rules"]
    rule = parse_application_rule(wire_rule)
    assert rule.fqdn_tags == frozenset()
    assert rule.target_fqdns == frozenset()


def test_application_rule_destination_addresses_narrow_it_to_those_addresses() -> None:
    wire = {
        "sourceAddresses": ["*"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": ["mcr.microsoft.com"],
        "destinationAddresses": ["20.0.0.0/8", "40.1.2.3"],
    }
    rule = parse_application_rule(wire)
    assert rule.target_fqdns == {"mcr.microsoft.com"}
    assert rule.destinations == AddressSet.parse(["20.0.0.0/8", "40.1.2.3"])


def test_application_rule_without_destination_addresses_applies_to_every_address() -> None:
    wire = {"sourceAddresses": ["*"], "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["a.b"]}
    assert parse_application_rule(wire).destinations == AddressSet.ANY
    assert parse_application_rule({**wire, "destinationAddresses": []}).destinations == AddressSet.ANY
    assert parse_application_rule({**wire, "destinationAddresses": ["*"]}).destinations == AddressSet.ANY


def test_application_rule_narrowed_to_unreadable_addresses_applies_nowhere() -> None:
    wire = {
        "sourceAddresses": ["*"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": ["a.b"],
        "destinationAddresses": ["2001:db8::1"],
    }
    assert parse_application_rule(wire).destinations.is_empty
    assert same_traffic(parse_application_rule(wire), application(sources=(), targets=("a.b",)))


def test_strict_parsing_refuses_destination_addresses_on_application_rules() -> None:
    with pytest.raises(RuleSyntaxError, match="destinationAddresses"):
        parse_application_rule(
            {
                "sourceAddresses": ["*"],
                "protocols": [{"protocolType": "Https", "port": 443}],
                "targetFqdns": ["a.b"],
                "destinationAddresses": ["20.0.0.0/8"],
            },
            strict=True,
        )


def test_terminate_tls_is_read_only_when_it_is_true() -> None:
    wire = {"sourceAddresses": ["*"], "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["a.b"]}
    assert parse_application_rule({**wire, "terminateTLS": True}).terminate_tls
    assert not parse_application_rule(wire).terminate_tls
    assert not parse_application_rule({**wire, "terminateTLS": "true"}).terminate_tls


def test_a_suffix_wildcard_without_a_dot_is_a_valid_target() -> None:
    assert application(targets=("*contoso.com",)).target_fqdns == {"*contoso.com"}
    assert Destinations.parse(fqdns=["*contoso.com"], strict=True).fqdns == {"*contoso.com"}


@pytest.mark.parametrize("junk", ["www.*.com", "contoso.*", "**.contoso.com", "a..b", "*-"])
def test_a_wildcard_anywhere_but_the_front_is_not_an_fqdn(junk: str) -> None:
    with pytest.raises(RuleSyntaxError, match="FQDN"):
        Destinations.parse(fqdns=[junk], strict=True)
    assert Destinations.parse(fqdns=[junk]).fqdns == frozenset()


# --- IP Groups ------------------------------------------------------------------------------------------

NODES = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/aks-nodes"
PODS = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/aks-pods"
GONE = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/deleted"
GROUPS = {
    NODES.lower(): AddressSet.parse(["10.240.0.0/16"]),
    PODS.lower(): AddressSet.parse(["10.244.0.0/16", "10.245.0.1"]),
}


def test_source_ip_groups_resolve_to_their_addresses() -> None:
    rule = parse_network_rule(
        {"ipProtocols": ["UDP"], "sourceIpGroups": [NODES], "destinationAddresses": ["*"], "destinationPorts": ["53"]},
        groups=GROUPS,
    )
    assert rule.sources == AddressSet.parse(["10.240.0.0/16"])


def test_ip_group_references_are_resolved_whatever_their_case() -> None:
    rule = parse_network_rule(
        {"ipProtocols": ["TCP"], "sourceIpGroups": [NODES.upper()], "destinationIpGroups": [f" {PODS} "]},
        groups=GROUPS,
    )
    assert rule.sources == GROUPS[NODES.lower()]
    assert rule.destinations.addresses == GROUPS[PODS.lower()]


def test_ip_groups_add_to_the_addresses_written_next_to_them() -> None:
    rule = parse_network_rule(
        {
            "ipProtocols": ["TCP"],
            "sourceAddresses": ["192.168.0.0/24"],
            "sourceIpGroups": [NODES, PODS],
            "destinationAddresses": ["AzureCloud", "20.0.0.1"],
            "destinationIpGroups": [PODS],
            "destinationPorts": ["443"],
        },
        groups=GROUPS,
    )
    assert rule.sources == AddressSet.parse(["192.168.0.0/24", "10.240.0.0/16", "10.244.0.0/16", "10.245.0.1"])
    assert rule.destinations.addresses == AddressSet.parse(["20.0.0.1", "10.244.0.0/16", "10.245.0.1"])
    assert rule.destinations.service_tags == {"AzureCloud"}


def test_an_ip_group_that_could_not_be_read_contributes_no_address() -> None:
    only_unknown = parse_network_rule(
        {"ipProtocols": ["TCP"], "sourceIpGroups": [GONE], "destinationAddresses": ["*"], "destinationPorts": ["*"]},
        groups=GROUPS,
    )
    assert only_unknown.sources.is_empty
    assert same_traffic(only_unknown, network(sources=()))
    mixed = parse_network_rule(
        {"ipProtocols": ["TCP"], "sourceIpGroups": [GONE, NODES], "destinationIpGroups": [GONE]}, groups=GROUPS
    )
    assert mixed.sources == GROUPS[NODES.lower()]
    assert mixed.destinations.is_empty


def test_ip_groups_resolve_to_nothing_when_no_groups_are_known() -> None:
    rule = parse_network_rule({"ipProtocols": ["TCP"], "sourceIpGroups": [NODES], "destinationAddresses": ["*"]})
    assert rule.sources.is_empty


def test_application_rules_resolve_source_ip_groups() -> None:
    rule = parse_application_rule(
        {"sourceIpGroups": [PODS], "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["a.b"]},
        groups=GROUPS,
    )
    assert rule.sources == GROUPS[PODS.lower()]


def test_ip_group_references_and_addresses_are_read_from_the_wire() -> None:
    wire = {"sourceIpGroups": [NODES], "destinationIpGroups": f"{PODS},{GONE}"}
    assert ip_group_references(wire) == [NODES, PODS, GONE]
    example = json.loads((EXAMPLES / "IpGroupsCreate.json").read_text())["responses"]["200"]["body"]
    assert str(ip_group_addresses(example)) == "13.64.39.16, 40.74.146.80/31, 40.74.147.32/28"
    assert ip_group_addresses({"properties": None}).is_empty


def test_values_built_by_hand_are_validated() -> None:
    with pytest.raises(RuleSyntaxError, match="service tag"):
        Destinations(service_tags=frozenset({"Azure Cloud"}))
    with pytest.raises(RuleSyntaxError, match="FQDN"):
        ApplicationRule(name="x", sources=AddressSet.ANY, protocols=frozenset(), target_fqdns=frozenset({"www.*.com"}))


# --- Names: FQDN patterns and service tags --------------------------------------------------------------
# fqdn_covers and tag_covers take case-folded names, as the rules keep them in fqdn_keys and tag_keys.


@pytest.mark.parametrize(
    ("pattern", "other"),
    [
        ("*", "contoso.com"),
        ("*", "*.contoso.com"),
        ("contoso.com", "contoso.com"),
        ("*.contoso.com", "a.contoso.com"),
        ("*.contoso.com", "b.a.contoso.com"),  # below, at any depth
        ("*.contoso.com", "*.a.contoso.com"),
        ("*contoso.com", "contoso.com"),  # the name itself
        ("*contoso.com", "notcontoso.com"),  # and any name that ends alike
        ("*contoso.com", "*.contoso.com"),
        ("*contoso.com", "*tcontoso.com"),
    ],
)
def test_fqdn_pattern_covers(pattern: str, other: str) -> None:
    assert fqdn_covers(pattern, other)


@pytest.mark.parametrize(
    ("pattern", "other"),
    [
        ("*.contoso.com", "contoso.com"),  # not the domain itself
        ("*.contoso.com", "notcontoso.com"),
        ("*.contoso.com", "*contoso.com"),
        ("*.a.contoso.com", "*.contoso.com"),
        ("a.contoso.com", "*.a.contoso.com"),
        ("a.contoso.com", "b.a.contoso.com"),
        ("contoso.com", "*"),
        ("*.contoso.com", "*"),
        ("*contoso.com", "contoso.org"),
    ],
)
def test_fqdn_pattern_does_not_cover(pattern: str, other: str) -> None:
    assert not fqdn_covers(pattern, other)


@pytest.mark.parametrize(
    ("tag", "other"),
    [
        ("azurecloud", "azurecloud.westeurope"),  # a region is inside its tag
        ("storage", "storage.westeurope"),
        ("azurecloud", "storage"),  # AzureCloud holds every Azure service tag
        ("azurecloud", "storage.westeurope"),
        ("azurecloud", "azuremonitor"),
        ("storage.westeurope", "storage.westeurope"),
    ],
)
def test_service_tag_covers(tag: str, other: str) -> None:
    assert tag_covers(tag, other)


@pytest.mark.parametrize(
    ("tag", "other"),
    [
        ("azurecloud.westeurope", "azurecloud"),  # a region does not hold its parent
        ("azurecloud.westeurope", "azurecloud.northeurope"),
        ("azurecloud.westeurope", "storage.westeurope"),  # different services are disjoint, even in one region
        ("storage", "sql"),
        ("storage", "storageSyncService".casefold()),  # a prefix of the name is not a parent
        ("azurecloud", "internet"),  # the tags that are not Azure datacenter addresses
        ("azurecloud", "virtualnetwork"),
        ("azurecloud", "azureloadbalancer"),
    ],
)
def test_service_tag_does_not_cover(tag: str, other: str) -> None:
    assert not tag_covers(tag, other)


# --- Semantic equality -----------------------------------------------------------------------------------


def test_same_traffic_ignores_names_order_and_case() -> None:
    a = network(name="a", sources=("10.0.0.0/24", "10.1.0.0/16"), addresses=("azurecloud", "Storage"))
    b = network(name="b", sources=("10.1.0.0/16", "10.0.0.0/24"), addresses=("STORAGE", "AzureCloud"))
    assert same_traffic(a, b)


def test_same_traffic_reads_any_as_every_protocol() -> None:
    assert same_traffic(network(protocols=("Any",)), network(protocols=("TCP", "UDP", "ICMP")))


def test_same_traffic_compares_address_sets_not_spellings() -> None:
    assert same_traffic(
        network(sources=("10.0.0.0/24",), addresses=("*",)),
        network(sources=("10.0.0.0-10.0.0.127", "10.0.0.128/25"), addresses=("0.0.0.0/0",)),
    )


def test_ports_do_not_matter_to_icmp_only_rules() -> None:
    assert same_traffic(
        network(protocols=("ICMP",), addresses=("*",), ports=("7",)),
        network(protocols=("ICMP",), addresses=("*",), ports=("*",)),
    )
    assert not same_traffic(
        network(protocols=("TCP",), addresses=("*",), ports=("7",)),
        network(protocols=("TCP",), addresses=("*",), ports=("*",)),
    )


def test_rules_that_match_nothing_are_all_the_same_traffic() -> None:
    assert same_traffic(network(addresses=()), network(sources=(), addresses=("*",)))


def test_a_regional_tag_next_to_its_parent_adds_no_traffic() -> None:
    assert same_traffic(network(addresses=("AzureCloud", "AzureCloud.westeurope")), network(addresses=("AzureCloud",)))


def test_a_wildcard_does_not_make_its_apex_redundant() -> None:
    assert not same_traffic(
        application(targets=("*.contoso.com", "contoso.com")), application(targets=("*.contoso.com",))
    )


def test_different_traffic_is_not_the_same() -> None:
    assert not same_traffic(network(addresses=("*",), ports=("443",)), network(addresses=("*",), ports=("444",)))
    assert not same_traffic(network(addresses=("AzureCloud.westeurope",)), network(addresses=("AzureCloud",)))
    assert not same_traffic(network(addresses=("*",), ports=("443",)), application(targets=("*",)))


def test_tls_inspection_makes_otherwise_equal_rules_different_traffic() -> None:
    wire = {"sourceAddresses": ["*"], "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["a.b"]}
    inspected = parse_application_rule({**wire, "terminateTLS": True})
    assert not same_traffic(inspected, parse_application_rule(wire))
    assert same_traffic(inspected, parse_application_rule({**wire, "name": "other", "terminateTLS": True}))


def test_application_destination_addresses_are_part_of_the_traffic() -> None:
    wire = {"sourceAddresses": ["*"], "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["a.b"]}
    narrowed = parse_application_rule({**wire, "destinationAddresses": ["20.0.0.0/8"]})
    assert not same_traffic(narrowed, parse_application_rule(wire))
    assert same_traffic(narrowed, parse_application_rule({**wire, "destinationAddresses": ["20.0.0.0-20.255.255.255"]}))
    assert same_traffic(parse_application_rule({**wire, "destinationAddresses": ["*"]}), parse_application_rule(wire))


def test_a_suffix_wildcard_holds_its_apex_and_the_dot_wildcard() -> None:
    assert same_traffic(
        application(targets=("*contoso.com", "contoso.com", "*.contoso.com")), application(targets=("*CONTOSO.com",))
    )
    assert not same_traffic(application(targets=("*contoso.com",)), application(targets=("*.contoso.com",)))


def test_same_traffic_for_application_rules_ignores_case_and_redundant_names() -> None:
    assert same_traffic(
        application(protocols=(("https", 443), ("http", 80)), targets=("*.Contoso.com", "a.contoso.com")),
        application(protocols=(("Http", 80), ("Https", 443)), targets=("*.contoso.com",)),
    )
