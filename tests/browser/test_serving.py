"""How nginx serves the built front end: the single-page fallback, cache headers, gzip, the
Content-Security-Policy, and the initial JavaScript budget (200 KB gzipped). No browser needed."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from collabry.devstack.components import free_port

BUDGET_GZIP_BYTES = 200 * 1024

pytestmark = pytest.mark.slow


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback URL built here
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback URL built here
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture
def site(web_build: Path, nginx_for) -> str:
    _, port = nginx_for([free_port()])  # no gateway behind it: only the static files are under test
    return f"http://127.0.0.1:{port}"


def initial_scripts(index_html: str) -> list[str]:
    """What the first screen loads before it runs: the entry script and the modules it preloads."""
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', index_html)
    preloads = re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="([^"]+)"', index_html)
    return scripts + preloads


def test_index_fallback_and_security_headers(site):
    for path in ("/", "/notebooks/abc/chat", "/boards"):
        status, headers, body = fetch(site + path)
        assert status == 200, path
        assert headers["content-type"].startswith("text/html")
        assert b'<div id="app">' in body
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["cache-control"] == "no-cache"
        assert headers["x-content-type-options"] == "nosniff"
    # no inline script anywhere in the page the policy protects
    _, _, body = fetch(site + "/")
    assert not re.search(rb"<script(?![^>]*\bsrc=)[^>]*>", body)


def test_hashed_assets_are_cached_for_a_year_and_gzipped(site):
    _, _, body = fetch(site + "/")
    scripts = initial_scripts(body.decode())
    styles = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', body.decode())
    assert scripts and styles
    for path in scripts + styles:
        assert re.fullmatch(r"/assets/[\w-]+-[\w-]{8}\.(js|css)", path), path
        status, headers, _ = fetch(site + path, **{"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert headers["content-encoding"] == "gzip"
        assert headers["content-type"].split(";")[0] in ("application/javascript", "text/css")
    status, _, _ = fetch(site + "/assets/missing-12345678.js")
    assert status == 404  # a missing asset is not the app's index


def test_initial_javascript_fits_the_budget(site):
    _, _, body = fetch(site + "/")
    total = 0
    for path in initial_scripts(body.decode()):
        _, headers, data = fetch(site + path, **{"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip"
        total += len(data)
    assert 0 < total <= BUDGET_GZIP_BYTES, f"initial JavaScript is {total} bytes gzipped"
