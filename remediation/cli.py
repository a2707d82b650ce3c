"""The command line: ``python -m remediation check|enforce --config FILE [--cluster NAME] [--json]``.

Exit codes: 0 compliant (after enforcing), 3 drift found or remaining, 2 bad configuration or arguments,
1 any other failure (ARM unreachable, a write refused, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from remediation.config import Config, ConfigError, Mode, load_config
from remediation.findings import sorted_findings
from remediation.network import AzureNetwork
from remediation.reconcile import ClusterResult, reconcile_clusters
from remediation.resource_id import short_name
from remediation.settings import sweep_concurrency

EXIT_COMPLIANT, EXIT_FAILURE, EXIT_USAGE, EXIT_DRIFT = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Argument mistakes: usage and one line, exit 2, never a traceback."""
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m remediation", description="Keep the AKS egress baseline on Azure Firewall.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text in (
        ("check", "report drift from the baseline; never writes"),
        ("enforce", "restore the baseline (audit mode in the configuration writes nothing)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", required=True, help="the configuration file (YAML)")
        command.add_argument("--cluster", help="only this cluster (default: every configured cluster)")
        command.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
        command.add_argument(
            "--explain",
            action="store_true",
            help="also show what each cluster named by aks was learned to be, and from where (JSON: always)",
        )
        if name == "enforce":
            command.add_argument(
                "--no-wait",
                action="store_true",
                help="return once ARM accepted the writes (do not wait for them)",
            )
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        clusters = [config.cluster(args.cluster)] if args.cluster else list(config.clusters)
    except ConfigError as error:
        print(f"error: invalid configuration\n{error}", file=err)
        return EXIT_USAGE
    except KeyError as error:
        print(f"error: {error.args[0]}", file=err)
        return EXIT_USAGE
    mode = Mode.AUDIT if args.command == "check" else config.mode
    try:
        network = AzureNetwork.from_environment()
        concurrency = sweep_concurrency()
    except ValueError as error:  # SettingsError is one too
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    sweep = reconcile_clusters(
        clusters,
        config=config,
        network=network,
        mode=mode,
        wait=not getattr(args, "no_wait", False),
        concurrency=concurrency,
        trigger=args.command,
    )
    results = sorted(sweep.results, key=lambda r: [c.name for c in clusters].index(r.cluster))
    if args.json:
        json.dump({"command": args.command, "clusters": [r.as_dict() for r in results]}, out, indent=2)
        out.write("\n")
    else:
        for result in results:
            out.write(render_result(result, config=config, explain=args.explain))
    if any(r.failed for r in results):
        return EXIT_FAILURE
    return EXIT_COMPLIANT if all(r.compliant for r in results) else EXIT_DRIFT


def render_result(result: ClusterResult, *, config: Config, explain: bool = False) -> str:
    """A readable table for one cluster: each finding, where, and what was (or would be) done; with
    ``explain``, first what the cluster was learned to be."""
    resolved = result.resolved
    verdict = "compliant" if result.compliant else ("busy, will retry" if result.busy else "NOT compliant")
    if result.compliant and result.changed:
        verdict = "restored"
    calls = result.arm_calls
    lines = [
        f"{result.cluster}  ({result.mode}, profile {config.profile.name}): {verdict}"
        f"  [ARM calls: {calls['reads']} reads, {calls['writes']} writes, {result.duration_seconds:.1f}s]"
    ]
    if explain:
        lines += _explained(result)
    findings = sorted_findings(result.findings)
    if not findings:
        lines.append("  the baseline is in place; nothing to do")
    else:
        width = max(len(str(f.kind)) for f in findings)
        for finding in findings:
            if finding in resolved:
                state = "fixed"
            elif result.mode is Mode.AUDIT and any(finding in a.fixes for a in result.actions):
                state = "would fix"
            elif finding.blocking:
                state = "open"
            else:
                state = "note"
            lines.append(f"  {finding.kind!s:<{width}}  {state:<9}  {short_name(finding.resource)}: {finding.detail}")
    for action in result.actions:
        lines.append(f"  -> {action.method} {short_name(action.resource)} [{action.status}] {action.summary}")
        if action.detail:
            lines.append(f"     {action.detail}")
    return "\n".join(lines) + "\n\n"


def _explained(result: ClusterResult) -> list[str]:
    """What the cluster entry resolved to: each learned or configured value and where it comes from."""
    effective = result.effective
    if effective is None:
        return ["  configured in full (no aks): nothing learned"]
    name = short_name(str(effective.cluster.aks))
    if not effective.found:
        return [f"  AKS cluster {name} not found: nothing learned"]
    width = max(len(fact.name) for fact in effective.facts)
    lines = [f"  learned from AKS cluster {name} (configured values win):"]
    lines += [f"    {fact.name:<{width}}  {fact.value}  [{fact.source}]" for fact in effective.facts]
    return lines
