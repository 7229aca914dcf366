"""Serve the MiniWoB++ task pages from the `miniwob` package over HTTP on localhost.

The pages are served, not opened as file://, because Chromium restricts file:// pages (no XHR, opaque
origins) and some task assets are fetched at run time.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import threading
from pathlib import Path

from lnn.errors import missing_extra


def html_root() -> Path:
    """The `html/` folder of the installed `miniwob` package (located without importing it: its
    __init__ pulls in gymnasium and selenium, which lnn does not need)."""
    spec = importlib.util.find_spec("miniwob")
    if spec is None or not spec.submodule_search_locations:
        raise missing_extra(ModuleNotFoundError("no module named miniwob", name="miniwob"))
    return Path(list(spec.submodule_search_locations)[0]) / "html"


def available_tasks() -> tuple[str, ...]:
    """Names of the MiniWoB++ tasks shipped by the package (the html files in html/miniwob/)."""
    return tuple(sorted(p.stem for p in (html_root() / "miniwob").glob("*.html")))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    # the pages declare no charset: without one Chromium reads their UTF-8 as Latin-1 (unicode-test's
    # buttons showed "ç¡®å®š" for "确定")
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
    }

    def log_message(self, format, *args):  # one line per request would drown the caller's output
        pass


class TaskServer:
    """A static HTTP server on 127.0.0.1 (a free port) in a daemon thread; `url(task)` is a task page."""

    def __init__(self, root: Path | None = None):
        root = root or html_root()
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="miniwob-http", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, task: str) -> str:
        return f"http://127.0.0.1:{self.port}/miniwob/{task}.html"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
