"""What a release ships and promises: the floors CI tests are the floors pyproject.toml declares, the CI examples
install the version the package says, the release workflow publishes with trusted publishing, and the entry point
keeps `pytest --help` free of the heavy imports. The wheel itself: tests/integration/test_wheel.py."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.version import Version

import ymir_conformance

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _floors(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9a-z.]*)", req)
        assert m, f"{req!r}: every requirement has a floor (>=X) and no cap"
        out[m[1].lower()] = m[2]
    return out


def test_the_floor_constraints_are_the_declared_floors() -> None:
    declared = _floors(PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["xdist"])
    pinned = dict(line.lower().split("==") for line in (ROOT / "constraints" / "floor.txt").read_text().splitlines()
                  if line.strip() and not line.startswith("#"))
    missing = {name: floor for name, floor in declared.items() if name not in pinned}
    assert not missing, f"constraints/floor.txt pins no version of {missing}"
    for name, floor in declared.items():
        # the floor env installs exactly the declared floor (8.0 and 8.0.0 are one version)
        assert Version(pinned[name]) == Version(floor), (name, pinned[name], floor)


def test_tensorboard_is_not_a_runtime_dependency() -> None:
    names = _floors(PYPROJECT["project"]["dependencies"])
    assert not {"tensorboard", "tensorboardx", "pytest-benchmark", "torch", "tensorflow"} & set(names)


def test_one_version_and_the_examples_pin_it() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ymir_conformance.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", ymir_conformance.__version__)
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        pins = re.findall(r"pip install ymir-conformance==(\S+)", (ROOT / "examples" / name).read_text())
        assert pins == [ymir_conformance.__version__], (name, pins)
    assert re.search(rf"^## \[{re.escape(ymir_conformance.__version__)}\]", (ROOT / "CHANGELOG.md").read_text(),
                     re.M)


def test_the_workflows_ask_for_the_permissions_their_actions_need() -> None:
    ci = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    assert ci["permissions"]["checks"] == "write"
    assert any("mikepenz/action-junit-report" in str(s.get("uses")) for s in ci["jobs"]["certify"]["steps"])
    rel = yaml.safe_load((ROOT / "examples" / "release-github.yml").read_text())
    assert rel[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    assert rel["permissions"] == {"contents": "read"}
    publish = rel["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"} and publish["needs"] == "build"
    assert [s["uses"] for s in publish["steps"]][-1].startswith("pypa/gh-action-pypi-publish@")
    build = "\n".join(s.get("run", "") for s in rel["jobs"]["build"]["steps"])
    assert "python -m build" in build and "twine check --strict" in build


def test_the_entry_point_imports_nothing_heavy(tmp_path: Path) -> None:
    """`pytest --help` and a run without --image load the entry point only: no Docker client, no numpy/Pillow,
    not the session plugin. (-p no: the installed entry point, whatever its metadata says; -p: this tree's.)"""
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {"ymir_conformance": "ymir_conformance.entry"}
    code = ("import sys, pytest\n"
            "rc = pytest.main(['--help', '-p', 'no:ymir_conformance', '-p', 'ymir_conformance.entry'])\n"
            "heavy = ('docker', 'numpy', 'PIL', 'pycocotools', 'tensorboard', 'ymir_conformance.plugin',"
            " 'ymir_conformance.session')\n"
            "print('LOADED', sorted(m for m in heavy if m in sys.modules), rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)  # an empty directory: no conftest of this project's tests
    assert "--ymir-profile" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "LOADED [] 0", proc.stdout[-2000:]


def test_planning_a_session_imports_no_data_generator() -> None:
    code = ("import sys, ymir_conformance.session, ymir_conformance.plugin\n"
            "print(sorted(m for m in ('numpy', 'PIL', 'pycocotools') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
