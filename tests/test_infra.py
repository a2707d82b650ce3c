"""The deployment as a platform team reviews it: azure.yaml and the Bicep under infra/.

No Bicep compiler runs offline, so the Bicep is checked two ways: checkov (its bundled parser pycep, run from
.venv-infra/) for syntax and security findings, and plain-text reading of the declarations for the promises
the deployment makes: events come from remediation/watched-operations.json, network permissions from
infra/remediator-role.json, and nothing is granted above a resource group.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
WATCHED_OPERATIONS = ROOT / "remediation" / "watched-operations.json"
REMEDIATOR_ROLE = INFRA / "remediator-role.json"
DEPLOY_GUIDE = ROOT / "docs" / "deploy.md"

# What checkov records for "checkov:skip=CKV_..." without ": reason".
CHECKOV_WITHOUT_REASON = "No comment provided"
# Event Grid: at most 25 values across all advanced filters of one event subscription.
EVENT_GRID_FILTER_VALUES_LIMIT = 25
APP_SETTINGS_THE_PRODUCT_READS = {
    "REMEDIATION_CONFIG",
    "REMEDIATION_MODE",
    "SWEEP_SCHEDULE",
    "SWEEP_CONCURRENCY",
    "REMEDIATOR_PRINCIPAL_ID",
    "TEAMS_WEBHOOK_URL",
    "AUDIT_EVENTGRID_ENDPOINT",
    "AZURE_CLIENT_ID",
}
APP_SETTINGS_THE_HOST_READS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Local testing only (ARM_*), or replaced by functionAppConfig on Flex Consumption.
APP_SETTINGS_NEVER_DEPLOYED = {
    "ARM_ENDPOINT",
    "ARM_CA_BUNDLE",
    "AzureWebJobsStorage",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
}
# Environment the hooks may read besides main.bicep's outputs: set by azd, or by the operator (docs/deploy.md).
HOOK_INPUTS_NOT_FROM_MAIN = {
    "AZURE_ENV_NAME",
    "AZURE_LOCATION",
    "AZURE_SUBSCRIPTION_ID",
    "REMEDIATED_RESOURCE_GROUP_IDS",
    "EXTRA_WATCHED_SUBSCRIPTION_IDS",
    "AUDIT_EVENTGRID_TOPIC_ID",
}


# ---------------------------------------------------------------------------------------------------------
# checkov


@dataclass(frozen=True)
class CheckovReport:
    """What checkov found in one directory, reduced to what the gate judges."""

    parsing_errors: tuple[str, ...]
    failed: tuple[str, ...]
    skipped: tuple[tuple[str, str, str], ...]  # (check id, file, written reason)
    passed: int

    def problems(self) -> list[str]:
        """Everything that must stop a merge: checkov exits 0 on a parse error, so that counts here too."""
        found = [f"parse error: {path}" for path in self.parsing_errors]
        found += [f"failed: {finding}" for finding in self.failed]
        found += [
            f"suppressed without a reason: {check} in {path}"
            for check, path, reason in self.skipped
            if reason == CHECKOV_WITHOUT_REASON or len(reason.split()) < 4
        ]
        return found


def run_checkov(directory: Path) -> CheckovReport:
    """Run checkov on every .bicep file under ``directory``, offline, and read its JSON report."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup` (it installs requirements-infra.txt)"
    completed = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        cwd=directory,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    if isinstance(report, list):  # one entry per framework; only bicep runs
        (report,) = report
    results = report.get("results", {})
    return CheckovReport(
        parsing_errors=tuple(results.get("parsing_errors", [])),
        failed=tuple(
            f"{check['check_id']} {check['resource']} ({check['file_path']})"
            for check in results.get("failed_checks", [])
        ),
        skipped=tuple(
            (check["check_id"], check["file_path"], check["check_result"].get("suppress_comment", ""))
            for check in results.get("skipped_checks", [])
        ),
        passed=len(results.get("passed_checks", [])),
    )


@pytest.fixture(scope="module")
def infra_report() -> CheckovReport:
    return run_checkov(INFRA)


def test_every_bicep_file_parses(infra_report: CheckovReport) -> None:
    assert list(INFRA.rglob("*.bicep"))
    assert infra_report.parsing_errors == ()


def test_checkov_passes_with_every_suppression_explained_in_the_bicep(infra_report: CheckovReport) -> None:
    assert infra_report.problems() == []
    assert infra_report.passed > 0


def test_every_suppression_names_a_check_of_the_resource_it_sits_in(infra_report: CheckovReport) -> None:
    written = {
        (match.group(1), "/" + path.relative_to(INFRA).as_posix())
        for path in INFRA.rglob("*.bicep")
        for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)", path.read_text())
    }
    honoured = {(check, path) for check, path, _ in infra_report.skipped}
    assert written == honoured


def test_no_checkov_configuration_suppresses_anything_globally() -> None:
    for folder in (ROOT, INFRA):
        assert not list(folder.glob(".checkov.y*ml")), f"checkov configuration in {folder}"


def test_the_gate_fails_on_a_file_that_does_not_parse_and_on_an_unexplained_finding(tmp_path: Path) -> None:
    infra = tmp_path / "infra"
    shutil.copytree(INFRA, infra)
    main = infra / "main.bicep"
    main.write_text(main.read_text() + "\nresource broken 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n")
    storage = infra / "app" / "storage.bicep"
    storage.write_text(
        "\n".join(line for line in storage.read_text().splitlines() if "checkov:skip=CKV_AZURE_35" not in line)
    )

    problems = run_checkov(infra).problems()

    assert any(problem.startswith("parse error:") and problem.endswith("main.bicep") for problem in problems)
    assert any(problem.startswith("failed: CKV_AZURE_35") for problem in problems)


# ---------------------------------------------------------------------------------------------------------
# Reading Bicep text


@dataclass(frozen=True)
class Declaration:
    """A ``resource`` or ``module`` declaration: symbol, type (or module path), and its text."""

    symbol: str
    target: str
    header: str  # from "=" to the opening brace of the body: existing, if (...), [for ...:
    body: str


@dataclass(frozen=True)
class Parameter:
    name: str
    default: str | None
    decorators: tuple[str, ...]


def without_comments(text: str) -> str:
    """The Bicep text with // comments removed (not those inside '...' strings, such as URLs)."""
    kept: list[str] = []
    for line in text.splitlines():
        in_string = False
        end = len(line)
        for index, char in enumerate(line):
            if char == "'" and (index == 0 or line[index - 1] != "\\"):
                in_string = not in_string
            elif not in_string and line.startswith("//", index):
                end = index
                break
        kept.append(line[:end].rstrip())
    return "\n".join(kept)


def block_from(text: str, start: int) -> str:
    """The balanced {...} block whose opening brace is the first one at or after ``start``."""
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening : index + 1]
    raise AssertionError(f"unbalanced braces after offset {start}")


@cache
def bicep(relative: str) -> str:
    return without_comments((INFRA / relative).read_text())


def declarations(relative: str, keyword: str) -> list[Declaration]:
    text = bicep(relative)
    found = []
    for match in re.finditer(rf"^{keyword} (\w+) '([^']+)'([^{{\n]*)", text, flags=re.MULTILINE):
        found.append(Declaration(match.group(1), match.group(2), match.group(3), block_from(text, match.start())))
    return found


def parameters(relative: str) -> dict[str, Parameter]:
    lines = bicep(relative).splitlines()
    found = {}
    for number, line in enumerate(lines):
        match = re.match(r"param (\w+) \w+(?: = (.+))?$", line)
        if match:
            decorators = []
            for previous in reversed(lines[:number]):
                if not previous.startswith(("@", " ", "}", ")", "]")) or not previous:
                    break
                decorators.append(previous)
            found[match.group(1)] = Parameter(match.group(1), match.group(2), tuple(reversed(decorators)))
    return found


def target_scope(relative: str) -> str:
    match = re.search(r"^targetScope = '(\w+)'", bicep(relative), flags=re.MULTILINE)
    return match.group(1) if match else "resourceGroup"


def bicep_files() -> list[str]:
    return sorted(path.relative_to(INFRA).as_posix() for path in INFRA.rglob("*.bicep"))


def the_resource(relative: str, resource_type: str) -> Declaration:
    """The one resource of ``resource_type`` (without API version) declared in the file, existing ones aside."""
    (resource,) = [
        declared
        for declared in declarations(relative, "resource")
        if declared.target.split("@")[0] == resource_type and "existing" not in declared.header
    ]
    return resource


def app_settings() -> dict[str, str]:
    app = the_resource("app/function-app.bicep", "Microsoft.Web/sites")
    pairs = re.findall(r"name: '([^']+)'\n\s+value: (.+)", app.body)
    return dict(pairs)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------------------
# Events: one source of truth for what the remediator handles


def test_watched_operations_fit_one_event_grid_filter() -> None:
    watched = load_json(WATCHED_OPERATIONS)
    operations = [operation.lower() for operation in watched["operations"]]

    assert 0 < len(operations) <= EVENT_GRID_FILTER_VALUES_LIMIT
    assert len(set(operations)) == len(operations)
    assert set(watched["eventTypes"]) == {
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Resources.ResourceWriteFailure",
        "Microsoft.Resources.ResourceDeleteSuccess",
    }


def test_event_subscriptions_take_event_types_and_operations_from_watched_operations_json() -> None:
    events = bicep("events.bicep")
    load = re.search(r"var (\w+) = loadJsonContent\('([^']+)'\)", events)
    assert load, "events.bicep must load the watched operations"
    watched, path = load.groups()
    assert (INFRA / path).resolve() == WATCHED_OPERATIONS

    subscriptions = [
        module
        for module in declarations("events.bicep", "module")
        if module.target == "events/event-subscription.bicep"
    ]
    assert subscriptions
    for module in subscriptions:
        assert f"includedEventTypes: {watched}.eventTypes" in module.body
        assert f"operationNames: {watched}.operations" in module.body


def test_the_event_subscription_filters_on_operation_name_with_at_most_25_values() -> None:
    subscription = the_resource(
        "events/event-subscription.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    )
    assert "includedEventTypes: includedEventTypes" in subscription.body
    assert re.search(
        r"operatorType: 'StringIn'\s+key: 'data.operationName'\s+values: operationNames", subscription.body
    )
    assert (
        f"@maxLength({EVENT_GRID_FILTER_VALUES_LIMIT})"
        in parameters("events/event-subscription.bicep")["operationNames"].decorators
    )


def test_no_bicep_file_copies_an_operation_or_an_action() -> None:
    names = load_json(WATCHED_OPERATIONS)["operations"] + load_json(REMEDIATOR_ROLE)["actions"]
    for relative in bicep_files():
        text = (INFRA / relative).read_text().lower()
        assert not [name for name in names if name.lower() in text], relative


def test_events_reach_on_resource_change_with_retries_and_dead_lettering() -> None:
    subscription = the_resource(
        "events/event-subscription.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    )
    assert "endpointType: 'AzureFunction'" in subscription.body
    assert "resourceId: '${functionAppId}/functions/on_resource_change'" in subscription.body
    assert re.search(r"retryPolicy: \{\s+maxDeliveryAttempts: \w+\s+eventTimeToLiveInMinutes: \w+", subscription.body)
    assert "deadLetterWithResourceIdentity:" in subscription.body
    assert "eventDeliverySchema: 'EventGridSchema'" in subscription.body

    topic = the_resource("events/system-topic.bicep", "Microsoft.EventGrid/systemTopics")
    assert "topicType: 'Microsoft.Resources.Subscriptions'" in topic.body
    assert "location: 'global'" in topic.body


# ---------------------------------------------------------------------------------------------------------
# Permissions


def test_the_remediator_role_lists_exact_actions_sorted_and_unique() -> None:
    role = load_json(REMEDIATOR_ROLE)
    actions: list[str] = role["actions"]
    every_permission = actions + role["notActions"] + role["dataActions"] + role["notDataActions"]

    assert role["description"].strip()
    assert actions
    assert not [action for action in every_permission if "*" in action]
    assert not [action for action in every_permission if action.lower().startswith("microsoft.authorization/")]
    assert actions == sorted(actions, key=str.lower)
    assert len({action.lower() for action in actions}) == len(actions)


def test_the_role_definition_is_the_json_file_assignable_only_on_the_named_resource_groups() -> None:
    load = re.search(r"var (\w+) = loadJsonContent\('([^']+)'\)", bicep("access.bicep"))
    assert load
    role, path = load.groups()
    assert (INFRA / path).resolve() == REMEDIATOR_ROLE

    definition = the_resource("access.bicep", "Microsoft.Authorization/roleDefinitions")
    for key in ("actions", "notActions", "dataActions", "notDataActions"):
        assert f"{key}: {role}.{key}" in definition.body
    assert "assignableScopes: remediatedResourceGroupIds" in definition.body


def test_the_remediator_role_is_assigned_once_per_named_resource_group() -> None:
    (assignments,) = [
        module
        for module in declarations("access.bicep", "module")
        if module.target == "access/remediator-role-assignment.bicep"
    ]
    assert re.search(r"\[for \((\w+), \w+\) in remediatedResourceGroupIds:", assignments.header)
    assert "scope: resourceGroup(split(resourceGroupId, '/')[2], split(resourceGroupId, '/')[4])" in assignments.body
    assert "roleDefinitionId: remediatorRoleDefinition.id" in assignments.body
    assert bicep("access.bicep").count("remediatorRoleDefinition.id") == 2  # the assignments and the output


def test_role_assignments_are_scoped_to_resource_groups_or_resources_never_above() -> None:
    files_with_assignments = 0
    for relative in bicep_files():
        resources = declarations(relative, "resource")
        assignments = [
            resource for resource in resources if resource.target.startswith("Microsoft.Authorization/roleAssignments@")
        ]
        if not assignments:
            continue
        files_with_assignments += 1
        assert target_scope(relative) == "resourceGroup", relative
        symbols = {resource.symbol for resource in resources}
        for assignment in assignments:
            scope = re.search(r"^  scope: (.+)$", assignment.body, flags=re.MULTILINE)
            assert scope is None or scope.group(1) in symbols, f"{relative}: {assignment.symbol}"
    assert files_with_assignments >= 5


def test_the_azd_deployment_creates_nothing_outside_the_apps_resource_group() -> None:
    """`azd down` deletes every resource group its deployment touched: it must only ever be the app's."""
    modules = declarations("main.bicep", "module")
    assert modules
    assert all("scope: appResourceGroup" in module.body for module in modules)
    assert [resource.target.split("@")[0] for resource in declarations("main.bicep", "resource")] == [
        "Microsoft.Resources/resourceGroups"
    ]


def test_the_deploy_guide_explains_every_action_of_the_role() -> None:
    guide = DEPLOY_GUIDE.read_text()
    assert not [action for action in load_json(REMEDIATOR_ROLE)["actions"] if f"`{action}`" not in guide]


# ---------------------------------------------------------------------------------------------------------
# The Function App


def test_the_app_gets_exactly_the_settings_the_product_and_the_host_read() -> None:
    settings = app_settings()
    assert set(settings) == APP_SETTINGS_THE_PRODUCT_READS | APP_SETTINGS_THE_HOST_READS
    assert not set(settings) & APP_SETTINGS_NEVER_DEPLOYED


def test_host_storage_is_reached_with_the_identity_and_shared_keys_are_off() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert "allowSharedKeyAccess: false" in bicep("app/storage.bicep")
    assert "type: 'UserAssignedIdentity'" in bicep("app/function-app.bicep")


def test_the_remediator_principal_id_is_the_principal_id_of_the_apps_identity() -> None:
    assert app_settings()["REMEDIATOR_PRINCIPAL_ID"] == "identityPrincipalId"
    assert "identityPrincipalId: identity.outputs.principalId" in bicep("main.bicep")
    assert "output principalId string = remediatorIdentity.properties.principalId" in bicep("app/identity.bicep")


def test_the_teams_webhook_reaches_the_app_only_as_a_key_vault_reference() -> None:
    assert "@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})" in app_settings()["TEAMS_WEBHOOK_URL"]
    assert "keyVaultReferenceIdentity: identityId" in bicep("app/function-app.bicep")
    webhook_parameter = parameters("main.bicep")["teamsWebhookUrl"]
    assert "@secure()" in webhook_parameter.decorators
    assert webhook_parameter.default == "''"
    vault = bicep("app/secrets.bicep")
    assert "enableRbacAuthorization: true" in vault
    assert "enablePurgeProtection: true" in vault


def test_the_app_runs_python_3_11_on_flex_consumption() -> None:
    app = bicep("app/function-app.bicep")
    assert "tier: 'FlexConsumption'" in app
    assert re.search(r"runtime: \{\s+name: 'python'\s+version: '3.11'", app)
    assert "kind: 'functionapp,linux'" in app


# ---------------------------------------------------------------------------------------------------------
# azd


def azure_yaml() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_azure_yaml_names_one_python_function_service_at_the_repository_root() -> None:
    services = azure_yaml()["services"]
    assert len(services) == 1
    ((name, service),) = services.items()
    assert service["host"] == "function"
    assert service["language"] == "python"
    assert (ROOT / service["project"]).resolve() == ROOT
    assert (ROOT / "function_app.py").exists()
    assert f"'azd-service-name': '{name}'" in bicep("app/function-app.bicep")


def test_azd_hooks_run_the_access_and_events_deployments_in_both_shells() -> None:
    hooks = azure_yaml()["hooks"]
    for hook, template in (("postprovision", "infra/access.bicep"), ("postdeploy", "infra/events.bicep")):
        for platform in ("posix", "windows"):
            script = ROOT / hooks[hook][platform]["run"]
            assert template in script.read_text(), script


@pytest.mark.parametrize(
    ("template", "script_stem"), [("access.bicep", "grant-access"), ("events.bicep", "subscribe-events")]
)
def test_hooks_pass_every_parameter_without_a_default(template: str, script_stem: str) -> None:
    required = [name for name, parameter in parameters(template).items() if parameter.default is None]
    assert required
    posix = (INFRA / "hooks" / f"{script_stem}.sh").read_text()
    windows = (INFRA / "hooks" / f"{script_stem}.ps1").read_text()
    assert not [name for name in required if f" {name}=" not in posix]
    assert not [
        name for name in required if not re.search(rf"^\s+{name}\s+= @\{{ value =", windows, flags=re.MULTILINE)
    ]


def test_hooks_read_only_main_outputs_and_documented_variables() -> None:
    outputs = set(re.findall(r"^output (\w+) ", bicep("main.bicep"), flags=re.MULTILINE))
    guide = DEPLOY_GUIDE.read_text()
    for script in (INFRA / "hooks").iterdir():
        variable = r"\$env:([A-Z][A-Z0-9_]+)" if script.suffix == ".ps1" else r"\$\{?([A-Z][A-Z0-9_]+)"
        used = set(re.findall(variable, script.read_text()))
        assert used <= outputs | HOOK_INPUTS_NOT_FROM_MAIN, script.name
    assert not [name for name in HOOK_INPUTS_NOT_FROM_MAIN if f"`{name}`" not in guide]


def test_main_parameters_file_maps_declared_parameters_with_the_bicep_defaults() -> None:
    mapped = load_json(INFRA / "main.parameters.json")["parameters"]
    declared = parameters("main.bicep")
    assert set(mapped) <= set(declared)
    assert {name for name, parameter in declared.items() if parameter.default is None} <= set(mapped)
    for name, entry in mapped.items():
        fallback = re.fullmatch(r"\$\{\w+=(.*)\}", entry["value"])
        if fallback:
            assert fallback.group(1) == (declared[name].default or "").strip("'"), name


def test_every_module_and_loaded_file_exists() -> None:
    for relative in bicep_files():
        folder = (INFRA / relative).parent
        text = bicep(relative)
        referenced = re.findall(r"^module \w+ '([^']+)'", text, flags=re.MULTILINE)
        referenced += re.findall(r"loadJsonContent\('([^']+)'\)", text)
        for path in referenced:
            assert (folder / path).is_file(), f"{relative}: {path}"
