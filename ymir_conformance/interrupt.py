"""Interruption: SIGTERM (a CI cancel, ``docker stop``, ``kill``) cleans up like Ctrl-C. Beside the owner and
reaper code (owner.py, runner.reap_stale): what an interrupted session still leaves (SIGKILL) a later session
reaps by its owner.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any


class Interrupt:
    """The session's SIGTERM handler: the first SIGTERM raises KeyboardInterrupt (pytest stops, sessionfinish
    writes the reports and removes this session's containers and workspaces); once sessionfinish began
    (``finishing``) a SIGTERM no longer interrupts the cleanup."""

    def __init__(self) -> None:
        self._prev_sigterm: Any = None
        self._sigterm_installed = False
        self.terminating = False  # a SIGTERM arrived
        self.finishing = False  # sessionfinish began: a SIGTERM no longer interrupts the cleanup

    def install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._sigterm_installed = True
        except (ValueError, OSError):
            pass

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        first = not self.terminating
        self.terminating = True
        if first and not self.finishing:
            # the KeyboardInterrupt path: a running container is removed by run_container's finally, pytest
            # stops, sessionfinish writes the reports and removes this session's containers and workspaces
            raise KeyboardInterrupt("SIGTERM: ymir-conformance removes its containers and workspaces")
        sys.stderr.write("ymir-conformance: SIGTERM received, finishing the cleanup (SIGKILL leaves containers "
                         "and workspaces behind until the next session reaps them)\n")

    def restore_sigterm(self) -> None:
        if self._sigterm_installed:
            self._sigterm_installed = False
            try:
                signal.signal(signal.SIGTERM, self._prev_sigterm if self._prev_sigterm is not None
                              else signal.SIG_DFL)
            except (ValueError, OSError):
                pass


__all__ = ["Interrupt"]
