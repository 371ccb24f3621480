"""The conformance suite. Each test judges one contract area of one container run (or of the image itself);
the run happens once per session and is shared by every test that reads it.

Test ids read like ``test_training_result[det-voc]`` or ``test_infer_result[infer-det-voc]``; with several images
the full image name comes first: ``test_training_result[ymir-conformance/reference-det:latest/det-voc]``.
"""
from __future__ import annotations

import pytest

from ymir_conformance.contracts.base import Area
from ymir_conformance.plugin import YmirSession
from ymir_conformance.session import RunSpec


def test_image_inspection(ymir: YmirSession, ymir_image: str, request: pytest.FixtureRequest) -> None:
    """IM-01..04, V14, LC-02: the image registers on the platform (``docker run --rm IMG cat /img-man/...``)."""
    ymir.judge_image(ymir_image, request.node)


def test_lifecycle(ymir: YmirSession, ymir_spec: RunSpec, request: pytest.FixtureRequest) -> None:
    """V1, LC-03/07/09/10, MON-08, budgets: the container runs like on the platform and exits cleanly."""
    ymir.judge_area(ymir_spec, ymir.run(ymir_spec), (Area.LIFECYCLE,), "lifecycle", request.node)


def test_monitor(ymir: YmirSession, ymir_spec: RunSpec, request: pytest.FixtureRequest) -> None:
    """MON-01..07: /out/monitor.txt, final content and every record sampled while the container ran."""
    ymir.judge_area(ymir_spec, ymir.run(ymir_spec), (Area.MONITOR,), "monitor", request.node)


def test_training_result(ymir: YmirSession, ymir_spec: RunSpec, request: pytest.FixtureRequest) -> None:
    """TR-01..14: /out/models/result.yaml, the model stages and their files, TensorBoard events."""
    ymir.judge_area(ymir_spec, ymir.run(ymir_spec), (Area.TRAINING,), "training", request.node)


def test_infer_result(ymir: YmirSession, ymir_spec: RunSpec, request: pytest.FixtureRequest) -> None:
    """INF-01..14: /out/infer-result.json as the platform parses it, and what it would silently drop."""
    ymir.judge_area(ymir_spec, ymir.run(ymir_spec), (Area.INFER,), "infer", request.node)


def test_mining_result(ymir: YmirSession, ymir_spec: RunSpec, request: pytest.FixtureRequest) -> None:
    """MIN-01..05: /out/result.tsv as the platform reads its top-k."""
    ymir.judge_area(ymir_spec, ymir.run(ymir_spec), (Area.MINING,), "mining", request.node)


def test_negative_input(ymir: YmirSession, ymir_spec: RunSpec, request: pytest.FixtureRequest) -> None:
    """IN-03/07/10: odd but possible input (UI strings, empty val split, corrupt image, absent class): the image
    copes, or fails cleanly (state 4 + 3000xx code, reason last); it never hangs or exits 0 with garbage."""
    ymir.judge_negative(ymir_spec, ymir.run(ymir_spec), request.node)
