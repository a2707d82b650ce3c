"""``python -m localarm serve ...``: run the emulator until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from localarm import scenarios


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localarm", description="A local Azure Resource Manager.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve ARM over HTTPS until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    serve.add_argument("--ready-file", type=Path, help="write {endpoint, caBundle} here once listening")
    serve.add_argument("--traffic-dir", type=Path, help="record request/response pairs for oav")
    serve.add_argument("--scenario", choices=scenarios.available(), help="start from a named landing zone")
    serve.add_argument(
        "--scenario-file", type=Path, help="start from a scenario document in this file (e.g. a localarm.estates one)"
    )
    serve.add_argument("--lro-seconds", type=_non_negative, default=0.2, help="how long writes stay Updating")
    serve.add_argument("--events-url", help="deliver ARM events to this webhook, as Event Grid does")
    serve.add_argument(
        "--event-deliveries", type=_positive, default=1, help="how many events are delivered at a time (--events-url)"
    )
    serve.add_argument(
        "--throttle",
        action="store_true",
        help="throttle as ARM does: token buckets per principal and subscription (POST /_localarm/throttle tunes)",
    )
    args = parser.parse_args(argv)

    from localarm.server import LocalArm  # after argument errors, which need none of this

    if args.scenario and args.scenario_file:
        parser.error("--scenario and --scenario-file cannot be combined")

    arm = LocalArm(
        host=args.host,
        port=args.port,
        lro_seconds=args.lro_seconds,
        traffic_dir=args.traffic_dir,
        events_url=args.events_url,
        event_deliveries=args.event_deliveries,
        scenario=args.scenario,
        throttle=args.throttle,
    ).start()
    if args.scenario_file:
        try:
            document = json.loads(args.scenario_file.read_text())
            with arm.store.lock:
                scenarios.seed(document, arm.store, label=str(args.scenario_file))
        except (OSError, ValueError, KeyError) as err:
            arm.stop()
            print(f"localarm: cannot load {args.scenario_file}: {err}", file=sys.stderr)
            return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    info = arm.ready_info()
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(args.ready_file)
    print(
        f"localarm listening on {info['endpoint']} (CA bundle {info['caBundle']})",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    arm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
