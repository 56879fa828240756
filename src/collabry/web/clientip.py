"""The client's address: X-Forwarded-For is believed only as far as it was written by trusted proxies.

Walking the header from the right, every hop added by a trusted proxy is skipped; the first
untrusted address is the client. Anything further left was written by the client itself and is
ignored, so a client cannot choose its own address by sending the header.
"""

from __future__ import annotations

import functools
import ipaddress

from ..config import Network


@functools.lru_cache(maxsize=4096)  # the same few proxies and clients ask again and again
def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    peer = peer or "unknown"
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the chain: fall back to the proxy's view
    return hops[0] if hops else peer
