"""Collection: the suite's tests parametrized over the planned runs (one test id per run, a skip naming the real
cause where none is planned), each run's test marked (an outer timeout, its training's xdist group, the '@group'
suffix ensured under every pytest: xdist_groups.py), and the collected tests' runs handed to the conductor as its
plan. Registered beside the session plugin (plugin.py).
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from . import xdist_groups
from .distributed import xdist_group_name
from .session import KIND_SHAPES, RunSpec

if TYPE_CHECKING:
    from .plugin import YmirSession

# which task kinds each suite test is parametrized over (None: every kind that is not a negative input)
NEGATIVE_KINDS = tuple(k for k in KIND_SHAPES if k.startswith("negative-"))
TEST_KINDS: dict[str, tuple[str, ...] | None] = {
    "test_lifecycle": None,
    "test_monitor": None,
    "test_negative_input": NEGATIVE_KINDS,
    "test_training_result": ("training", "retraining"),
    "test_infer_result": ("infer", "infer-nonbest", "single-image-infer", "mining+infer"),
    "test_mining_result": ("mining", "mining+infer"),
}


class Collection:
    """The session's collection hooks."""

    def __init__(self, session: YmirSession) -> None:
        self.session = session
        self.config = session.config
        self.settings = session.settings

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        name = metafunc.function.__name__
        multi_image = len(self.settings.images) > 1
        if "ymir_image" in metafunc.fixturenames:
            images = list(self.settings.images)  # ids: the full image name (two namespaces may share a repo name)
            metafunc.parametrize("ymir_image", images, ids=images if multi_image else ["image"])
        if "ymir_fuzz" in metafunc.fixturenames:
            self.session.fuzz.parametrize(metafunc)
        if "ymir_spec" in metafunc.fixturenames:
            specs = self.session.all_specs()
            if name in TEST_KINDS:
                kinds = TEST_KINDS[name]
                specs = [s for s in specs if (s.kind in kinds if kinds is not None else s.kind not in NEGATIVE_KINDS)]
            if not specs:
                metafunc.parametrize("ymir_spec", [pytest.param(None, marks=pytest.mark.skip(
                    reason=self.why_no_runs(TEST_KINDS.get(name))))], ids=["none"])
                return
            metafunc.parametrize("ymir_spec", specs, ids=[spec_test_id(s, name) for s in specs])

    def why_no_runs(self, kinds: tuple[str, ...] | None) -> str:
        """The skip reason of a test no run was planned for, naming the real cause: the profile (or
        --ymir-tasks) asks for none of its task kinds, or nothing the image declares can run on the releases."""
        from .options import PROFILE_TASKS

        s = self.settings
        negative = kinds == NEGATIVE_KINDS
        tasks = sorted({"negative" if k.startswith("negative-") else k
                        for k in (kinds or tuple(k for k in KIND_SHAPES if k not in NEGATIVE_KINDS))})
        what = "negative-input runs" if negative else "/".join(tasks) + " runs"
        if not set(tasks) & set(s.tasks):
            if s.tasks == PROFILE_TASKS[s.profile]:
                hint = "the certify profile runs them, or add negative" if negative else f"add {tasks[0]}"
                return f"the {s.profile} profile plans no {what} ({hint} to --ymir-tasks)"
            return f"--ymir-tasks={','.join(s.tasks)} plans no {what}"
        return (f"no {what} planned: the image(s) declare no object type such a run can use on platform "
                f"{', '.join(str(r) for r in s.releases)}")

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Iterator[None]:
        # a wrapper: the markers go on before, and the group suffixes are checked after, every other plugin's
        # hook, among them xdist's worker hook (WorkerInteractor), which turns the xdist_group markers into the
        # '@group' node id suffix its loadgroup scheduler reads, on an attribute pytest >= 9.2 no longer reads
        # (xdist_groups.py).
        self._mark_runs(items)
        result = yield
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None and self.config.getvalue("loadgroup"):
            failed = xdist_groups.ensure_group_suffixes(items)
            if failed:  # a warning: xdist shows a worker's warnings in the controller's summary
                warnings.warn(pytest.PytestWarning(
                    f"ymir-conformance could not give {len(failed)} test(s) their xdist group under pytest "
                    f"{pytest.__version__} (e.g. {failed[0]}): their container runs may happen once per worker; "
                    "run with -n 0, or report this with your pytest and pytest-xdist versions"))
        return result

    def _mark_runs(self, items: list[pytest.Item]) -> None:
        # outer guard: pytest-timeout; a test may trigger training + retries before its own run
        guard = int(self.settings.budget.total_s * 1.5 * 3 * 3 + 120)
        xdist = self.config.pluginmanager.hasplugin("xdist")
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None and workerinput.get("ymir_loadgroup"):
            self.config.option.loadgroup = True  # the controller schedules by group (see pytest_configure_node)
        self.session.fuzz.mark(items, xdist, xdist_group_name)
        for item in items:
            spec = getattr(item, "callspec", None) and item.callspec.params.get("ymir_spec")  # type: ignore[attr-defined]
            if not isinstance(spec, RunSpec):
                continue
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(guard))
            if xdist:  # with --dist loadgroup, all tests that need one training land on one worker: run once
                item.add_marker(pytest.mark.xdist_group(xdist_group_name(spec)))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The runs the collected (and not deselected) tests judge: the conductor's plan. Nothing starts here
        (``--collect-only`` runs no container): the first test's run schedules them, all of them, or on an xdist
        worker (handed test groups one at a time) the training group of that run."""
        self.session.fuzz.collected(session.items)
        if self.session.specs is None:
            return
        wanted = {spec for item in session.items
                  if isinstance(spec := getattr(getattr(item, "callspec", None), "params", {}).get("ymir_spec"),
                                RunSpec)}
        self.session.conductor.set_plan([s for s in self.session.specs if s in wanted],
                                        eager=getattr(self.config, "workerinput", None) is None)


def spec_test_id(spec: RunSpec, test_name: str) -> str:
    """The id of a test over ``spec``: the run id (``det-voc``; lifecycle and monitor of a training
    ``training-det-voc``), after the full image name when several images run
    (``ymir-conformance/reference-det:latest/det-voc``: the namespace is kept, the repo name alone can clash)."""
    from dataclasses import replace

    run = replace(spec, multi_image=False).id
    if spec.kind == "training" and test_name in ("test_lifecycle", "test_monitor"):
        run = f"training-{run}"
    return f"{spec.image}/{run}" if spec.multi_image else run


__all__ = ["Collection", "TEST_KINDS", "NEGATIVE_KINDS", "spec_test_id"]
