"""Which web pages may talk to ``laser view``: its own origin, not any site open in the user's browser.

A browser lets any page open a WebSocket to ``ws://localhost:8080`` and sends the page's ``Origin`` with the
handshake; without a check, a page of another site could read the scene, run prompts and press export. viser
has no hook for this, so :func:`origin_checked_serve` wraps the ``websockets`` server viser starts (for the
duration of its start only) with a ``process_request`` that answers 403 to a WebSocket handshake from any
other origin. Plain HTTP requests (the page itself) are served as before.

Allowed: no ``Origin`` (not a browser page: a script of the user's own), loopback origins on the viewer's
port (``localhost``, ``127.0.0.1``, ``[::1]``), the ``--host`` name itself on that port, an IP-literal origin
equal to the request's ``Host`` (a LAN address with ``--host 0.0.0.0``: an IP cannot be DNS-rebound), and the
origins given with ``--allow-origin``.
"""

from __future__ import annotations

import http
import ipaddress
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_PATCH_LOCK = threading.Lock()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OriginPolicy:
    """The origins whose pages may open the viewer's WebSocket."""

    host: str
    """The address the server listens on (``--host``)."""
    extra: tuple[str, ...] = ()
    """Further origins, exactly as browsers send them (``scheme://host[:port]``)."""

    def allows(self, origin: str | None, host_header: str | None, port: int) -> bool:
        """Whether a handshake with this ``Origin`` (None: absent) and ``Host`` may connect to ``port``."""
        if origin is None:
            return True
        if origin.rstrip("/") in {o.rstrip("/") for o in self.extra}:
            return True
        try:
            parts = urlsplit(origin)
            name, origin_port = parts.hostname or "", parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:  # a malformed port
            return False
        if parts.scheme not in ("http", "https") or origin_port != port:
            return False
        if name in LOOPBACK_NAMES or name == self.host.strip("[]"):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False  # a DNS name other than --host: could be rebound to this machine
        return host_header is not None and urlsplit(f"//{host_header}").hostname == name


@contextmanager
def origin_checked_serve(policy: OriginPolicy) -> Iterator[None]:
    """While in this block, ``websockets.asyncio.server.serve`` refuses WebSocket handshakes ``policy`` does
    not allow (viser calls it from its server thread before its constructor returns)."""
    import websockets.asyncio.server as ws_server

    real = ws_server.serve

    def serve(handler: Any, host: Any = None, port: Any = None, *args: Any, process_request: Any = None,
              **kwargs: Any) -> Any:
        def check(connection: Any, request: Any) -> Any:
            if request.headers.get("Upgrade", "").lower() == "websocket" and not policy.allows(
                    request.headers.get("Origin"), request.headers.get("Host"), int(port)):
                return connection.respond(http.HTTPStatus.FORBIDDEN,
                                          "laser view accepts connections from its own page only\n")
            return process_request(connection, request) if process_request is not None else None

        return real(handler, host, port, *args, process_request=check, **kwargs)

    with _PATCH_LOCK:
        ws_server.serve = serve
        try:
            yield
        finally:
            ws_server.serve = real
