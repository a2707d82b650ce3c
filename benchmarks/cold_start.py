"""What a cold start costs (``python -m benchmarks.cold_start``): wall time and peak memory of fresh
interpreters doing what the Functions worker does first. Median of 5 runs each."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = {
    "python itself": "pass",
    "import function_app (the host indexes the app)": "import function_app",
    "+ configuration loaded (first invocation)": (
        "import function_app; from remediation.config import load_config; load_config('demo/aks-demo.yaml')"
    ),
    "+ network SDK client (first ARM call)": (
        "import function_app; from remediation.network import AzureNetwork; "
        "n = AzureNetwork(endpoint='https://127.0.0.1:1'); n._client('6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f')"
    ),
}


def measure(code: str) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MB) of ``python -c code``."""
    walls, peaks = [], []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        walls.append(time.perf_counter() - started)
        peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    return statistics.median(walls), max(peaks)


def main() -> None:
    print(f"{'step':<50} {'wall':>8} {'peak RSS':>9}")
    for name, code in STEPS.items():
        wall, peak = measure(code)
        print(f"{name:<50} {wall * 1000:>6.0f} ms {peak:>6.0f} MB")


if __name__ == "__main__":
    main()
