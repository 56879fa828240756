from __future__ import annotations

import ipaddress

from collabry.web.clientip import client_ip

TRUSTED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


def test_direct_client_ignores_header():
    assert client_ip("198.51.100.1", "1.2.3.4", TRUSTED) == "198.51.100.1"


def test_through_trusted_proxy_uses_rightmost_untrusted():
    assert client_ip("127.0.0.1", "198.51.100.9", TRUSTED) == "198.51.100.9"
    # a forged left part written by the client is ignored
    assert client_ip("127.0.0.1", "6.6.6.6, 198.51.100.9", TRUSTED) == "198.51.100.9"
    # several trusted hops are skipped
    assert client_ip("127.0.0.1", "6.6.6.6, 198.51.100.9, 10.1.2.3", TRUSTED) == "198.51.100.9"


def test_garbage_falls_back_to_peer():
    assert client_ip("127.0.0.1", "not-an-ip", TRUSTED) == "127.0.0.1"
    assert client_ip("127.0.0.1", "", TRUSTED) == "127.0.0.1"
