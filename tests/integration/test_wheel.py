"""The distribution as a user gets it: `python -m build` makes an sdist and a wheel (the wheel built from the sdist)
that hold the suite's package data and none of this project's tests or fixtures; the wheel installs into a fresh
venv outside the checkout (pip resolves the dependencies from the index, as `pip install ymir-conformance` will)
and the CI examples' certify command runs there, from an empty directory, against real images.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ymir_conformance
from test_ci_examples import certify_command

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = os.environ.get("YMIR_REQUIRE_DOCKER") == "1"  # CI: a missing `build` is a failure, not a skip
# what the suite needs at run time, by path inside the package
PACKAGE_DATA = ("py.typed", "report/report.schema.json", "suite/test_conformance.py", "scaffold/start.py",
                "scaffold/tfevents.py", "entry.py", "plugin.py", "tfevents.py")


@dataclass
class Installed:
    venv: Path
    wheel: Path
    sdist: Path

    def env(self) -> dict[str, str]:
        """The user's environment with this venv first on PATH, without what points at the checkout or at an
        outer pytest."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
               and not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return env

    def run(self, argv: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    try:
        import build  # noqa: F401  (the test extra has it)
    except ImportError:
        if REQUIRE:
            pytest.fail("`python -m build` is not installed: pip install -e .[test]", pytrace=False)
        pytest.skip("`python -m build` is not installed: pip install -e .[test]")
    base = tmp_path_factory.mktemp("wheel")
    assert ROOT not in base.parents
    dist = base / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    version = ymir_conformance.__version__
    wheel = dist / f"ymir_conformance-{version}-py3-none-any.whl"
    sdist = dist / f"ymir_conformance-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    inst = Installed(venv, wheel, sdist)
    # [xdist]: the README's `-n N --dist loadgroup`
    proc = inst.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[xdist]"], cwd=base,
                    timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    yield inst


def test_the_wheel_and_the_sdist_hold_the_suite_and_nothing_else(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    for data in PACKAGE_DATA:
        assert f"ymir_conformance/{data}" in names, data
    assert not [n for n in names if not n.startswith(("ymir_conformance/", "ymir_conformance-"))], names
    meta = zipfile.ZipFile(installed.wheel)
    dist_info = f"ymir_conformance-{ymir_conformance.__version__}.dist-info"
    entry_points = meta.read(f"{dist_info}/entry_points.txt").decode()
    assert "[pytest11]\nymir_conformance = ymir_conformance.entry" in entry_points
    requires = [ln for ln in meta.read(f"{dist_info}/METADATA").decode().splitlines() if ln.startswith("Requires-Dist")]
    assert not [r for r in requires if "tensorboard" in r.lower() and "extra ==" not in r], requires
    with tarfile.open(installed.sdist) as tar:
        members = [m.split("/", 1)[1] for m in tar.getnames() if "/" in m]
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "ymir_conformance/suite/test_conformance.py",
            "ymir_conformance/report/report.schema.json"} <= set(members)
    assert not [m for m in members if m.startswith(("tests/", "fixtures/", "benchmarks/", ".ci/"))]


def test_the_venv_imports_the_installed_package(installed: Installed, tmp_path: Path) -> None:
    proc = installed.run([str(installed.venv / "bin" / "python"), "-c",
                          "import ymir_conformance; print(ymir_conformance.__file__)"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(installed.venv), proc.stdout


def _example(installed: Installed, cwd: Path, image: str) -> subprocess.CompletedProcess[str]:
    """The CI examples' certify command, as written (`pytest` from PATH: the venv's console script)."""
    argv = shlex.split(certify_command("github-actions.yml").replace('"$IMAGE"', image))
    assert argv[0] == "pytest"
    return installed.run(argv, cwd=cwd)


def test_the_example_certifies_the_reference_image(installed: Installed, tmp_path: Path,
                                                   fixture_image: Any) -> None:
    proc = _example(installed, tmp_path, fixture_image("reference-det"))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert (tmp_path / "ymir-reports" / "report.json").is_file()
    assert f'"version": "{ymir_conformance.__version__}"' in (tmp_path / "ymir-reports" / "report.json").read_text()


def test_the_example_fails_a_broken_image(installed: Installed, tmp_path: Path, fixture_image: Any) -> None:
    proc = _example(installed, tmp_path, fixture_image("broken-metric-percent"))
    assert proc.returncode == 1, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "TR-02" in proc.stdout


def test_two_images_under_xdist_run_each_container_once(installed: Installed, tmp_path: Path,
                                                        fixture_image: Any) -> None:
    images = [fixture_image("reference-det"), fixture_image("reference-semseg")]
    proc = installed.run(["pytest", *(f"--image={i}" for i in images), "-n", "2", "--dist", "loadgroup",
                          "-p", "no:cacheprovider", f"--ymir-workdir={tmp_path / 'work'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert re.findall(r"^container runs: (\d+)", proc.stdout, re.M) == ["8"], proc.stdout[-6000:]
