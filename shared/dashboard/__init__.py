"""The dashboard: one HTML page, its script and style sheet, and the charting library,
served by the function app itself (``GET /api/dashboard``, ``GET /api/dashboard/assets/<name>``).

The page holds no data: its script reads the HTTP API (``/api/...``) on the same host,
passing on the function key it was opened with (``?code=<key>`` in Azure) as the
``x-functions-key`` header. The charting library is Chart.js, pinned in ``package.json``
/ ``package-lock.json`` and read from ``node_modules/chart.js`` (installed by ``npm ci``;
``.funcignore`` keeps that one package in what ``func azure functionapp publish`` and
``azd deploy`` ship). Nothing is copied or built.

Framework-neutral like :mod:`shared.api`: :func:`serve` takes a
:class:`shared.api.http.Request` and returns a :class:`shared.api.http.Response`.
"""
from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from ..api.http import ApiError, Request, Response

__all__ = ["serve", "ASSETS", "STATIC", "CHART_JS", "PAGE_PATH"]

STATIC = Path(__file__).resolve().parent / "static"
ROOT = Path(__file__).resolve().parents[2]
CHART_JS_PACKAGE = ROOT / "node_modules" / "chart.js"
CHART_JS = CHART_JS_PACKAGE / "dist" / "chart.umd.min.js"
PAGE_PATH = "/api/dashboard"

# name -> (file, media type). Only these are served: no path from the request reaches the disk.
ASSETS: dict[str, tuple[Path, str]] = {
    "dashboard.js": (STATIC / "dashboard.js", "text/javascript; charset=utf-8"),
    "dashboard.css": (STATIC / "dashboard.css", "text/css; charset=utf-8"),
    "chart.umd.min.js": (CHART_JS, "text/javascript; charset=utf-8"),
}

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


@lru_cache(maxsize=1)
def _page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy: scripts from this host only, plus the page's
    one inline script (the loader that adds the function key to the asset URLs), by its hash."""
    body = (STATIC / "index.html").read_bytes()
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
                      for m in _INLINE_SCRIPT.findall(body))
    csp = (f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return body, csp


def _headers(media: str, cache: str) -> dict[str, str]:
    return {"Content-Type": media, "Cache-Control": cache, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


def _only_get(request: Request) -> None:
    if request.method not in ("GET", "HEAD"):
        raise ApiError("method-not-allowed", f"{request.method} is not allowed on {request.path}; use GET",
                       headers={"Allow": "GET"})


def _answer(request: Request) -> Response:
    segments = [s for s in request.path.split("/") if s]
    if segments[:1] == ["api"]:
        segments = segments[1:]
    if segments == ["dashboard"]:
        _only_get(request)
        body, csp = _page()
        headers = _headers("text/html; charset=utf-8", "no-store")
        headers["Content-Security-Policy"] = csp
        return Response(200, headers, b"" if request.method == "HEAD" else body)
    if len(segments) == 3 and segments[:2] == ["dashboard", "assets"]:
        name = segments[2]
        if name not in ASSETS:
            raise ApiError("not-found", f"no dashboard asset {name[:80]!r} (assets: {', '.join(sorted(ASSETS))})")
        _only_get(request)
        path, media = ASSETS[name]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            hint = (" Chart.js comes from node_modules: run `npm ci` (make install) before starting the app, and "
                    "deploy with the repository's .funcignore, which keeps node_modules/chart.js in the package"
                    if path == CHART_JS else "")
            raise ApiError("not-found", f"the dashboard asset {name} is not installed ({path.relative_to(ROOT)} "
                                        f"is missing).{hint}") from None
        # The key is in the URL (?code=), so the answer is private to this browser.
        headers = _headers(media, "private, max-age=300")
        return Response(200, headers, b"" if request.method == "HEAD" else data)
    raise ApiError("not-found", f"no resource at {request.path}")


def serve(request: Request) -> Response:
    """The page (``/api/dashboard``) or one of its assets (``/api/dashboard/assets/<name>``)."""
    try:
        return _answer(request)
    except ApiError as exc:
        return exc.to_response(request.path)
