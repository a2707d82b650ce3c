"""How the nightly sweep scales with the estate (``python -m benchmarks.sweep``).

Estates of 100 and 1,000 AKS clusters over 10 hubs (each hub one firewall and policy, each cluster its own
spoke; localarm/estates.py), served by localarm in a process of its own with ARM's throttling model on
(per principal and subscription: reads 250 + 25/s, writes 200 + 10/s). Each estate is swept twice: first
with every spoke's default route and the hubs' rule collection groups missing (one write per route table
and per policy), then converged (the steady state: reads only). The throttle bound is the least time ARM's
read and write buckets allow for that many requests: the larger of (reads - 250) / 25 s and
(writes - 200) / 10 s. "paced" is the time the sweep's threads (4) spent waiting for tokens, added up.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.localarm_process import REMEDIATOR, Localarm
from localarm import estates
from remediation import deadline
from remediation.config import load_config
from remediation.network import AzureNetwork
from remediation.reconcile import reconcile_clusters

HUBS = 10


def sweep_once(arm: Localarm, config_path: Path, clusters: int) -> dict[str, float]:
    config = load_config(config_path)
    network = AzureNetwork(endpoint=arm.endpoint, ca_bundle=arm.ca_bundle, principal_id=REMEDIATOR, polling_interval=0)
    arm.control("requests", method="DELETE")
    started = time.monotonic()
    with deadline.running(deadline.Deadline.after(deadline.SWEEP_SECONDS)):
        sweep = reconcile_clusters(config.clusters, config=config, network=network, wait=False, concurrency=4)
    wall = time.monotonic() - started
    requests = arm.control("requests")["requests"]
    reads = sum(1 for r in requests if r["method"] == "GET" and r["status"] != 429)
    writes = sum(1 for r in requests if r["method"] in ("PUT", "DELETE") and r["status"] != 429)
    throttled = sum(1 for r in requests if r["status"] == 429)
    return {
        "clusters": clusters,
        "compliant": sum(1 for r in sweep.results if r.compliant),
        "reads": reads,
        "reads per cluster": reads / clusters,
        "writes": writes,
        "429s": throttled,
        "wall": wall,
        # The read and write buckets refill side by side: the slower one bounds the sweep.
        "bound": max(max(0, reads - 250) / 25, max(0, writes - 200) / 10),
        "paced": network.pacer.waited,
    }


def main() -> None:
    rows = []
    for clusters in (100, 1000):
        per_hub = clusters // HUBS
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            config_path = workdir / "remediation.yaml"
            config_path.write_text(yaml.safe_dump(estates.configuration(HUBS, per_hub)))
            for state, converged in (("drifted", False), ("converged", True)):
                arm = Localarm(estates.document(HUBS, per_hub, converged=converged), workdir)
                try:
                    rows.append((state, sweep_once(arm, config_path, clusters)))
                finally:
                    arm.stop()
    print(
        f"{'estate':>9}  {'clusters':>8}  {'compliant':>9}  {'reads':>6}  {'reads/cluster':>13}  {'writes':>6}  "
        f"{'429s':>4}  {'sweep wall':>10}  {'throttle bound':>14}  {'wall/bound':>10}  {'paced':>7}"
    )
    for state, row in rows:
        ratio = row["wall"] / row["bound"] if row["bound"] else float("nan")
        print(
            f"{state:>9}  {row['clusters']:>8,.0f}  {row['compliant']:>9,.0f}  {row['reads']:>6,.0f}  "
            f"{row['reads per cluster']:>13.2f}  {row['writes']:>6,.0f}  {row['429s']:>4,.0f}  "
            f"{row['wall']:>9.1f}s  {row['bound']:>13.1f}s  {ratio:>10.2f}  {row['paced']:>6.1f}s"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
