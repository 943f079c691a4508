"""Headless Chromium driven over the DevTools protocol: open a local page offline, read its console, run JS.

Only `websocket-client` is needed on the Python side; Chromium is Debian's `chromium` package.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("TPSEARCH_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def require_chromium() -> str:
    """The browser's binary. Without one the test fails (a skip would pass pages no browser ever drew), unless
    the run opted out: TPSEARCH_TEST_NO_BROWSER=1 (scripts/test.sh --no-browser) skips with that reason."""
    import pytest

    binary = find_chromium()
    if binary is None:
        if os.environ.get("TPSEARCH_TEST_NO_BROWSER") and not os.environ.get("CI"):
            pytest.skip("Chromium opted out (TPSEARCH_TEST_NO_BROWSER, scripts/test.sh --no-browser)")
        pytest.fail("no Chromium: apt-get install chromium (scripts/services.sh does it as root), or set "
                    "TPSEARCH_CHROMIUM to a browser, or opt out with TPSEARCH_TEST_NO_BROWSER=1", pytrace=False)
    return binary


class Browser:
    """One headless Chromium with one page; use as a context manager so the process always ends."""

    def __init__(self, binary: str, timeout: float = 30.0) -> None:
        import websocket  # the test extra; imported here so a missing browser can skip before this

        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="tpsearch-chromium-")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # Headless Chromium has no GPU; without this flag WebGL (Plotly's parcoords) is unavailable.
                 "--enable-unsafe-swiftshader",
                 f"--user-data-dir={self._profile}", "--remote-debugging-port=0", "--window-size=1400,1000",
                 "about:blank"]
        self.proc = subprocess.Popen([binary, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port()
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout))
        page = next(t for t in targets if t["type"] == "page")
        # No Origin header: Chromium refuses websocket clients from unexpected origins.
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def _port(self) -> int:
        active = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.proc.returncode}")
            if active.exists() and active.read_text().strip():
                return int(active.read_text().split()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            self.events.append(msg)
        raise TimeoutError(f"no {method} within {self.timeout} s")

    def open(self, path: Path, *, init_script: str = "") -> None:
        """Navigate to a local file with the console, errors and dialogs recorded from the first script on."""
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        if init_script:
            self.send("Page.addScriptToEvaluateOnNewDocument", source=init_script)
        self.send("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = True) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        Path(path).write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and dialogs (an alert would mean injected script ran)."""
        self.send("Runtime.evaluate", expression="0")  # drain events that arrived before this call
        errors = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                errors.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append("log: " + p["entry"]["text"])
            elif method == "Page.javascriptDialogOpening":
                errors.append(f"dialog: {p.get('type')} {p.get('message')!r}")
        return errors

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
