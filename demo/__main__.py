"""``python -m demo``: start localarm with the aks-demo landing zone and show what the adapter reads."""

from __future__ import annotations

import sys

from localarm import scenarios
from localarm.server import LocalArm
from remediation.network import AzureNetwork, counting_calls
from remediation.resource_id import ResourceId


def main() -> int:
    scenario = scenarios.read("aks-demo")
    with LocalArm(scenario="aks-demo") as arm:
        network = AzureNetwork(endpoint=arm.endpoint, ca_bundle=str(arm.ca_bundle), polling_interval=0)
        print(f"localarm is serving the aks-demo landing zone at {arm.endpoint}\n")
        with counting_calls() as calls:
            for resource in scenario["resources"]:
                rid = ResourceId.parse(resource["id"])
                read = network.get(rid)
                props = read.body["properties"]
                print(f"{rid.kind.split('/', 1)[1]:<38} {rid.name:<34} {read.provisioning_state}")
                for config in props.get("ipConfigurations", []):
                    private = config["properties"].get("privateIPAddress")
                    if private:
                        print(f"{'':<23}private IP {private}")
                for route in props.get("routes", []):
                    rp = route["properties"]
                    hop = f"{rp['nextHopType']} {rp.get('nextHopIpAddress', '')}"
                    print(f"{'':<23}route {rp['addressPrefix']} -> {hop}")
                if "ipAddress" in props:
                    print(f"{'':<23}address {props['ipAddress']}")
        print(f"\n{calls.reads} ARM reads over HTTPS through azure-mgmt-network.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
