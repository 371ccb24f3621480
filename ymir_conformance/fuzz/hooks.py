"""The session's side of the input-space search (``--ymir-fuzz``, ``--ymir-fuzz-training``; search.py does the
searching): which searches the collected tests ask for, their collection (the fuzz tests exist only when a search
is asked for), starting them with the session's first run, and judging each search's outcome for its test.
Registered beside the session plugin (plugin.py)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..plugin import YmirSession

FUZZ_TEST_FILE = Path(__file__).resolve().parents[1] / "suite" / "test_fuzz.py"


class FuzzHooks:
    """The searches of one session: planned once, started with its first run, each judged by its test."""

    def __init__(self, session: YmirSession) -> None:
        self.session = session
        self.settings = session.settings
        self._driver: Any = None  # search.FuzzDriver, made on first use
        self._targets: list[Any] | None = None
        self._started = False
        self.wanted: list[Any] = []  # the searches of the collected fuzz tests

    @property
    def asked(self) -> bool:
        return bool(self.settings.fuzz or self.settings.fuzz_training)

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """The fuzz tests are collected only when a search is asked for (--ymir-fuzz, --ymir-fuzz-training)."""
        if collection_path == FUZZ_TEST_FILE and not self.asked:
            return True
        return None

    def targets(self) -> list[Any]:
        """The searches asked for (search.targets), planned once."""
        if self._targets is None:
            from .search import targets

            self._targets = []
            if self.asked:
                self.session.all_specs()
                self._targets = targets([self.session.ledger.images[i] for i in self.settings.images], self.settings)
        return self._targets

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        search = "training" if metafunc.function.__name__ == "test_fuzz_training" else "candidates"
        found = [t for t in self.targets() if t.search == search]
        # no search asked for: one None parameter, deselected at collection (the test is not collected)
        metafunc.parametrize("ymir_fuzz", found or [None], ids=[t.test_id for t in found] or ["none"])

    def mark(self, items: list[pytest.Item], xdist: bool, group_name: Any) -> None:
        """Drop the fuzz tests of a search nobody asked for; give the others an outer timeout (the fuzz budget)
        and their training's xdist group."""
        fuzz_guard = int(self.settings.fuzz_budget_s + 2 * (self.settings.budget.total_s * 1.5 * 3 * 3 + 120))
        unused = [i for i in items if "ymir_fuzz" in getattr(getattr(i, "callspec", None), "params", {})
                  and i.callspec.params["ymir_fuzz"] is None]  # type: ignore[attr-defined]
        if unused:
            items[:] = [i for i in items if i not in unused]
            self.session.config.hook.pytest_deselected(items=unused)
        for item in items:
            target = getattr(getattr(item, "callspec", None), "params", {}).get("ymir_fuzz")
            if target is None:
                continue
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(fuzz_guard))
            if xdist:
                item.add_marker(pytest.mark.xdist_group(group_name(target.spec)))

    def collected(self, items: list[pytest.Item]) -> None:
        self.wanted = [t for item in items
                       if (t := getattr(getattr(item, "callspec", None), "params", {}).get("ymir_fuzz")) is not None]

    def header_line(self) -> str | None:
        if not self.asked:
            return None
        from .search import describe_settings

        return str(describe_settings(self.settings))

    def results(self) -> Any:
        return None if self._driver is None else self._driver.results()

    @property
    def driver(self) -> Any:
        if self._driver is None:
            from .search import FuzzDriver

            self._driver = FuzzDriver(self.session.conductor, self.settings)
        return self._driver

    def start(self) -> None:
        """Start every collected search with the session's first run (they run beside the other tests); an xdist
        worker starts a search only when its test comes (tests are handed to it one group at a time)."""
        if self._started or getattr(self.session.config, "workerinput", None) is not None:
            return
        self._started = True
        if self.wanted:
            self.driver.start(self.wanted)

    def judge(self, target: Any, node: pytest.Item) -> None:
        """The outcome of one search: a failure names the minimal failing input, its rules and the reproducer."""
        from ..judging import HEADLINE_KEY, SYSTEM_OUT_KEY

        self.start()
        search = self.driver.wait(target)
        result = search.result()
        lines = [f"fuzz {target.search} of {target.image}: {result['tried']} input(s) tried of {target.examples} "
                 f"asked ({result['passed_trivially']} passed without a run after the budget), coverage "
                 f"{result['coverage']}"]
        node.stash[SYSTEM_OUT_KEY] = lines
        if search.error:
            pytest.fail(f"ymir-conformance could not fuzz {target.image}: {search.error}. This is a defect of "
                        "ymir-conformance, not a verdict on the image: please report it.", pytrace=False)
        if search.skipped:
            self.session.judge.skip(search.skipped)
        if result["failure"] is None:
            return
        best = search.best
        self.session.ledger.add(target.image, f"fuzz-{target.search}", "fuzz", best.per_release)
        text = search.message()
        node.stash[SYSTEM_OUT_KEY] = lines + text.splitlines()
        node.stash[HEADLINE_KEY] = f"[fuzz {', '.join(result['failure']['rules'])} MUST] " + text.split("\n", 1)[0]
        pytest.fail(text, pytrace=False)


__all__ = ["FuzzHooks"]
