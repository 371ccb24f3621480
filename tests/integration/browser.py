"""Headless Chromium driven over ``--remote-debugging-pipe`` (the DevTools protocol on file descriptors 3 and 4:
offline, no port, no extra package), to look at a page the way a person does at a given width.

``--window-size`` cannot go below 500 px in headless mode, so a phone is emulated instead
(``Emulation.setDeviceMetricsOverride`` with ``mobile``): the page is laid out as a phone lays it out, at 980 px
unless it declares a viewport, which is what makes ``<meta name=viewport>`` matter.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT_S = 60
PHONE_MAX = 600  # widths below this are emulated as a phone (mobile: true)
SHOT_MAX_HEIGHT = 16000


class Browser:
    """One headless Chromium; :meth:`call` sends a DevTools command and waits for its answer."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # above 9, so that dup2 onto 3 and 4 in the child never overwrites one of them
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def wire() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        try:
            self.proc = subprocess.Popen(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                 "--disable-background-networking", "--no-first-run", "--remote-debugging-pipe",
                 f"--user-data-dir={profile}", "about:blank"],
                pass_fds=(3, 4), preexec_fn=wire, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        finally:
            os.close(child_in)
            os.close(child_out)
        self._w, self._r = to_browser_w, from_browser_r
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer within the time limit")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError(f"chromium closed the DevTools pipe (exit {self.proc.poll()})")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        reply: dict[str, Any] = json.loads(message)
        return reply

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self._events.append(reply)

    def wait_for(self, event: str) -> dict[str, Any]:
        for i, seen in enumerate(self._events):
            if seen.get("method") == event:
                return self._events.pop(i)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._read(deadline)
            if message.get("method") == event:
                return message
            self._events.append(message)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError, EOFError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


@dataclass
class Look:
    dom: str  # the rendered DOM (document.documentElement.outerHTML)
    probe: Any  # what the probe expression returned
    shot: Path  # a screenshot of the whole page at this width


def look(exe: str, page: Path, width: int, shot: Path, probe: str) -> Look:
    """Open ``page`` at ``width`` CSS px (a phone below :data:`PHONE_MAX`), evaluate ``probe`` once it has loaded,
    and save a screenshot of the whole page to ``shot``."""
    browser = Browser(exe, shot.parent / f"chromium-profile-{width}")
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.call("Page.enable", session)
        metrics = {"width": width, "deviceScaleFactor": 1, "mobile": width < PHONE_MAX}
        browser.call("Emulation.setDeviceMetricsOverride", session, height=1800, **metrics)
        browser.call("Page.navigate", session, url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        value = browser.call("Runtime.evaluate", session, expression=probe, returnByValue=True)["result"].get("value")
        dom = browser.call("Runtime.evaluate", session, expression="document.documentElement.outerHTML",
                           returnByValue=True)["result"]["value"]
        layout = browser.call("Page.getLayoutMetrics", session)
        height = int((layout.get("cssContentSize") or layout["contentSize"])["height"])
        browser.call("Emulation.setDeviceMetricsOverride", session, height=max(1, min(height, SHOT_MAX_HEIGHT)),
                     **metrics)
        shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", session, format="png")["data"]))
        return Look(str(dom), value, shot)
    finally:
        browser.close()
