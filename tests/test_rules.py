"""Specification of the rule algebra: parsing wire rules, sets of addresses and ports, coverage, shadowing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediation.rules import (
    Action,
    AddressSet,
    ApplicationRule,
    AppProtocol,
    Destinations,
    FilterRule,
    NetworkRule,
    PlacedRule,
    PortSet,
    Position,
    Protocol,
    RuleIndex,
    RuleSyntaxError,
    parse_application_rule,
    parse_network_rule,
    same_traffic,
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


def allow(rule: FilterRule, *at: int) -> PlacedRule:
    return PlacedRule(rule=rule, action=Action.ALLOW, position=at, location=f"allow at {at}")


def deny(rule: FilterRule, *at: int) -> PlacedRule:
    return PlacedRule(rule=rule, action=Action.DENY, position=at, location=f"deny at {at}")


def index(*rules: PlacedRule) -> RuleIndex:
    return RuleIndex(rules)


TUNNEL = network(protocols=("UDP",), sources=("10.240.0.0/16",), addresses=("AzureCloud.westeurope",), ports=("1194",))


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


def test_protocol_any_means_tcp_udp_and_icmp() -> None:
    assert network(protocols=("Any",)).protocols == {Protocol.TCP, Protocol.UDP, Protocol.ICMP}


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
    with pytest.raises(RuleSyntaxError, match="sourceIpGroups"):
        parse_network_rule({"ipProtocols": ["TCP"], "sourceIpGroups": ["/subscriptions/x/ipGroups/g"]}, strict=True)
    with pytest.raises(RuleSyntaxError, match="webCategories"):
        parse_application_rule({"webCategories": ["Hacking"]}, strict=True)


def test_geo_filtered_network_rule_matches_nothing() -> None:
    wire = json.loads((EXAMPLES / "FirewallPolicyRuleCollectionGroupGet.json").read_text())
    (wire_rule,) = wire["responses"]["200"]["body"]["properties"]["ruleCollections"][0]["rules"]
    rule = parse_network_rule(wire_rule)
    assert rule.sources.is_empty
    assert not index(allow(rule, 1)).coverage(network(sources=("10.1.25.0/24",), addresses=("*",))).complete


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


def test_application_rule_restricted_by_destination_addresses_matches_nothing() -> None:
    wire = {
        "sourceAddresses": ["*"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": ["mcr.microsoft.com"],
        "destinationAddresses": ["20.0.0.0/8"],
    }
    assert parse_application_rule(wire).target_fqdns == frozenset()
    assert parse_application_rule({**wire, "destinationAddresses": ["*"]}).target_fqdns == {"mcr.microsoft.com"}


def test_values_built_by_hand_are_validated() -> None:
    with pytest.raises(RuleSyntaxError, match="service tag"):
        Destinations(service_tags=frozenset({"Azure Cloud"}))
    with pytest.raises(RuleSyntaxError, match="FQDN"):
        ApplicationRule(name="x", sources=AddressSet.ANY, protocols=frozenset(), target_fqdns=frozenset({"www.*.com"}))


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


def test_same_traffic_for_application_rules_ignores_case_and_redundant_names() -> None:
    assert same_traffic(
        application(protocols=(("https", 443), ("http", 80)), targets=("*.Contoso.com", "a.contoso.com")),
        application(protocols=(("Http", 80), ("Https", 443)), targets=("*.contoso.com",)),
    )


# --- Coverage: network rules -----------------------------------------------------------------------------


def test_identical_allow_rule_covers_baseline_rule() -> None:
    coverage = index(allow(TUNNEL, 1, 1)).coverage(TUNNEL)
    assert coverage.complete
    assert coverage.allowed_at == (1, 1)
    assert coverage.missing == ""


def test_empty_firewall_covers_nothing_and_says_what_is_missing() -> None:
    coverage = index().coverage(TUNNEL)
    assert not coverage.complete
    assert coverage.allowed_at is None
    assert coverage.missing == "UDP 1194 from 10.240.0.0/16 to AzureCloud.westeurope"


def test_coverage_may_be_split_across_two_rules_by_source() -> None:
    first_half = network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("AzureCloud.westeurope",))
    second_half = network(protocols=("UDP",), sources=("10.240.128.0/17",), addresses=("AzureCloud.westeurope",))
    assert index(allow(first_half, 1), allow(second_half, 2)).coverage(TUNNEL).complete


def test_coverage_may_be_split_across_two_rules_by_port() -> None:
    wanted = network(addresses=("10.1.0.4",), ports=("1-2000",))
    low = network(addresses=("10.1.0.0/24",), ports=("1-1000",))
    high = network(addresses=("10.1.0.0/24",), ports=("1001-2000",))
    assert index(allow(low, 1), allow(high, 2)).coverage(wanted).complete
    assert not index(allow(low, 1)).coverage(wanted).complete


def test_coverage_may_be_split_across_rules_by_destination_address() -> None:
    wanted = network(addresses=("10.1.0.0/24",), ports=("53",), protocols=("UDP",))
    rules = index(
        allow(network(addresses=("10.1.0.0/25",), protocols=("UDP",)), 1),
        allow(network(addresses=("10.1.0.128-10.1.0.255",), protocols=("Any",)), 2),
    )
    assert rules.coverage(wanted).complete


def test_coverage_split_in_two_dimensions_names_the_uncovered_corner() -> None:
    wanted = network(sources=("10.0.0.0/24",), addresses=("*",), ports=("1-100",))
    rules = index(
        allow(network(sources=("10.0.0.0/25",), addresses=("*",), ports=("*",)), 1),
        allow(network(sources=("10.0.0.128/25",), addresses=("*",), ports=("1-50",)), 2),
    )
    coverage = rules.coverage(wanted)
    assert not coverage.complete
    assert coverage.missing == "TCP 51-100 from 10.0.0.128/25 to *"


def test_missing_traffic_is_reported_per_protocol_and_destination() -> None:
    wanted = network(protocols=("TCP", "UDP"), addresses=("AzureCloud.westeurope",), fqdns=("ntp.ubuntu.com",))
    rules = index(allow(network(protocols=("TCP",), addresses=("AzureCloud",), fqdns=("ntp.ubuntu.com",)), 1))
    assert rules.coverage(wanted).missing == ("UDP * from * to AzureCloud.westeurope; UDP * from * to ntp.ubuntu.com")


def test_parent_service_tag_covers_regional_tag() -> None:
    parent = network(protocols=("UDP",), sources=("*",), addresses=("AzureCloud",), ports=("1194",))
    assert index(allow(parent, 1)).coverage(TUNNEL).complete


def test_regional_tag_does_not_cover_parent_tag() -> None:
    regional = network(addresses=("AzureCloud.westeurope",))
    assert not index(allow(regional, 1)).coverage(network(addresses=("AzureCloud",))).complete


def test_other_regions_tag_does_not_cover() -> None:
    northeurope = network(protocols=("UDP",), addresses=("AzureCloud.northeurope",))
    assert not index(allow(northeurope, 1)).coverage(TUNNEL).complete


def test_service_tags_compare_case_insensitively() -> None:
    shouting = network(protocols=("udp",), addresses=("AZURECLOUD.WESTEUROPE",), ports=("1194",))
    assert index(allow(shouting, 1)).coverage(TUNNEL).complete


def test_star_destination_covers_tags_fqdns_and_addresses() -> None:
    wanted = network(addresses=("AzureMonitor", "20.1.2.3"), fqdns=("ntp.ubuntu.com",), ports=("443",))
    assert index(allow(network(addresses=("*",)), 1)).coverage(wanted).complete
    assert index(allow(network(addresses=("0.0.0.0/0",)), 1)).coverage(wanted).complete


def test_address_ranges_never_cover_a_service_tag_or_fqdn() -> None:
    wide = network(addresses=("0.0.0.0/1", "128.0.0.0/2"))
    assert not index(allow(wide, 1)).coverage(network(addresses=("AzureMonitor",))).complete
    assert not index(allow(wide, 1)).coverage(network(fqdns=("ntp.ubuntu.com",))).complete


def test_fqdn_destination_is_covered_by_the_same_fqdn_in_any_case() -> None:
    wanted = network(protocols=("UDP",), fqdns=("ntp.ubuntu.com",), ports=("123",))
    assert index(allow(network(protocols=("UDP",), fqdns=("NTP.Ubuntu.com",)), 1)).coverage(wanted).complete
    assert not index(allow(network(protocols=("UDP",), fqdns=("ubuntu.com",)), 1)).coverage(wanted).complete


def test_ip_groups_never_prove_coverage() -> None:
    grouped = parse_network_rule(
        {
            "ipProtocols": ["UDP"],
            "sourceIpGroups": ["/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/aks"],
            "destinationAddresses": ["AzureCloud.westeurope"],
            "destinationPorts": ["1194"],
        }
    )
    assert not index(allow(grouped, 1)).coverage(TUNNEL).complete


def test_ip_groups_next_to_addresses_leave_the_addresses_working() -> None:
    mixed = parse_network_rule(
        {
            "ipProtocols": ["UDP"],
            "sourceAddresses": ["10.240.0.0/16"],
            "sourceIpGroups": ["/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/x"],
            "destinationAddresses": ["AzureCloud"],
            "destinationPorts": ["1194"],
        }
    )
    assert index(allow(mixed, 1)).coverage(TUNNEL).complete


def test_icmp_rule_covers_icmp_regardless_of_ports() -> None:
    wanted = network(protocols=("ICMP",), addresses=("10.0.0.1",), ports=("*",))
    assert (
        index(allow(network(protocols=("ICMP",), addresses=("10.0.0.0/8",), ports=("7",)), 1)).coverage(wanted).complete
    )


def test_protocol_any_covers_udp_but_tcp_does_not() -> None:
    assert index(allow(network(protocols=("Any",), addresses=("AzureCloud",)), 1)).coverage(TUNNEL).complete
    assert not index(allow(network(protocols=("TCP",), addresses=("AzureCloud",)), 1)).coverage(TUNNEL).complete


def test_deny_rules_never_provide_coverage() -> None:
    assert not index(deny(TUNNEL, 1)).coverage(TUNNEL).complete


def test_allowed_at_is_the_latest_position_among_the_rules_needed() -> None:
    half = network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("AzureCloud",))
    other_half = network(protocols=("UDP",), sources=("10.240.128.0/17",), addresses=("AzureCloud",))
    whole_in_the_middle = index(allow(half, 1, 1), allow(TUNNEL, 1, 5), allow(other_half, 1, 9))
    halves_first = index(allow(half, 1, 1), allow(other_half, 1, 2), allow(TUNNEL, 1, 5))
    halves_only = index(allow(half, 1, 1), allow(other_half, 1, 9))
    assert whole_in_the_middle.coverage(TUNNEL).allowed_at == (1, 5)
    assert halves_first.coverage(TUNNEL).allowed_at == (1, 2)
    assert halves_only.coverage(TUNNEL).allowed_at == (1, 9)


def test_allowed_at_is_none_while_anything_is_missing() -> None:
    half = network(protocols=("UDP",), sources=("10.240.0.0/17",), addresses=("AzureCloud",))
    coverage = index(allow(half, 1)).coverage(TUNNEL)
    assert coverage.allowed_at is None
    assert coverage.missing == "UDP 1194 from 10.240.128.0/17 to AzureCloud.westeurope"


def test_a_long_list_of_gaps_is_cut_short() -> None:
    sieve = [
        allow(network(protocols=("UDP",), sources=(f"10.240.{i}.0/24",), addresses=("*",)), i) for i in range(0, 40, 2)
    ]
    missing = index(*sieve).coverage(TUNNEL).missing
    assert missing.count("; ") == 10
    assert missing.endswith("; and more")


def test_index_finds_the_one_covering_rule_among_thousands() -> None:
    noise = [
        allow(network(sources=(f"10.{i // 250}.{i % 250}.0/24",), addresses=(f"172.16.{i % 250}.0/24",)), 1, i)
        for i in range(3000)
    ]
    rules = index(*noise, allow(TUNNEL, 2, 0))
    assert rules.coverage(TUNNEL).allowed_at == (2, 0)


# --- Coverage: application rules -------------------------------------------------------------------------

AKS_TAG = application(protocols=(("Http", 80), ("Https", 443)), tags=("AzureKubernetesService",))


def test_fqdn_tag_rule_covers_the_same_fqdn_tag_in_any_case() -> None:
    shouting = application(protocols=(("HTTPS", 443), ("http", 80)), tags=("AZUREKUBERNETESSERVICE",))
    assert index(allow(shouting, 1)).coverage(AKS_TAG).complete


def test_application_coverage_needs_every_protocol_and_port() -> None:
    https_only = application(tags=("AzureKubernetesService",))
    coverage = index(allow(https_only, 1)).coverage(AKS_TAG)
    assert not coverage.complete
    assert coverage.missing == "Http:80 from * to AzureKubernetesService"


def test_wildcard_fqdn_covers_subdomains() -> None:
    wildcard = application(targets=("*.hcp.westeurope.azmk8s.io",))
    wanted = application(targets=("abc.hcp.westeurope.azmk8s.io", "*.x.hcp.westeurope.azmk8s.io"))
    assert index(allow(wildcard, 1)).coverage(wanted).complete


def test_wildcard_fqdn_does_not_match_apex() -> None:
    wildcard = application(targets=("*.contoso.com",))
    assert not index(allow(wildcard, 1)).coverage(application(targets=("contoso.com",))).complete


def test_wildcard_fqdn_does_not_match_a_name_that_only_ends_alike() -> None:
    wildcard = application(targets=("*.contoso.com",))
    assert not index(allow(wildcard, 1)).coverage(application(targets=("notcontoso.com",))).complete


def test_exact_fqdn_does_not_cover_a_wildcard() -> None:
    exact = application(targets=("a.contoso.com",))
    assert not index(allow(exact, 1)).coverage(application(targets=("*.contoso.com",))).complete


def test_star_target_covers_fqdns_and_fqdn_tags() -> None:
    star = application(protocols=(("Http", 80), ("Https", 443)), targets=("*",))
    assert index(allow(star, 1)).coverage(AKS_TAG).complete
    assert index(allow(star, 1)).coverage(application(targets=("mcr.microsoft.com",))).complete


def test_fqdn_tag_does_not_cover_the_fqdns_it_contains() -> None:
    tag = application(tags=("AzureKubernetesService",))
    assert not index(allow(tag, 1)).coverage(application(targets=("mcr.microsoft.com",))).complete


def test_network_rule_to_star_on_the_tcp_port_covers_application_traffic() -> None:
    tcp_any = network(protocols=("TCP",), addresses=("*",), ports=("80", "443"))
    coverage = index(allow(tcp_any, 1, 7), allow(AKS_TAG, 3, 1)).coverage(AKS_TAG)
    assert coverage.complete
    assert coverage.allowed_at == (1, 7)


def test_network_rule_to_an_fqdn_does_not_prove_application_coverage() -> None:
    ntp_style = network(protocols=("TCP",), fqdns=("mcr.microsoft.com",), ports=("443",))
    assert not index(allow(ntp_style, 1)).coverage(application(targets=("mcr.microsoft.com",))).complete


def test_network_rule_on_udp_or_another_port_does_not_cover_application_traffic() -> None:
    rules = index(
        allow(network(protocols=("UDP",), addresses=("*",), ports=("443",)), 1),
        allow(network(protocols=("TCP",), addresses=("*",), ports=("444",)), 2),
    )
    assert not rules.coverage(application(targets=("mcr.microsoft.com",))).complete


def test_application_coverage_may_be_split_by_source() -> None:
    rules = index(
        allow(application(sources=("10.0.0.0/9",), tags=("AzureKubernetesService",)), 1),
        allow(application(sources=("10.128.0.0/9",), targets=("*",)), 2),
    )
    assert rules.coverage(application(sources=("10.0.0.0/8",), tags=("AzureKubernetesService",))).complete


# --- Shadowing -------------------------------------------------------------------------------------------


def test_deny_before_allow_shadows_baseline_rule() -> None:
    blocker = deny(network(protocols=("Any",), sources=("10.240.1.0/24",), addresses=("*",)), 1, 0)
    rules = index(blocker, allow(TUNNEL, 2, 0))
    assert rules.shadowing(TUNNEL, before=(2, 0)) == (blocker,)


def test_deny_after_the_allow_does_not_shadow() -> None:
    rules = index(allow(TUNNEL, 1, 0), deny(network(protocols=("Any",), addresses=("*",)), 2, 0))
    assert rules.shadowing(TUNNEL, before=(1, 0)) == ()


def test_deny_on_other_ports_protocols_or_sources_does_not_shadow() -> None:
    rules = index(
        deny(network(protocols=("UDP",), addresses=("*",), ports=("1195",)), 1),
        deny(network(protocols=("TCP",), addresses=("*",), ports=("1194",)), 2),
        deny(network(protocols=("UDP",), sources=("10.241.0.0/16",), addresses=("*",)), 3),
    )
    assert rules.shadowing(TUNNEL, before=(9,)) == ()


def test_icmp_deny_shadows_icmp_whatever_its_ports() -> None:
    blocker = deny(network(protocols=("ICMP",), addresses=("10.0.0.0/8",), ports=("7",)), 1)
    wanted = network(protocols=("ICMP",), addresses=("10.1.2.3",), ports=("8",))
    assert index(blocker).shadowing(wanted, before=(2,)) == (blocker,)


def test_deny_to_parent_or_regional_tag_shadows_and_other_regions_do_not() -> None:
    parent = deny(network(protocols=("UDP",), addresses=("azurecloud",)), 1)
    northeurope = deny(network(protocols=("UDP",), addresses=("AzureCloud.northeurope",)), 2)
    assert index(parent, northeurope).shadowing(TUNNEL, before=(9,)) == (parent,)
    regional = deny(network(protocols=("UDP",), addresses=("AzureCloud.westeurope",)), 3)
    wanted_parent = network(protocols=("UDP",), addresses=("AzureCloud",), ports=("1194",))
    assert index(regional, northeurope).shadowing(wanted_parent, before=(9,)) == (northeurope, regional)


def test_deny_to_an_address_range_does_not_count_against_a_service_tag() -> None:
    ranges = deny(network(protocols=("UDP",), addresses=("20.0.0.0/8",)), 1)
    assert index(ranges).shadowing(TUNNEL, before=(9,)) == ()


def test_deny_to_star_shadows_tags_fqdns_and_addresses() -> None:
    blocker = deny(network(protocols=("Any",), addresses=("*",)), 1)
    for wanted in (TUNNEL, network(fqdns=("ntp.ubuntu.com",)), network(addresses=("10.0.0.1",))):
        assert index(blocker).shadowing(wanted, before=(2,)) == (blocker,)


def test_wanted_star_destination_is_shadowed_by_tag_and_fqdn_denies() -> None:
    by_tag = deny(network(addresses=("Storage",)), 1)
    by_fqdn = deny(network(fqdns=("evil.example",)), 2)
    wanted = network(addresses=("*",), ports=("443",))
    assert index(by_tag, by_fqdn).shadowing(wanted, before=(3,)) == (by_tag, by_fqdn)


def test_network_fqdn_denies_shadow_matching_fqdns_only() -> None:
    exact = deny(network(protocols=("UDP",), fqdns=("NTP.ubuntu.com",)), 1)
    other = deny(network(protocols=("UDP",), fqdns=("time.windows.com",)), 2)
    wanted = network(protocols=("UDP",), fqdns=("ntp.ubuntu.com",), ports=("123",))
    assert index(exact, other).shadowing(wanted, before=(3,)) == (exact,)


def test_shadowing_ignores_ip_group_parts_of_deny_rules() -> None:
    grouped = parse_network_rule(
        {
            "ipProtocols": ["Any"],
            "sourceIpGroups": ["/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/ipGroups/all"],
            "destinationAddresses": ["*"],
            "destinationPorts": ["*"],
        }
    )
    assert index(deny(grouped, 1)).shadowing(TUNNEL, before=(2,)) == ()


def test_application_deny_shadows_matching_wildcards_tags_and_star() -> None:
    wildcard = deny(application(targets=("*.contoso.com",)), 1)
    apex = deny(application(targets=("contoso.com",)), 2)
    star = deny(application(targets=("*",)), 3)
    other_port = deny(application(protocols=(("Https", 8443),), targets=("*",)), 4)
    rules = index(wildcard, apex, star, other_port)
    assert rules.shadowing(application(targets=("a.contoso.com",)), before=(9,)) == (wildcard, star)
    assert rules.shadowing(application(tags=("AzureKubernetesService",)), before=(9,)) == (star,)
    assert rules.shadowing(application(targets=("*.contoso.com",)), before=(9,)) == (wildcard, star)


def test_wanted_wildcard_is_shadowed_by_denies_of_names_below_it() -> None:
    below = deny(application(targets=("b.a.contoso.com",)), 1)
    assert index(below).shadowing(application(targets=("*.contoso.com",)), before=(2,)) == (below,)


def test_network_deny_on_tcp_port_shadows_https_application_traffic() -> None:
    tcp_443 = deny(network(protocols=("TCP",), addresses=("*",), ports=("443",)), 1)
    by_fqdn = deny(network(protocols=("TCP",), fqdns=("mcr.microsoft.com",), ports=("443",)), 2)
    udp_443 = deny(network(protocols=("UDP",), addresses=("*",), ports=("443",)), 3)
    wanted = application(targets=("mcr.microsoft.com",))
    assert index(tcp_443, by_fqdn, udp_443).shadowing(wanted, before=(9,)) == (tcp_443, by_fqdn)


def test_application_denies_never_shadow_network_traffic() -> None:
    star = deny(application(protocols=(("Https", 1194),), targets=("*",)), 1)
    assert index(star).shadowing(TUNNEL, before=(2,)) == ()


def test_shadowing_answers_in_position_order() -> None:
    later = deny(network(protocols=("UDP",), addresses=("*",)), 1, 5)
    earlier = deny(network(protocols=("UDP",), addresses=("AzureCloud",)), 1, 2)
    assert index(later, earlier).shadowing(TUNNEL, before=(2,)) == (earlier, later)


def test_positions_compare_as_tuples() -> None:
    position: Position = (1, 2, 3)
    blocker = deny(network(protocols=("UDP",), addresses=("*",)), *position)
    assert index(blocker).shadowing(TUNNEL, before=(1, 2, 3)) == ()
    assert index(blocker).shadowing(TUNNEL, before=(1, 2, 3, 0)) == (blocker,)
