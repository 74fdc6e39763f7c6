"""Loaded by every Python process of an offline test (via PYTHONPATH): refuses and records any connection
or name lookup that is not loopback, into the file named by RAG_NETGUARD_LOG."""

import ipaddress
import os
import sys

_LOG = os.environ.get("RAG_NETGUARD_LOG", "")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "", "0.0.0.0", "::"}


def _loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else address
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if _loopback(host):
        return
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {event} {host!r} {' '.join(sys.argv)[:120]}\n")
    raise OSError(f"netguard: outbound {event} to {host!r} refused in an offline test")


sys.addaudithook(_hook)
