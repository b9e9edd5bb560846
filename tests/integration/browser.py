"""Headless Chromium driven over the DevTools protocol (a test helper of the live view).

`Browser(url, workdir)` starts Debian's ``chromium`` on URL with a DevTools port,
connects to the page's websocket (aiohttp's client) and offers `evaluate`
(JavaScript in the page, its value back) and `screenshot` (PNG). Stop it with
`close` (or use it as a context manager): the process it started is ended by its pid.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, url: str, workdir: Path, width: int = 1400, height: int = 1000) -> None:
        self.loop = asyncio.new_event_loop()
        self.log = Path(workdir) / "chromium.log"
        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={Path(workdir) / 'chromium-profile'}",
             f"--window-size={width},{height}", url],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self._id = 0
        try:
            port = self._port(timeout=30)
            self.session = self.loop.run_until_complete(self._connect(port))
        except BaseException:
            self.close()
            raise

    def _port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = LISTENING.search(self.log.read_text())
            if m:
                return int(m.group(2))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"chromium gave no DevTools port: {self.log.read_text()[-2000:]}")

    async def _connect(self, port: int) -> Any:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        return self.ws

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._id += 1
        await self.ws.send_str(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=30)).data)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.loop.run_until_complete(self._call(method, params))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        async def _close() -> None:
            if getattr(self, "ws", None) is not None:
                await self.ws.close()
            if getattr(self, "http", None) is not None:
                await self.http.close()
        try:
            self.loop.run_until_complete(_close())
        finally:
            self.loop.close()
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
