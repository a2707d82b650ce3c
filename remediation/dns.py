"""The address of a name, as this process's resolver sees it, within a bounded time.

Used for an AKS cluster's API server FQDN. A name that does not resolve here (a private cluster's FQDN outside
its network, any name on a machine without DNS) simply has no address: nothing else depends on it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading

DEFAULT_TIMEOUT = 2.0


class Unresolved(Exception):
    """The name has no IPv4 address here; the text says why (for ``check --explain``)."""


def resolve_address(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The name's IPv4 address (the lowest, if it has several, so that the answer is stable).

    ``getaddrinfo`` cannot be given a timeout: it runs in a daemon thread, and a resolver that has not
    answered within ``timeout`` seconds counts as no answer.
    """
    found: list[str] = []
    failed: list[str] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(name, 443, family=socket.AF_INET, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            failed.append(str(err) or type(err).__name__)
            return
        found.extend(str(info[4][0]) for info in infos)

    thread = threading.Thread(target=lookup, name="resolve-api-server", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Unresolved(f"{name} did not resolve within {timeout:g} s")
    if failed or not found:
        raise Unresolved(f"{name} does not resolve here ({failed[0] if failed else 'no IPv4 address'})")
    return str(min(ipaddress.IPv4Address(address) for address in found))
