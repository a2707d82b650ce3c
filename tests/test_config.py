"""The configuration file: what a valid file loads into, the defaults, and how each mistake is reported."""

from __future__ import annotations

import os
import shutil
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from remediation.baseline import PROFILES_DIR
from remediation.config import (
    ClusterConfig,
    ConfigError,
    InboundConfig,
    Mode,
    OwnedNames,
    load_config,
)
from remediation.resource_id import ResourceId

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups"
FIREWALL = f"{RG}/rg-hub/providers/Microsoft.Network/azureFirewalls/fw-hub"
ROUTE_TABLE = f"{RG}/rg-spoke/providers/Microsoft.Network/routeTables/rt-aks"
SUBNET = f"{RG}/rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet-spoke/subnets/aks-nodes"
SUBNET_2 = f"{RG}/rg-spoke/providers/Microsoft.Network/virtualNetworks/vnet-spoke/subnets/aks-pool-2"
LOAD_BALANCER = f"{RG}/MC_rg_aks_westeurope/providers/Microsoft.Network/loadBalancers/kubernetes"
PUBLIC_IP = f"{RG}/rg-hub/providers/Microsoft.Network/publicIPAddresses/pip-fw-1"
WORKSPACE = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
AKS_CLUSTER = f"{RG}/rg-aks/providers/Microsoft.ContainerService/managedClusters/shop-weu"
T = TypeVar("T")


def cluster(**overrides: Any) -> dict[str, Any]:
    """A minimal valid cluster entry; ``None`` removes a key."""
    entry: dict[str, Any] = {
        "name": "aks-prod-weu",
        "location": "westeurope",
        "firewall": FIREWALL,
        "routeTable": ROUTE_TABLE,
        "subnets": [SUBNET],
    }
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not None}


def write(tmp_path: Path, document: dict[str, Any] | str, name: str = "remediator.yaml") -> Path:
    path = tmp_path / name
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, document: dict[str, Any] | str) -> tuple[Path, ConfigError]:
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, caught.value


def assert_only_problem(tmp_path: Path, document: dict[str, Any] | str, key: str, problem: str) -> None:
    """The file is rejected with exactly one problem, at ``key``, reading ``problem``."""
    path, error = config_error(tmp_path, document)
    assert error.file == path
    assert [(p.key, p.problem) for p in error.problems] == [(key, problem)]
    assert str(error) == f"{path}: {key}: {problem}"


# --- Valid files -----------------------------------------------------------------------------------------


def test_a_complete_file_loads_into_the_expected_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        textwrap.dedent(
            f"""\
            mode: enforce
            profile: aks-current
            owned:
              ruleCollectionGroup: egress-rcg
              collectionPrefix: fw-aks
              priority: 300
            clusters:
              - name: aks-prod-weu
                location: westeurope
                firewall: {FIREWALL}
                routeTable: {ROUTE_TABLE}
                subnets: [{SUBNET}, {SUBNET_2}]
                apiServerAddress: 20.1.2.3
                dnsServers: [10.0.0.4, 10.0.0.5]
                monitorWorkspaceIds: [{WORKSPACE}]
                inbound:
                  loadBalancers: [{LOAD_BALANCER}]
                  firewallPublicIps: [{PUBLIC_IP}]
                  sourceAddresses: [203.0.113.0/24, 198.51.100.7, 192.0.2.10-192.0.2.20]
              - name: aks-dev
                location: northeurope
                firewall: {FIREWALL}
                routeTable: {ROUTE_TABLE}
                subnets: [{SUBNET_2}]
            """
        ),
    )

    config = load_config(path)

    assert config.source == path
    assert config.mode is Mode.ENFORCE
    assert config.profile.name == "aks-current"
    assert config.owned == OwnedNames(rule_collection_group="egress-rcg", collection_prefix="fw-aks", priority=300)
    assert config.clusters == (
        ClusterConfig(
            name="aks-prod-weu",
            location="westeurope",
            firewall=ResourceId.parse(FIREWALL),
            route_table=ResourceId.parse(ROUTE_TABLE),
            subnets=(ResourceId.parse(SUBNET), ResourceId.parse(SUBNET_2)),
            api_server_address="20.1.2.3",
            dns_servers=("10.0.0.4", "10.0.0.5"),
            monitor_workspace_ids=(WORKSPACE.lower(),),
            inbound=InboundConfig(
                load_balancers=(ResourceId.parse(LOAD_BALANCER),),
                node_resource_group=None,
                firewall_public_ips=(ResourceId.parse(PUBLIC_IP),),
                source_addresses=("203.0.113.0/24", "198.51.100.7", "192.0.2.10-192.0.2.20"),
            ),
        ),
        ClusterConfig(
            name="aks-dev",
            location="northeurope",
            firewall=ResourceId.parse(FIREWALL),
            route_table=ResourceId.parse(ROUTE_TABLE),
            subnets=(ResourceId.parse(SUBNET_2),),
            api_server_address=None,
            dns_servers=(),
            monitor_workspace_ids=(),
            inbound=None,
        ),
    )


def test_omitted_settings_default_to_audit_mode_the_seed_profile_and_the_standard_owned_names(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, {"clusters": [cluster()]}))

    assert config.mode is Mode.AUDIT
    assert config.profile.name == "seed-2020"
    assert config.owned == OwnedNames(
        rule_collection_group="aks-egress-baseline", collection_prefix="aks-egress", priority=200
    )


def test_a_partly_given_owned_section_keeps_the_defaults_for_the_rest(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"owned": {"priority": 65000}, "clusters": [cluster()]}))

    assert config.owned == OwnedNames(priority=65000)


def test_owned_collection_and_route_names_derive_from_the_prefix() -> None:
    owned = OwnedNames(collection_prefix="corp-aks")

    assert (owned.network_collection, owned.application_collection, owned.nat_collection) == (
        "corp-aks-net",
        "corp-aks-app",
        "corp-aks-dnat",
    )
    assert owned.default_route == "corp-aks-default"


def test_inbound_by_node_resource_group_keeps_its_lower_cased_scope_and_allows_every_source(
    tmp_path: Path,
) -> None:
    document = {"clusters": [cluster(inbound={"nodeResourceGroup": f"{RG}/MC_rg_AKS_westeurope"})]}

    inbound = load_config(write(tmp_path, document)).clusters[0].inbound

    assert inbound == InboundConfig(
        load_balancers=(),
        node_resource_group=f"/subscriptions/{SUB}/resourcegroups/mc_rg_aks_westeurope",
        firewall_public_ips=(),
        source_addresses=("*",),
    )


def short(**overrides: Any) -> dict[str, Any]:
    """A cluster entry in the short form: the AKS cluster and its firewall; ``None`` removes a key."""
    entry: dict[str, Any] = {"aks": AKS_CLUSTER, "firewall": FIREWALL, **overrides}
    return {key: value for key, value in entry.items() if value is not None}


def test_the_short_form_names_the_aks_cluster_and_leaves_the_rest_to_be_learned(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, {"clusters": [short(inbound={})]})).clusters[0]

    assert loaded == ClusterConfig(
        name="shop-weu",
        location="",
        firewall=ResourceId.parse(FIREWALL),
        route_table=None,
        subnets=(),
        inbound=InboundConfig(
            load_balancers=(), node_resource_group=None, firewall_public_ips=(), source_addresses=("*",)
        ),
        aks=ResourceId.parse(AKS_CLUSTER),
    )
    assert loaded.configured == {"aks", "firewall", "inbound"}


def test_the_short_form_keeps_whatever_it_states(tmp_path: Path) -> None:
    document = {"clusters": [short(name="shop", routeTable=ROUTE_TABLE, location="westeurope", tunnel="legacy")]}

    loaded = load_config(write(tmp_path, document)).clusters[0]

    assert (loaded.name, loaded.location, loaded.route_table, loaded.tunnel) == (
        "shop",
        "westeurope",
        ResourceId.parse(ROUTE_TABLE),
        "legacy",
    )
    assert {"name", "routeTable", "location", "tunnel"} <= loaded.configured


def test_an_aks_cluster_name_too_long_for_rule_names_must_be_given_a_name(tmp_path: Path) -> None:
    long_name = "aks-" + "x" * 50
    document = {"clusters": [short(aks=AKS_CLUSTER.replace("shop-weu", long_name))]}

    _, error = config_error(tmp_path, document)

    assert [p.key for p in error.problems] == ["clusters[0].name"]
    assert error.problem.startswith("required key is missing: the AKS cluster's name")
    assert load_config(
        write(tmp_path, {"clusters": [short(aks=AKS_CLUSTER.replace("shop-weu", long_name), name="shop")]})
    )


def test_two_entries_for_one_aks_cluster_are_an_error(tmp_path: Path) -> None:
    document = {
        "clusters": [short(), short(name="other", aks=AKS_CLUSTER.upper().replace("SUBSCRIPTIONS", "subscriptions"))]
    }

    _, error = config_error(tmp_path, document)

    assert [(p.key, p.problem) for p in error.problems] == [
        ("clusters[1].aks", "duplicate AKS cluster 'SHOP-WEU' (also clusters[0])")
    ]


def test_inbound_without_load_balancers_or_a_node_resource_group_needs_aks(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(inbound={})]},
        "clusters[0].inbound",
        "expected exactly one of loadBalancers (the services' load balancer IDs) or nodeResourceGroup "
        "(every load balancer in the cluster's node resource group)",
    )


def test_a_relative_profile_path_is_found_next_to_the_config_file_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "profiles").mkdir()
    shutil.copy(PROFILES_DIR / "aks-current.yaml", tmp_path / "profiles" / "corp.yaml")
    path = write(tmp_path, {"profile": "profiles/corp.yaml", "clusters": [cluster()]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    profile = load_config(path).profile

    assert profile.name == "corp"
    assert profile.path == tmp_path / "profiles" / "corp.yaml"
    assert [rule.key for rule in profile.application_rules] == ["aks-fqdn-tag", "monitor-fqdns"]


def test_clusters_are_looked_up_by_name_case_insensitively(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"clusters": [cluster(name="aks-a"), cluster(name="AKS-B")]}))

    assert config.cluster("AKS-A").name == "aks-a"
    assert config.cluster("aks-b").name == "AKS-B"


def test_looking_up_an_unknown_cluster_names_the_configured_ones(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"clusters": [cluster(name="aks-a"), cluster(name="aks-b")]}))

    with pytest.raises(KeyError, match=r"no cluster named 'aks-z' .*\(configured: aks-a, aks-b\)"):
        config.cluster("aks-z")


# --- The file itself ---------------------------------------------------------------------------------------


def test_a_missing_file_is_reported_as_not_found(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert (caught.value.file, caught.value.key, caught.value.problem) == (path, "(file)", "file not found")
    assert str(caught.value) == f"{path}: (file): file not found"


def test_a_directory_instead_of_a_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)

    assert (caught.value.key, caught.value.problem) == ("(file)", "is a directory, expected a YAML file")


def file_problem(path: Path) -> str:
    """The one problem ``load_config`` reports for ``path``, which must be at key ``(file)``."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.file, caught.value.key) == (path, "(file)")
    assert len(caught.value.problems) == 1
    return caught.value.problem


def refused_without_waiting(fifo: Path, load: Callable[[], T]) -> T:
    """``load()``'s result, failing (not hanging) the test if it opens ``fifo`` and waits for a writer."""
    results: list[T] = []
    reader = threading.Thread(target=lambda: results.append(load()), daemon=True)
    reader.start()
    reader.join(timeout=30)  # not a speed check: without it a regression would hang the suite
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY))  # let the blocked reader see end-of-file, then fail
        reader.join()
        pytest.fail(f"loading the configuration waited for a writer on {fifo}")
    assert results, "loading raised instead of reporting a problem"
    return results[0]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "remediator.yaml"
    os.mkfifo(fifo)
    problem = refused_without_waiting(fifo, lambda: file_problem(fifo))
    assert problem == "is a FIFO (named pipe), expected a regular YAML file"


def test_a_device_that_never_ends_is_refused() -> None:
    assert file_problem(Path("/dev/zero")) == "is a device, expected a regular YAML file"


def test_a_file_over_5_mb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "remediator.yaml"
    with path.open("wb") as file:
        file.truncate(6 * 1024 * 1024)  # sparse: 6 MB of NUL bytes, which YAML itself would reject otherwise
    assert file_problem(path) == "is 6291456 bytes, larger than 5 MB; a configuration is far smaller"


@pytest.mark.parametrize("depth", [65, 100, 10_000])
def test_nesting_deeper_than_64_levels_is_refused_without_a_recursion_error(tmp_path: Path, depth: int) -> None:
    path = write(tmp_path, "clusters: " + "[" * depth + "]" * depth + "\n")
    assert file_problem(path) == "nested deeper than 64 levels (line 1, column 74)"


def test_nesting_up_to_64_levels_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "clusters: " + "[" * 63 + "]" * 63 + "\n")  # the top mapping is the 64th level
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "clusters[0]"  # read, then found not to be a cluster


def _alias_bomb(levels: int) -> str:
    """Billion laughs: each level lists the previous one nine times, so the last holds 9**levels values."""
    lines = ["l0: &l0 lol"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + f"\nclusters: *l{levels}\n"


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, _alias_bomb(9))
    assert file_problem(path) == (
        "holds more than 100000 values once its YAML aliases (*name) are written out (an alias bomb?); "
        "a configuration is far smaller"
    )


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "clusters: &loop [*loop]\n")
    assert file_problem(path) == "a YAML alias refers to a node that contains it (line 1): it would never end"


def test_aliases_and_merge_keys_within_the_bounds_are_read(tmp_path: Path) -> None:
    document = textwrap.dedent(
        f"""\
        clusters:
          - &first
            name: aks-a
            location: westeurope
            firewall: {FIREWALL}
            routeTable: {ROUTE_TABLE}
            subnets: &subnets [{SUBNET}]
          - <<: *first
            name: aks-b
            subnets: *subnets
        """
    )
    config = load_config(write(tmp_path, document))
    assert [c.name for c in config.clusters] == ["aks-a", "aks-b"]
    assert config.clusters[1].firewall == config.clusters[0].firewall


def test_a_profile_that_is_a_fifo_is_refused_at_the_profile_key(tmp_path: Path) -> None:
    fifo = tmp_path / "mine.yaml"
    os.mkfifo(fifo)
    document = {"profile": "./mine.yaml", "clusters": [cluster()]}
    _, error = refused_without_waiting(fifo, lambda: config_error(tmp_path, document))
    assert [(p.key, p.problem) for p in error.problems] == [
        ("profile", f"{fifo}: is a FIFO (named pipe), expected a regular YAML file")
    ]


def test_a_file_that_is_not_utf8_text_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "remediator.yaml"
    path.write_bytes(b"mode: audit\nclusters: \xff\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert (caught.value.key, caught.value.problem) == ("(file)", "not UTF-8 text (invalid byte on line 2)")


def test_a_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    _, error = config_error(tmp_path, "mode: audit\nclusters:\n  - name: [aks-a\n    location: westeurope\n")

    assert error.key == "(file)"
    assert error.problem.startswith("invalid YAML at line 4, column 13: ")


def test_a_repeated_key_is_reported_with_its_line_instead_of_silently_replacing_the_first(
    tmp_path: Path,
) -> None:
    text = f"clusters:\n  - name: aks-a\n    firewall: {FIREWALL}\n    firewall: {ROUTE_TABLE}\n"

    _, error = config_error(tmp_path, text)

    assert (error.key, error.problem) == (
        "(file)",
        "invalid YAML at line 4, column 5: found duplicate key 'firewall'",
    )


def test_an_empty_file_is_reported(tmp_path: Path) -> None:
    assert_only_problem(tmp_path, "# nothing yet\n", "(file)", "the file is empty (expected a YAML mapping)")


def test_a_top_level_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path, "- aks-a\n- aks-b\n", "(file)", "expected a YAML mapping at the top level, found a list"
    )


# --- Keys --------------------------------------------------------------------------------------------------


def test_an_unknown_top_level_key_is_an_error_that_suggests_the_intended_key(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"mdoe": "enforce", "clusters": [cluster()]},
        "mdoe",
        "unknown key 'mdoe'; did you mean 'mode'? (expected one of: clusters, mode, profile, owned, routes)",
    )


def test_an_unknown_cluster_key_is_an_error_at_its_path(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(), cluster(name="aks-b", dnsServer=["10.0.0.4"])]},
        "clusters[1].dnsServer",
        "unknown key 'dnsServer'; did you mean 'dnsServers'? (expected one of: aks, name, location, firewall, "
        "routeTable, subnets, apiServerAddress, dnsServers, monitorWorkspaceIds, inbound, tunnel, private, ntp)",
    )


def test_a_missing_required_key_is_reported_at_its_path(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(routeTable=None)]},
        "clusters[0].routeTable",
        "required key is missing (or name the AKS cluster with aks: its resource ID, and the remediator learns "
        "it from AKS)",
    )


def test_a_file_without_clusters_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(tmp_path, {"mode": "audit"}, "clusters", "required key is missing")
    assert_only_problem(tmp_path, {"clusters": []}, "clusters", "must not be empty")


def test_a_value_of_the_wrong_yaml_type_names_what_was_found(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(subnets=SUBNET)]},
        "clusters[0].subnets",
        f"expected a list, found a string ({SUBNET!r})",
    )


# --- Settings ----------------------------------------------------------------------------------------------


def test_an_unknown_mode_is_rejected_with_the_choices(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"mode": "enforced", "clusters": [cluster()]},
        "mode",
        "'enforced' is not a mode (expected enforce or audit; omit it for audit)",
    )


def test_a_priority_outside_100_to_65000_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"owned": {"priority": 50}, "clusters": [cluster()]},
        "owned.priority",
        "50 is not a priority (expected a whole number 100..65000)",
    )


def test_an_owned_collection_prefix_that_cannot_name_collections_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"owned": {"collectionPrefix": "aks egress-"}, "clusters": [cluster()]},
        "owned.collectionPrefix",
        "'aks egress-' is not a collection prefix (letters, digits, '_', '.', '-'; starting and ending "
        "with a letter or digit; at most 64 characters)",
    )


def test_an_unknown_profile_name_lists_the_built_in_profiles(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"profile": "seed-2021", "clusters": [cluster()]},
        "profile",
        "unknown profile 'seed-2021' (built-in: aks-current, seed-2020; or a path to a profile file)",
    )


def test_a_missing_profile_file_is_reported_at_the_profile_key(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"profile": "./mine.yaml", "clusters": [cluster()]},
        "profile",
        f"{tmp_path / 'mine.yaml'}: file not found",
    )


def test_a_problem_inside_the_profile_file_names_both_files_and_the_profile_key(tmp_path: Path) -> None:
    profile = (PROFILES_DIR / "seed-2020.yaml").read_text(encoding="utf-8").replace('["9000"]', '["90000"]')
    (tmp_path / "mine.yaml").write_text(profile, encoding="utf-8")

    assert_only_problem(
        tmp_path,
        {"profile": "mine.yaml", "clusters": [cluster()]},
        "profile",
        f"{tmp_path / 'mine.yaml'}: networkRules[1].ports[0]: '90000' is not a port ('443'), a range ('80-90') or '*'",
    )


# --- Clusters ----------------------------------------------------------------------------------------------


def test_a_resource_id_of_the_wrong_type_names_both_types(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(firewall=ROUTE_TABLE)]},
        "clusters[0].firewall",
        f"{ROUTE_TABLE!r} is a Microsoft.Network/routeTables ID, expected a Microsoft.Network/azureFirewalls ID",
    )


def test_a_malformed_resource_id_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(routeTable="rt-aks")]},
        "clusters[0].routeTable",
        "'rt-aks' is not a resource ID (expected /subscriptions/<guid>/resourceGroups/<name>/...)",
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("aks\nnodes", "subnet name 'aks\\nnodes' contains a control or other invisible character"),
        ("aks nodes", "subnet name 'aks nodes' contains whitespace"),
        ("aks%2Fnodes", "subnet name 'aks%2Fnodes' contains '%'"),
        ("a" * 81, "is 81 characters long (ARM allows 1 to 80 characters for a subnet name)"),
    ],
)
def test_a_resource_name_arm_would_refuse_is_a_configuration_error_at_its_key(
    tmp_path: Path, name: str, problem: str
) -> None:
    bad = SUBNET.rsplit("/", 1)[0] + "/" + name
    _, error = config_error(tmp_path, {"clusters": [cluster(subnets=[SUBNET, bad])]})
    ((key, text),) = [(p.key, p.problem) for p in error.problems]
    assert key == "clusters[0].subnets[1]"
    assert problem in text
    assert len(str(error).splitlines()) == 1  # the newline in the name does not split the report


def test_a_resource_group_name_arm_would_refuse_is_a_configuration_error(tmp_path: Path) -> None:
    firewall = FIREWALL.replace("rg-hub", "rg hub")
    _, error = config_error(tmp_path, {"clusters": [cluster(firewall=firewall)]})
    assert [(p.key, p.problem) for p in error.problems] == [
        ("clusters[0].firewall", f"{firewall!r}: resource group name 'rg hub' contains whitespace")
    ]


def test_a_duplicate_cluster_name_differing_only_in_case_points_at_the_first(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(name="aks-a"), cluster(name="aks-b"), cluster(name="AKS-A")]},
        "clusters[2].name",
        "duplicate cluster name 'AKS-A' (also clusters[0])",
    )


def test_one_subnet_wanted_with_two_route_tables_is_a_configuration_error(tmp_path: Path) -> None:
    other_table = ROUTE_TABLE.rsplit("/", 1)[0] + "/rt-other"
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(name="aks-a"), cluster(name="aks-b", routeTable=other_table)]},
        "clusters[1].subnets",
        f"subnet {SUBNET.rsplit('/', 1)[1]} is also cluster aks-a's, with route table {ROUTE_TABLE.rsplit('/', 1)[1]}, "
        "not rt-other: a subnet uses one route table",
    )


def test_a_cluster_name_unfit_for_rule_names_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(name="aks prod")]},
        "clusters[0].name",
        "'aks prod' is not a cluster name (letters, digits, '-', '_' and '.'; 1..40 characters)",
    )


def test_a_location_written_as_a_display_name_suggests_the_region_name(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(location="West Europe")]},
        "clusters[0].location",
        "'West Europe' is not an Azure region name (lowercase letters and digits, e.g. 'westeurope'); "
        "did you mean 'westeurope'?",
    )


def test_a_subnet_listed_twice_is_rejected_even_in_another_case(tmp_path: Path) -> None:
    same_subnet = SUBNET.replace("resourceGroups", "resourcegroups").replace("aks-nodes", "AKS-Nodes")

    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(subnets=[SUBNET, SUBNET_2, same_subnet])]},
        "clusters[0].subnets[2]",
        f"duplicate entry {same_subnet!r} (also clusters[0].subnets[0])",
    )


def test_a_cluster_without_subnets_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(tmp_path, {"clusters": [cluster(subnets=[])]}, "clusters[0].subnets", "must not be empty")


def test_an_api_server_address_must_be_an_ipv4_address(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(apiServerAddress="aks-prod.hcp.westeurope.azmk8s.io")]},
        "clusters[0].apiServerAddress",
        "'aks-prod.hcp.westeurope.azmk8s.io' is not an IPv4 address",
    )


def test_an_ipv6_dns_server_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(dnsServers=["10.0.0.4", "fd00::53"])]},
        "clusters[0].dnsServers[1]",
        "'fd00::53' is IPv6; only IPv4 addresses are supported",
    )


def test_a_dns_server_given_as_a_network_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(dnsServers=["10.0.0.4/32"])]},
        "clusters[0].dnsServers[0]",
        "'10.0.0.4/32' is a network; expected a single IPv4 address",
    )


def test_a_workspace_resource_id_instead_of_the_workspace_guid_is_explained(tmp_path: Path) -> None:
    workspace = f"{RG}/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-ops"

    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(monitorWorkspaceIds=[workspace])]},
        "clusters[0].monitorWorkspaceIds[0]",
        f"{workspace!r} is a resource ID; expected the workspace ID, a GUID "
        "(shown as 'Workspace ID' on the workspace's overview page)",
    )


# --- Inbound -----------------------------------------------------------------------------------------------


def test_a_source_cidr_with_host_bits_set_suggests_the_network(tmp_path: Path) -> None:
    document = {"clusters": [cluster(inbound={"nodeResourceGroup": f"{RG}/mc", "sourceAddresses": ["10.1.2.3/16"]})]}

    assert_only_problem(
        tmp_path,
        document,
        "clusters[0].inbound.sourceAddresses[0]",
        "'10.1.2.3/16' has host bits set; did you mean '10.1.0.0/16'?",
    )


def test_a_source_range_that_runs_backwards_is_rejected(tmp_path: Path) -> None:
    document = {
        "clusters": [cluster(inbound={"nodeResourceGroup": f"{RG}/mc", "sourceAddresses": ["10.0.0.9-10.0.0.1"]})]
    }

    assert_only_problem(
        tmp_path,
        document,
        "clusters[0].inbound.sourceAddresses[0]",
        "'10.0.0.9-10.0.0.1': the range starts after it ends",
    )


def test_inbound_needs_exactly_one_of_load_balancers_and_node_resource_group(tmp_path: Path) -> None:
    expected = (
        "expected exactly one of loadBalancers (the services' load balancer IDs) or nodeResourceGroup "
        "(every load balancer in the cluster's node resource group)"
    )
    both = {"loadBalancers": [LOAD_BALANCER], "nodeResourceGroup": f"{RG}/mc"}

    assert_only_problem(tmp_path, {"clusters": [cluster(inbound=both)]}, "clusters[0].inbound", expected)
    assert_only_problem(
        tmp_path, {"clusters": [cluster(inbound={"sourceAddresses": ["*"]})]}, "clusters[0].inbound", expected
    )


def test_an_inbound_load_balancer_of_the_wrong_type_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(inbound={"loadBalancers": [PUBLIC_IP]})]},
        "clusters[0].inbound.loadBalancers[0]",
        f"{PUBLIC_IP!r} is a Microsoft.Network/publicIPAddresses ID, expected a Microsoft.Network/loadBalancers ID",
    )


def test_a_node_resource_group_that_is_not_a_resource_group_id_is_rejected(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(inbound={"nodeResourceGroup": "MC_rg_aks_westeurope"})]},
        "clusters[0].inbound.nodeResourceGroup",
        "'MC_rg_aks_westeurope' is not a resource group ID (/subscriptions/<guid>/resourceGroups/<name>)",
    )


def test_an_empty_firewall_public_ip_list_is_rejected_rather_than_read_as_the_default(tmp_path: Path) -> None:
    assert_only_problem(
        tmp_path,
        {"clusters": [cluster(inbound={"loadBalancers": [LOAD_BALANCER], "firewallPublicIps": []})]},
        "clusters[0].inbound.firewallPublicIps",
        "must not be empty (omit it to use the firewall's own public IPs)",
    )


# --- Reporting -------------------------------------------------------------------------------------------


def test_every_problem_in_the_file_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    document = {
        "mode": "on",
        "clusters": [
            cluster(location="WestEurope", firewall="fw-hub"),
            cluster(name="aks-b", dnsServers=["10.0.0.300"]),
        ],
    }

    path, error = config_error(tmp_path, document)

    assert [p.key for p in error.problems] == [
        "mode",
        "clusters[0].location",
        "clusters[0].firewall",
        "clusters[1].dnsServers[0]",
    ]
    assert (error.key, error.problem) == (error.problems[0].key, error.problems[0].problem)
    assert str(error).splitlines() == [f"{path}: {p.key}: {p.problem}" for p in error.problems]
    assert isinstance(error, ValueError)


def test_the_cluster_facts_default_to_a_konnectivity_public_cluster_without_ntp(tmp_path: Path) -> None:
    plain = load_config(write(tmp_path, {"clusters": [cluster()]})).clusters[0]
    legacy = load_config(write(tmp_path, {"clusters": [cluster(tunnel="legacy", private=True, ntp=True)]})).clusters[0]

    assert (plain.tunnel, plain.private, plain.ntp) == ("konnectivity", False, False)
    assert (legacy.tunnel, legacy.private, legacy.ntp) == ("legacy", True, True)


def test_the_cluster_facts_refuse_values_they_do_not_know(tmp_path: Path) -> None:
    path = write(tmp_path, {"clusters": [cluster(tunnel="openvpn", private="yes")]})

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    problems = {(p.key, p.problem.split(" (")[0]) for p in caught.value.problems}
    assert ("clusters[0].tunnel", "'openvpn' is not a tunnel") in problems
    assert ("clusters[0].private", "'yes' is not true or false") in problems


def test_removing_routes_around_the_firewall_is_off_unless_the_file_opts_in(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, {"clusters": [cluster()]}))
    opted = load_config(write(tmp_path, {"routes": {"removeBypass": True}, "clusters": [cluster()]}))

    assert (default.routes.remove_bypass, opted.routes.remove_bypass) == (False, True)
    assert_only_problem(
        tmp_path,
        {"routes": {"removeBypass": "yes"}, "clusters": [cluster()]},
        "routes.removeBypass",
        "'yes' is not true or false",
    )
