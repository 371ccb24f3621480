"""Fixtures shared by the project's own tests: the Docker engine and the fixture images built by bootstrap."""
from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

from tests.tags import new_tag
from ymir_conformance.fixture_images import image_tag

REQUIRE_DOCKER = os.environ.get("YMIR_REQUIRE_DOCKER") == "1"


def _engine() -> docker.DockerClient | None:
    try:
        cl = docker.from_env(timeout=60)
        cl.ping()
        return cl
    except Exception:
        return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    cl = _engine()
    if cl is None:
        msg = "no Docker engine answers: run scripts/bootstrap (installs and starts one) or set DOCKER_HOST"
        if REQUIRE_DOCKER:
            pytest.fail(msg + " (YMIR_REQUIRE_DOCKER=1: integration tests may not be skipped)", pytrace=False)
        pytest.skip(msg)
    # Every container this test process (and its pytester subprocesses) starts carries this tag, so the check
    # below sees only our own containers, not those of xdist siblings or other sessions on the same engine.
    tag = new_tag()  # prefixed by scripts/test's run tag (tests/tags.py)
    os.environ["YMIR_CONFORMANCE_TAG"] = tag
    yield cl
    leftovers = cl.containers.list(all=True, filters={"label": f"org.ymir-conformance.tag={tag}"})
    cl.close()
    assert not leftovers, f"containers left behind: {[c.name for c in leftovers]}"


@pytest.fixture(scope="session")
def fixture_image(docker_client: docker.DockerClient):  # type: ignore[no-untyped-def]
    """Return a function giving the tag of a fixture image, failing clearly when bootstrap did not build it."""
    def get(name: str) -> str:
        tag = image_tag(name)
        try:
            docker_client.images.get(tag)
        except docker.errors.ImageNotFound:
            pytest.fail(f"fixture image {tag} is missing: run scripts/bootstrap", pytrace=False)
        return tag
    return get


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ymir-oracle-releases", default=None,
                     help="platform releases the differential tests run against (comma-separated, e.g. "
                          "2.3.0,2.2.0,1.1.0; default $YMIR_ORACLE_RELEASES or 2.3.0,1.1.0); "
                          "each needs scripts/platform-venv RELEASE")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.docker)
