"""Serve an export directory on localhost for its web page: `python -m lnn.export.serve <export dir> [--port N]`.

The page needs HTTP (browsers refuse wasm and fetch from file://). Everything is served from the
export directory itself — the model files, the page under web/, onnxruntime-web under web/ort/ — so
nothing is fetched from the network. It is served cross-origin isolated (COOP/COEP headers), which
onnxruntime-web needs for more than one wasm thread: the page runs `?threads=N` threads (default 1, the
setting the latency goal and the benchmark's one-thread figures are measured in).
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lnn.errors import ConfigError

PAGE = "web/index.html"


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
        ".onnx": "application/octet-stream", ".json": "application/json", ".css": "text/css",
    }  # fmt: skip

    def do_GET(self):
        if self.path in ("/", "/index.html"):
            self.send_response(302)
            self.send_header("Location", "/web/")
            self.end_headers()
            return
        super().do_GET()

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")  # a re-export at the same place is picked up
        # cross-origin isolation: SharedArrayBuffer, so onnxruntime-web's wasm can run several threads
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):  # quiet: the page polls nothing, errors show in the browser
        pass


def make_server(directory: Path, port: int = 8000, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    directory = Path(directory)
    if not (directory / PAGE).is_file():
        raise ConfigError("serve", f"{directory} has no {PAGE}: export with web.enabled=true first "
                          "(python export.py run=<run> ...)")  # fmt: skip
    handler = functools.partial(Handler, directory=str(directory))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise ConfigError("port", f"cannot listen on {host}:{port} ({e.strerror}); pass another port "
                          "(port=0 picks a free one)") from None  # fmt: skip


def page_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/web/"


def serve_in_thread(directory: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread (tests, benchmarks); stop with server.shutdown()."""
    server = make_server(directory, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, page_url(server)


def serve(directory: Path, port: int = 8000, host: str = "127.0.0.1") -> None:
    server = make_server(directory, port, host)
    print(f"serving {Path(directory).resolve()}\n  open {page_url(server)}   (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="an export directory (written by export.py)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        serve(Path(args.directory), args.port, args.host)
    except ConfigError as e:
        print(f"error: {e.key} — {e.message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
