"""``python -m demo``: the remediator against an embedded localarm serving the aks-demo landing zone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from localarm.server import LocalArm
from remediation import cli

CONFIG = Path(__file__).parent / "aks-demo.yaml"


def main() -> int:
    with LocalArm(scenario="aks-demo", lro_seconds=0.2) as arm:
        os.environ.update(
            ARM_ENDPOINT=arm.endpoint, ARM_CA_BUNDLE=str(arm.ca_bundle), ARM_POLLING_INTERVAL="0.2"
        )
        print(f"localarm serves the aks-demo landing zone at {arm.endpoint}\n")
        print("$ python -m remediation check --config demo/aks-demo.yaml")
        cli.main(["check", "--config", str(CONFIG)])
        print("$ python -m remediation enforce --config demo/aks-demo.yaml")
        cli.main(["enforce", "--config", str(CONFIG)])
        print("$ python -m remediation check --config demo/aks-demo.yaml")
        return cli.main(["check", "--config", str(CONFIG)])


if __name__ == "__main__":
    sys.exit(main())
