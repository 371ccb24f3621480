"""Start-up cost of the plugin and the size of a runtime install (issue 19, item 3), measured side by side.

    python benchmarks/bench_startup.py                # all three, 9 pairs each
    python benchmarks/bench_startup.py --pairs 15 --only help,collect

* ``help``: ``python -m pytest --help`` with the plugin vs without it (``-p no:ymir_conformance``), run in turn
  (A B A B ...) from an empty directory; the ratio is taken pair by pair and its median reported (target <= 1.5).
* ``collect``: ``python -m pytest --collect-only -q --image=IMAGE -p no:cacheprovider`` (target <= 3 s), paired
  with the same command without the plugin as the floor pytest itself costs.
* ``venv``: a fresh venv with the package and its runtime dependencies only (``pip install <this checkout>``):
  its size on disk (target <= 150 MB) and package count.

Run it with the interpreter of an environment where this checkout is installed (``pip install -e .``): the
plugin is found through the installed pytest11 entry point. Bytecode caching is left on for the children
(PYTHONDONTWRITEBYTECODE is removed from their environment), as on a user's machine; one warm-up pair is run
first and not counted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTEST_ADDOPTS")}


def _wall(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=300)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 5):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return wall


def paired(a: list[str], b: list[str], pairs: int, cwd: Path) -> tuple[list[float], list[float]]:
    _wall(a, cwd), _wall(b, cwd)  # warm-up: bytecode caches, the engine's image cache
    ta, tb = [], []
    for _ in range(pairs):
        ta.append(_wall(a, cwd))
        tb.append(_wall(b, cwd))
    return ta, tb


def _row(name: str, ta: list[float], tb: list[float]) -> str:
    ratios = [x / y for x, y in zip(ta, tb)]
    return (f"{name}: A median {statistics.median(ta):.2f} s (min {min(ta):.2f}, max {max(ta):.2f}); "
            f"B median {statistics.median(tb):.2f} s (min {min(tb):.2f}, max {max(tb):.2f}); "
            f"A/B per pair: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")


def venv_size(work: Path) -> str:
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)], check=True, env=_env(),
                   cwd=work)
    frozen = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], check=True,
                            capture_output=True, text=True).stdout.split()
    size = int(subprocess.run(["du", "-sk", str(venv)], check=True, capture_output=True, text=True).stdout.split()[0])
    return (f"venv: {size / 1024:.0f} MiB ({size * 1024 / 1e6:.0f} MB), {len(frozen)} packages "
            f"(pip and setuptools included): {' '.join(sorted(frozen, key=str.lower))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=9)
    ap.add_argument("--image", default="ymir-conformance/reference-det:latest")
    ap.add_argument("--only", default="help,collect,venv")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ymir-bench-") as tmp:
        cwd = Path(tmp)
        py = [sys.executable, "-m", "pytest"]
        if "help" in only:
            ta, tb = paired(py + ["--help"], py + ["--help", "-p", "no:ymir_conformance"], args.pairs, cwd)
            print(_row("pytest --help (A: with the plugin, B: -p no:ymir_conformance)", ta, tb), flush=True)
        if "collect" in only:
            collect = ["--collect-only", "-q", "-p", "no:cacheprovider"]
            ta, tb = paired(py + collect + [f"--image={args.image}"], py + collect + ["-p", "no:ymir_conformance"],
                            args.pairs, cwd)
            print(_row(f"pytest --collect-only --image={args.image} (A; B: pytest alone, no plugin, nothing "
                       "to collect)", ta, tb), flush=True)
        if "venv" in only:
            print(venv_size(cwd), flush=True)
        print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
