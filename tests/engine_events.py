"""The Docker engine as the witness of what a test's run really did: its container `create` events.

Live, not a later ``events(since=..., until=...)`` query: the engine answers those from the last 256 events it
keeps in memory, and on a busy engine (parallel sessions, inspections) earlier creates of a one-minute run are
already gone (seen here: 7 of 9 creates came back). Open the subscription before the run starts.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Any

import docker

from ymir_conformance.runner import LABEL_RUN, LABEL_TAG


class EngineCreates:
    """The container creates the engine reports for containers labelled with one tag."""

    def __init__(self, cl: docker.DockerClient, tag: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._stream = cl.events(decode=True, filters={"type": "container", "event": "create",
                                                       "label": f"{LABEL_TAG}={tag}"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for ev in self._stream:
                self.events.append(ev)
        except Exception:  # closed
            pass

    def stop(self) -> collections.Counter[str]:
        """Stop listening; the task containers created per run id (inspections left out)."""
        time.sleep(1)  # the engine sends an event as it happens; the last ones may still be on the way
        self._stream.close()
        self._reader.join(10)
        return self.tasks()

    def runs(self) -> list[str]:
        """The run id of every task container created, in order (inspection `cat`s left out)."""
        runs = (ev["Actor"]["Attributes"].get(LABEL_RUN) for ev in self.events)
        return [r for r in runs if r is not None and r != "inspect"]

    def tasks(self) -> collections.Counter[str]:
        return collections.Counter(self.runs())

    def inspections(self) -> int:
        return sum(1 for ev in self.events if ev["Actor"]["Attributes"].get(LABEL_RUN, "inspect") == "inspect")
