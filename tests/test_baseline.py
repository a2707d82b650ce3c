"""Baseline profiles: the built-in profiles expand to the documented rules; faulty profiles are rejected."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from remediation.baseline import (
    PROFILES_DIR,
    Baseline,
    BaselineApplicationRule,
    BaselineError,
    BaselineNetworkRule,
    ProfileError,
    UnknownProfileError,
    builtin_profiles,
    expand_baseline,
    load_profile,
)
from remediation.config import ClusterConfig
from remediation.resource_id import ResourceId

RG = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups"
EGRESS = ("10.240.0.0/16",)
WS_A = "11111111-1111-1111-1111-111111111111"
WS_B = "22222222-2222-2222-2222-222222222222"

# A cluster with none of the optional values that switch rules on or off.
PLAIN = ClusterConfig(
    name="aks-prod-weu",
    location="westeurope",
    firewall=ResourceId.parse(f"{RG}/rg-hub/providers/Microsoft.Network/azureFirewalls/fw-hub"),
    route_table=ResourceId.parse(f"{RG}/rg-spoke/providers/Microsoft.Network/routeTables/rt-aks"),
    subnets=(ResourceId.parse(f"{RG}/rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet/subnets/nodes"),),
)
CONFIGURED = dataclasses.replace(
    PLAIN,
    api_server_address="20.1.2.3",
    dns_servers=("10.0.0.4", "10.0.0.5"),
    monitor_workspace_ids=(WS_A, WS_B),
)

NetworkShape = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
ApplicationShape = tuple[str, tuple[str, ...], tuple[tuple[str, int], ...], tuple[str, ...], tuple[str, ...]]


def network(baseline: Baseline) -> list[NetworkShape]:
    """(name, protocols, sources, destination addresses, destination FQDNs, ports) of each network rule."""
    return [
        (r.name, r.protocols, r.sources, r.destination_addresses, r.destination_fqdns, r.ports)
        for r in baseline.network_rules
    ]


def application(baseline: Baseline) -> list[ApplicationShape]:
    """(name, sources, protocols, FQDN tags, target FQDNs) of each application rule."""
    return [(r.name, r.sources, r.protocols, r.fqdn_tags, r.target_fqdns) for r in baseline.application_rules]


def all_rules(baseline: Baseline) -> list[BaselineNetworkRule | BaselineApplicationRule]:
    return [*baseline.network_rules, *baseline.application_rules]


def expand(profile: str, cluster: ClusterConfig = PLAIN, egress: tuple[str, ...] = EGRESS) -> Baseline:
    return expand_baseline(load_profile(profile, relative_to=Path()), cluster, egress_sources=egress)


def write_profile(tmp_path: Path, text: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def profile_problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = write_profile(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path), relative_to=tmp_path)
    assert caught.value.file == path
    assert str(caught.value).splitlines() == [f"{path}: {p.key}: {p.problem}" for p in caught.value.problems]
    return [(p.key, p.problem) for p in caught.value.problems]


def one_rule(rule: str, *, kind: str = "networkRules") -> str:
    """A profile text whose only rule is ``rule`` (YAML for one list item, indented two spaces)."""
    return f"description: test\nsource: tests\n{kind}:\n{textwrap.indent(textwrap.dedent(rule), '  ')}"


TCP = ("TCP",)
UDP = ("UDP",)
CLOUD = ("AzureCloud.westeurope",)
HTTPS = (("Https", 443),)
AKS_TAG = ("AzureKubernetesService",)


# --- The built-in profiles are the spec ------------------------------------------------------------------


def test_the_built_in_profiles_are_aks_current_and_seed_2020() -> None:
    assert builtin_profiles() == ("aks-current", "seed-2020")


def test_seed_2020_for_a_plain_cluster_falls_back_to_the_region_tag_and_open_dns() -> None:
    baseline = expand("seed-2020")

    assert network(baseline) == [
        ("aks-prod-weu-apiserver-tcp-443", TCP, EGRESS, CLOUD, (), ("443",)),
        ("aks-prod-weu-tunnel-tcp-9000", TCP, EGRESS, CLOUD, (), ("9000",)),
        ("aks-prod-weu-tunnel-udp-1194", UDP, EGRESS, CLOUD, (), ("1194",)),
        ("aks-prod-weu-ntp-udp-123", UDP, EGRESS, ("*",), (), ("123",)),
        ("aks-prod-weu-dns-udp-53", UDP, EGRESS, ("*",), (), ("53",)),
        ("aks-prod-weu-monitor-tcp-443", TCP, EGRESS, ("AzureMonitor", "Storage"), (), ("443",)),
    ]
    assert application(baseline) == [("aks-prod-weu-aks-fqdn-tag", EGRESS, HTTPS, AKS_TAG, ())]


def test_seed_2020_for_a_configured_cluster_targets_the_api_server_dns_servers_and_workspaces() -> None:
    baseline = expand("seed-2020", CONFIGURED)

    assert network(baseline) == [
        ("aks-prod-weu-apiserver-tcp-443", TCP, EGRESS, ("20.1.2.3",), (), ("443",)),
        ("aks-prod-weu-tunnel-tcp-9000", TCP, EGRESS, CLOUD, (), ("9000",)),
        ("aks-prod-weu-tunnel-udp-1194", UDP, EGRESS, CLOUD, (), ("1194",)),
        ("aks-prod-weu-ntp-udp-123", UDP, EGRESS, ("*",), (), ("123",)),
        ("aks-prod-weu-dns-udp-53", UDP, EGRESS, ("10.0.0.4", "10.0.0.5"), (), ("53",)),
        ("aks-prod-weu-monitor-tcp-443", TCP, EGRESS, ("AzureMonitor", "Storage"), (), ("443",)),
    ]
    assert application(baseline) == [
        ("aks-prod-weu-aks-fqdn-tag", EGRESS, HTTPS, AKS_TAG, ()),
        (
            "aks-prod-weu-log-analytics",
            EGRESS,
            HTTPS,
            (),
            (
                f"{WS_A}.ods.opinsights.azure.com",
                f"{WS_B}.ods.opinsights.azure.com",
                f"{WS_A}.oms.opinsights.azure.com",
                f"{WS_B}.oms.opinsights.azure.com",
            ),
        ),
    ]


def test_aks_current_for_a_plain_cluster_requires_only_https_to_the_fqdn_tag() -> None:
    """Outbound network and FQDN rules for AKS clusters: the FQDN tag over HTTPS is what every cluster needs;
    a konnectivity cluster (the default) needs no tunnel ports, and NTP is for nodes from before March 2021."""
    baseline = expand("aks-current")

    assert network(baseline) == []
    assert application(baseline) == [("aks-prod-weu-aks-fqdn-tag", EGRESS, HTTPS, AKS_TAG, ())]


def test_aks_current_for_a_configured_cluster_adds_each_rule_under_its_condition() -> None:
    legacy = dataclasses.replace(CONFIGURED, tunnel="legacy", ntp=True)

    baseline = expand("aks-current", legacy)

    assert network(baseline) == [
        ("aks-prod-weu-apiserver-tcp-443", TCP, EGRESS, ("20.1.2.3",), (), ("443",)),
        ("aks-prod-weu-tunnel-udp-1194", UDP, EGRESS, CLOUD, (), ("1194",)),
        ("aks-prod-weu-tunnel-tcp-9000", TCP, EGRESS, CLOUD, (), ("9000",)),
        ("aks-prod-weu-ntp-udp-123", UDP, EGRESS, (), ("ntp.ubuntu.com",), ("123",)),
        ("aks-prod-weu-dns-udp-53", UDP, EGRESS, ("10.0.0.4", "10.0.0.5"), (), ("53",)),
        ("aks-prod-weu-monitor-tcp-443", TCP, EGRESS, ("AzureMonitor",), (), ("443",)),
    ]
    assert [rule.key for rule in baseline.application_rules] == ["aks-fqdn-tag", "monitor-fqdns"]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, set()),
        ({"tunnel": "legacy"}, {"tunnel-udp-1194", "tunnel-tcp-9000"}),
        ({"ntp": True}, {"ntp-udp-123"}),
        ({"monitor_workspace_ids": (WS_A,)}, {"monitor-tcp-443"}),
    ],
)
def test_aks_current_selects_network_rules_by_the_clusters_facts(facts: dict[str, object], expected: set[str]) -> None:
    cluster = dataclasses.replace(PLAIN, **facts)  # type: ignore[arg-type]

    assert {rule.key for rule in expand("aks-current", cluster).network_rules} == expected


def test_every_aks_current_rule_says_which_part_of_the_docs_it_comes_from() -> None:
    everything = dataclasses.replace(CONFIGURED, tunnel="legacy", ntp=True)

    rules = all_rules(expand("aks-current", everything))

    assert all("outbound-rules-control-egress" in rule.source for rule in rules), [r.source for r in rules]
    assert len({rule.source for rule in rules}) > 3


def test_ntp_by_fqdn_gives_udp_123_to_any_address_as_the_alternative_without_dns_proxy() -> None:
    rule = rules_by_key(expand("aks-current", dataclasses.replace(PLAIN, ntp=True)))["ntp-udp-123"]

    assert isinstance(rule, BaselineNetworkRule)
    assert (rule.destination_fqdns, rule.without_dns_proxy) == (("ntp.ubuntu.com",), ("*",))


def test_the_fqdn_tag_stands_for_the_documented_fqdns_and_the_regional_api_server_name() -> None:
    public = expand("aks-current").tag_contents["AzureKubernetesService"]
    private = expand("aks-current", dataclasses.replace(PLAIN, private=True)).tag_contents["AzureKubernetesService"]

    assert "*.hcp.westeurope.azmk8s.io" in public
    assert {"mcr.microsoft.com", "*.data.mcr.microsoft.com", "management.azure.com"} <= set(public)
    # The docs: the API server FQDN is not required for private clusters.
    assert set(public) - set(private) == {"*.hcp.westeurope.azmk8s.io"}


@pytest.mark.parametrize("profile", ["seed-2020", "aks-current"])
def test_every_built_in_rule_carries_a_description_and_its_key(profile: str) -> None:
    rules = all_rules(expand(profile, CONFIGURED))

    assert all(rule.description for rule in rules)
    assert all(rule.name == f"aks-prod-weu-{rule.key}" for rule in rules)


def test_built_in_profiles_load_from_the_package_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    profile = load_profile("seed-2020", relative_to=tmp_path)

    assert profile.path == PROFILES_DIR / "seed-2020.yaml"
    assert profile.name == "seed-2020"
    assert "protect-azure-kubernetes-service" in profile.source


# --- Conditional rules -----------------------------------------------------------------------------------


def rules_by_key(baseline: Baseline) -> dict[str, BaselineNetworkRule | BaselineApplicationRule]:
    rules: list[BaselineNetworkRule | BaselineApplicationRule] = [
        *baseline.network_rules,
        *baseline.application_rules,
    ]
    return {rule.key: rule for rule in rules}


def test_the_api_server_address_replaces_the_region_tag_in_seed_2020_and_adds_the_rule_in_aks_current() -> None:
    with_address = dataclasses.replace(PLAIN, api_server_address="20.1.2.3")

    seed_rule = rules_by_key(expand("seed-2020", with_address))["apiserver-tcp-443"]
    assert isinstance(seed_rule, BaselineNetworkRule)
    assert seed_rule.destination_addresses == ("20.1.2.3",)
    assert "apiserver-tcp-443" in rules_by_key(expand("aks-current", with_address))
    assert "apiserver-tcp-443" not in rules_by_key(expand("aks-current", PLAIN))


def test_dns_servers_narrow_seed_2020_dns_and_switch_on_aks_current_dns() -> None:
    with_dns = dataclasses.replace(PLAIN, dns_servers=("10.0.0.4",))

    seed_rule = rules_by_key(expand("seed-2020", with_dns))["dns-udp-53"]
    current_rule = rules_by_key(expand("aks-current", with_dns))["dns-udp-53"]
    assert isinstance(seed_rule, BaselineNetworkRule)
    assert isinstance(current_rule, BaselineNetworkRule)
    assert seed_rule.destination_addresses == current_rule.destination_addresses == ("10.0.0.4",)
    assert "dns-udp-53" not in rules_by_key(expand("aks-current", PLAIN))


def test_the_log_analytics_rule_exists_only_with_workspaces_and_lists_each_one() -> None:
    one_workspace = dataclasses.replace(PLAIN, monitor_workspace_ids=(WS_A,))

    rule = rules_by_key(expand("seed-2020", one_workspace))["log-analytics"]
    assert isinstance(rule, BaselineApplicationRule)
    assert rule.target_fqdns == (f"{WS_A}.ods.opinsights.azure.com", f"{WS_A}.oms.opinsights.azure.com")
    assert "log-analytics" not in rules_by_key(expand("seed-2020", PLAIN))


# --- Egress sources and determinism ----------------------------------------------------------------------


def test_every_rule_is_sourced_from_all_node_subnet_prefixes_in_the_order_given_without_repeats() -> None:
    egress = ("10.240.0.0/16", "10.241.0.0/24", "10.240.0.0/16")

    baseline = expand("aks-current", CONFIGURED, egress)

    sources = {rule.sources for rule in baseline.network_rules} | {r.sources for r in baseline.application_rules}
    assert sources == {("10.240.0.0/16", "10.241.0.0/24")}


def test_ipv6_node_subnet_prefixes_are_left_out_because_firewall_rules_are_ipv4_only() -> None:
    baseline = expand("seed-2020", PLAIN, ("fd12:3456::/64", "10.240.0.0/16"))

    assert {rule.sources for rule in baseline.network_rules} == {("10.240.0.0/16",)}


def test_without_ipv4_egress_sources_the_baseline_cannot_be_built() -> None:
    with pytest.raises(BaselineError, match=r"cluster 'aks-prod-weu': rule '[a-z0-9-]+' has no source addresses"):
        expand("seed-2020", PLAIN, ("fd12:3456::/64",))


def test_an_egress_source_that_is_not_a_prefix_is_rejected() -> None:
    with pytest.raises(BaselineError, match=r"egress source 'aks-nodes' is not an address prefix"):
        expand("seed-2020", PLAIN, ("aks-nodes",))


def test_expansion_gives_the_same_rules_in_the_same_order_every_time() -> None:
    profile = load_profile("seed-2020", relative_to=Path())
    egress = ["10.241.0.0/24", "10.240.0.0/16"]

    first = expand_baseline(profile, CONFIGURED, egress_sources=egress)
    again = expand_baseline(profile, CONFIGURED, egress_sources=list(egress))

    assert first == again
    assert first.network_rules[0].sources == ("10.241.0.0/24", "10.240.0.0/16")


# --- User profiles -----------------------------------------------------------------------------------------


def test_a_copied_and_edited_profile_file_expands_with_the_edits(tmp_path: Path) -> None:
    text = (PROFILES_DIR / "aks-current.yaml").read_text(encoding="utf-8")
    text = text.replace("    when: {ntp: true}\n", "")  # this team always wants NTP
    ghcr = textwrap.indent(
        textwrap.dedent(
            """\
            - name: ghcr
              description: GitHub container registry.
              protocols: ["Https:443"]
              targetFqdns: [ghcr.io, "*.githubusercontent.com"]
              sources: ["*"]
            """
        ),
        "  ",
    )
    text = text.replace("applicationRules:\n", "applicationRules:\n" + ghcr, 1)
    (tmp_path / "profiles").mkdir()
    path = write_profile(tmp_path / "profiles", text, "corp.yaml")

    profile = load_profile("profiles/corp.yaml", relative_to=tmp_path)
    baseline = expand_baseline(profile, PLAIN, egress_sources=EGRESS)

    assert (profile.name, profile.path) == ("corp", path)
    assert application(baseline) == [
        ("aks-prod-weu-ghcr", ("*",), HTTPS, (), ("ghcr.io", "*.githubusercontent.com")),
        ("aks-prod-weu-aks-fqdn-tag", EGRESS, HTTPS, AKS_TAG, ()),
    ]
    assert [rule.key for rule in baseline.network_rules] == ["ntp-udp-123"]


def test_a_profile_normalises_protocol_case_and_numeric_ports_to_the_arm_form(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        one_rule(
            """\
            - name: web
              description: web
              protocols: [tcp, Udp]
              ports: [443, "8080-8090"]
              destinations: ["192.0.2.0/24"]
            """
        ),
    )

    baseline = expand_baseline(load_profile(str(path), relative_to=tmp_path), PLAIN, egress_sources=EGRESS)

    assert network(baseline) == [
        ("aks-prod-weu-web", ("TCP", "UDP"), EGRESS, ("192.0.2.0/24",), (), ("443", "8080-8090"))
    ]


def test_a_fallback_fqdn_is_used_when_the_placeholder_is_not_configured(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        one_rule(
            """\
            - name: dns
              description: dns
              protocols: [UDP]
              ports: ["53"]
              destinations: ["{dnsServers}"]
              fallbackFqdns: [dns.example.com]
            """
        ),
    )
    profile = load_profile(str(path), relative_to=tmp_path)

    assert network(expand_baseline(profile, PLAIN, egress_sources=EGRESS)) == [
        ("aks-prod-weu-dns", UDP, EGRESS, (), ("dns.example.com",), ("53",))
    ]


# --- Faulty profiles ---------------------------------------------------------------------------------------


def test_an_unknown_profile_name_lists_the_built_in_ones() -> None:
    with pytest.raises(UnknownProfileError) as caught:
        load_profile("seed-2021", relative_to=Path())

    assert caught.value.problem == (
        "unknown profile 'seed-2021' (built-in: aks-current, seed-2020; or a path to a profile file)"
    )


def test_a_missing_profile_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("absent.yaml", relative_to=tmp_path)

    assert str(caught.value) == f"{tmp_path / 'absent.yaml'}: (file): file not found"


def test_a_profile_with_a_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    [(key, problem)] = profile_problems(tmp_path, "description: x\nsource: y\nnetworkRules: [\n")

    assert key == "(file)"
    assert problem.startswith("invalid YAML at line 4, column 1: ")


def test_a_profile_without_description_source_or_rules_is_rejected(tmp_path: Path) -> None:
    assert profile_problems(tmp_path, "networkRuls: []\n") == [
        (
            "networkRuls",
            "unknown key 'networkRuls'; did you mean 'networkRules'? "
            "(expected one of: description, source, networkRules, applicationRules)",
        ),
        ("description", "required key is missing"),
        ("source", "required key is missing"),
        ("(file)", "the profile has no rules (expected networkRules and/or applicationRules)"),
    ]


def test_an_unknown_rule_key_is_rejected_with_a_suggestion(tmp_path: Path) -> None:
    rule = """\
        - name: ntp
          description: ntp
          protocols: [UDP]
          ports: ["123"]
          destination: ["*"]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0].destination",
            "unknown key 'destination'; did you mean 'destinations'? (expected one of: name, description, "
            "protocols, ports, sources, destinations, fqdns, fallbackDestinations, fallbackFqdns, withoutDnsProxy, "
            "when, source)",
        ),
        ("networkRules[0]", "the rule has no destinations (expected destinations and/or fqdns)"),
    ]


def test_an_unknown_placeholder_is_rejected_with_the_known_ones(tmp_path: Path) -> None:
    rule = """\
        - name: tunnel
          description: tunnel
          protocols: [TCP]
          ports: ["9000"]
          destinations: ["AzureCloud.{region}"]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0].destinations[0]",
            "unknown placeholder {region} in 'AzureCloud.{region}' (known: {location}, {apiServerAddress}, "
            "{dnsServers}, {monitorWorkspaceIds}, {egressSources})",
        )
    ]


def test_a_template_that_is_invalid_once_filled_in_is_rejected(tmp_path: Path) -> None:
    rule = """\
        - name: tunnel
          description: tunnel
          protocols: [TCP]
          ports: ["9000"]
          destinations: ["AzureCloud-{location}"]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0].destinations[0]",
            "'AzureCloud-{location}' is not valid once filled in: 'AzureCloud-westeurope' is not '*', "
            "an IPv4 address, a CIDR or an a-b range, or a service tag",
        )
    ]


def test_an_entry_with_two_list_placeholders_or_a_stray_brace_is_rejected(tmp_path: Path) -> None:
    rule = """\
        - name: odd
          description: odd
          protocols: ["Https:443"]
          targetFqdns: ["{dnsServers}.{monitorWorkspaceIds}.example.com", "{location.example.com"]
        """

    assert profile_problems(tmp_path, one_rule(rule, kind="applicationRules")) == [
        (
            "applicationRules[0].targetFqdns[0]",
            "'{dnsServers}.{monitorWorkspaceIds}.example.com' uses more than one list placeholder "
            "(dnsServers, monitorWorkspaceIds); split it into entries",
        ),
        ("applicationRules[0].targetFqdns[1]", "'{location.example.com' has an unmatched brace"),
    ]


def test_bad_protocols_and_ports_are_rejected_with_what_is_expected(tmp_path: Path) -> None:
    rule = """\
        - name: web
          description: web
          protocols: [TCP, SCTP, tcp]
          ports: ["443", "70000", "90-80", http]
          destinations: ["*"]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        ("networkRules[0].protocols[1]", "'SCTP' is not TCP, UDP, ICMP or Any"),
        ("networkRules[0].protocols[2]", "duplicate entry 'tcp' (also networkRules[0].protocols[0])"),
        ("networkRules[0].ports[1]", "'70000' is not a port ('443'), a range ('80-90') or '*'"),
        ("networkRules[0].ports[2]", "'90-80' is not a port ('443'), a range ('80-90') or '*'"),
        ("networkRules[0].ports[3]", "'http' is not a port ('443'), a range ('80-90') or '*'"),
    ]


def test_an_application_protocol_without_a_port_is_rejected(tmp_path: Path) -> None:
    rule = """\
        - name: tag
          description: tag
          protocols: [Https]
          fqdnTags: [AzureKubernetesService]
        """

    assert profile_problems(tmp_path, one_rule(rule, kind="applicationRules")) == [
        (
            "applicationRules[0].protocols[0]",
            "'Https' is not a protocol and port like 'Https:443' (Http, Https or Mssql)",
        )
    ]


def test_rule_names_must_be_unique_across_network_and_application_rules(tmp_path: Path) -> None:
    text = """\
        description: test
        source: tests
        networkRules:
          - {name: aks, description: a, protocols: [TCP], ports: ["443"], destinations: ["*"]}
        applicationRules:
          - {name: aks, description: b, protocols: ["Https:443"], fqdnTags: [AzureKubernetesService]}
        """

    assert profile_problems(tmp_path, text) == [
        ("applicationRules[0].name", "duplicate rule name 'aks' (also networkRules[0].name)")
    ]


def test_a_rule_name_unfit_for_azure_rule_names_is_rejected(tmp_path: Path) -> None:
    rule = '- {name: API_Server, description: a, protocols: [TCP], ports: ["443"], destinations: ["*"]}\n'

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0].name",
            "'API_Server' is not a rule name (lowercase letters, digits and '-', 1..39 characters)",
        )
    ]


def test_a_rule_without_destinations_is_rejected(tmp_path: Path) -> None:
    rule = '- {name: ntp, description: ntp, protocols: [UDP], ports: ["123"], sources: ["*"]}\n'

    assert profile_problems(tmp_path, one_rule(rule)) == [
        ("networkRules[0]", "the rule has no destinations (expected destinations and/or fqdns)")
    ]


def test_a_fallback_that_can_never_apply_is_rejected(tmp_path: Path) -> None:
    rule = """\
        - name: tunnel
          description: tunnel
          protocols: [TCP]
          ports: ["9000"]
          destinations: ["AzureCloud.{location}"]
          fallbackDestinations: ["*"]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0]",
            "the fallback can never be used: it applies only when every destination uses a placeholder "
            "that may be unset ({apiServerAddress}, {dnsServers}, {monitorWorkspaceIds}, {egressSources})",
        )
    ]


def test_an_fqdn_among_network_destinations_points_to_fqdns(tmp_path: Path) -> None:
    rule = '- {name: ntp, description: ntp, protocols: [UDP], ports: ["123"], destinations: [ntp.ubuntu.com]}\n'

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0].destinations[0]",
            "'ntp.ubuntu.com' is not '*', an IPv4 address, a CIDR or an a-b range, or a service tag "
            "(FQDNs belong under fqdns)",
        )
    ]


def test_a_wildcard_network_rule_fqdn_is_rejected(tmp_path: Path) -> None:
    rule = '- {name: hcp, description: hcp, protocols: [TCP], ports: ["443"], fqdns: ["*.azmk8s.io"]}\n'

    assert profile_problems(tmp_path, one_rule(rule)) == [
        ("networkRules[0].fqdns[0]", "'*.azmk8s.io': wildcards are not allowed in network rule FQDNs")
    ]


def test_fqdn_tags_and_target_fqdns_cannot_share_a_rule(tmp_path: Path) -> None:
    rule = """\
        - name: mixed
          description: mixed
          protocols: ["Https:443"]
          fqdnTags: [AzureKubernetesService]
          targetFqdns: [mcr.microsoft.com]
        """

    assert profile_problems(tmp_path, one_rule(rule, kind="applicationRules")) == [
        (
            "applicationRules[0]",
            "fqdnTags and targetFqdns cannot be combined in one rule; split it into two rules",
        )
    ]


def test_placeholders_are_not_allowed_in_fqdn_tags(tmp_path: Path) -> None:
    rule = '- {name: tag, description: tag, protocols: ["Https:443"], fqdnTags: ["Aks{location}"]}\n'

    assert profile_problems(tmp_path, one_rule(rule, kind="applicationRules")) == [
        ("applicationRules[0].fqdnTags[0]", "'Aks{location}': placeholders are not allowed in fqdnTags")
    ]


def test_a_service_tag_is_not_accepted_as_a_source(tmp_path: Path) -> None:
    rule = """\
        - name: tunnel
          description: tunnel
          protocols: [TCP]
          ports: ["9000"]
          destinations: ["*"]
          sources: [VirtualNetwork]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        (
            "networkRules[0].sources[0]",
            "'VirtualNetwork' is not '*', an IPv4 address, a CIDR or an a-b range",
        )
    ]


def test_every_problem_in_a_profile_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
        description: test
        source: tests
        networkRules:
          - {name: a, description: a, protocols: [XTP], ports: ["1"], destinations: ["*"]}
          - {name: b, description: b, protocols: [TCP], ports: ["0"], destinations: ["*"]}
        applicationRules:
          - {name: c, description: c, protocols: ["Ftp:21"], targetFqdns: ["bad_name"]}
        """

    assert [key for key, _ in profile_problems(tmp_path, text)] == [
        "networkRules[0].protocols[0]",
        "networkRules[1].ports[0]",
        "applicationRules[0].protocols[0]",
        "applicationRules[0].targetFqdns[0]",
    ]


def test_a_rule_condition_names_a_known_fact_with_one_of_its_values(tmp_path: Path) -> None:
    rule = """\
        - name: ntp
          description: ntp
          protocols: [UDP]
          ports: ["123"]
          destinations: ["*"]
          when: {tunnel: openvpn, ntp: "yes", region: westeurope}
        """

    problems = profile_problems(tmp_path, one_rule(rule))

    assert ("networkRules[0].when.tunnel", "'openvpn' is not one of konnectivity, legacy") in problems
    assert ("networkRules[0].when.ntp", "'yes' is not one of true, false") in problems
    assert any(key == "networkRules[0].when.region" and "unknown key" in text for key, text in problems)


def test_an_alternative_without_dns_proxy_belongs_to_a_rule_with_fqdns(tmp_path: Path) -> None:
    rule = """\
        - name: dns
          description: dns
          protocols: [UDP]
          ports: ["53"]
          destinations: ["10.0.0.4"]
          withoutDnsProxy: ["*"]
        """

    assert profile_problems(tmp_path, one_rule(rule)) == [
        ("networkRules[0].withoutDnsProxy", "only a rule with fqdns needs an alternative without DNS proxy")
    ]
