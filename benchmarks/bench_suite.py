"""The suite's own speed, measured in one run (issue 13, item 7). Prints, each against its target:

1. quick profile, one image (reference-det, default --ymir-jobs): time-to-verdict (TTV: the wall time of the whole
   `python -m pytest --image=...` process, start to exit) / the critical path (the training container's wall +
   the longest downstream container's wall; target <= 1.15), TTV / the serial sum of every container's wall, and
   the harness overhead per run = (TTV - critical path) / runs, split into what comes before the first container
   starts (interpreter, pytest, inspection, first workspace), the gaps on the critical path (training done ->
   downstream start: model packing, workspace building, queueing) and what comes after the last container dies
   (judging, reports, cleanup, exit). Container walls come from the engine's event stream (start -> die).
2. inspection (every /img-man file read and `cat` as the platform does, concurrently) / one `docker run --rm IMG
   true` (medians of --repeat), and the same inspection one file at a time for comparison.
3. two images: `-n 2` vs `-n 0` (target >= 1.7x), and vs `-n 0 --ymir-jobs=1` (the old serial session); each run
   exactly once, counted from the engine's container creates (a live subscription opened before the session).
4. dataset synthesis, images/s (benchmarks/bench_datasets.py: generate + export det-ark, streamed).
5. the monitor.txt sampler: capture ratio and CPU (benchmarks/bench_progress.py: host writer and container writer).

Usage:  python benchmarks/bench_suite.py [--repeat 3] [--only ratio|inspect|xdist|synthesis|sampler]
"""
from __future__ import annotations

import argparse
import collections
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

IMAGE = "ymir-conformance/reference-det:latest"
SECOND_IMAGE = "ymir-conformance/reference-semseg:latest"
LABEL_TAG = "org.ymir-conformance.tag"
LABEL_RUN = "org.ymir-conformance.run"
DOWNSTREAM = ("infer-", "mining-", "mining+infer-", "retraining-", "infer-nonbest-", "single-image-infer-")


@dataclass
class Witness:
    """Task containers of one tag, from a live event subscription: creates per run id, start/die per container."""

    creates: collections.Counter[str] = field(default_factory=collections.Counter)
    start: dict[str, float] = field(default_factory=dict)
    die: dict[str, float] = field(default_factory=dict)
    run_of: dict[str, str] = field(default_factory=dict)

    def walls(self) -> dict[str, float]:
        """run id -> seconds from its (first) container's start to its (last) container's die."""
        out: dict[str, float] = {}
        for cid, t in self.start.items():
            if cid in self.die:
                run = self.run_of[cid]
                out[run] = out.get(run, 0.0) + self.die[cid] - t
        return out

    def bounds(self) -> dict[str, tuple[float, float]]:
        """run id -> (its first container's start, its last container's die)."""
        out: dict[str, tuple[float, float]] = {}
        for cid, t in self.start.items():
            if cid in self.die:
                run = self.run_of[cid]
                a, b = out.get(run, (t, self.die[cid]))
                out[run] = (min(a, t), max(b, self.die[cid]))
        return out

    def span(self) -> tuple[float, float] | None:
        if not self.start or not self.die:
            return None
        return min(self.start.values()), max(self.die.values())


class Watch:
    def __init__(self, cl: docker.DockerClient, tag: str) -> None:
        self.seen = Witness()
        self._stream = cl.events(decode=True, filters={"type": "container", "label": f"{LABEL_TAG}={tag}"})
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for ev in self._stream:
                attrs = ev.get("Actor", {}).get("Attributes", {})
                run = attrs.get(LABEL_RUN, "inspect")
                if run == "inspect":
                    continue
                cid, what, t = ev.get("id", ""), ev.get("status") or ev.get("Action"), ev["timeNano"] / 1e9
                self.seen.run_of[cid] = run
                if what == "create":
                    self.seen.creates[run] += 1
                elif what == "start":
                    self.seen.start[cid] = t
                elif what == "die":
                    self.seen.die[cid] = t
        except Exception:  # closed
            pass

    def stop(self) -> Witness:
        time.sleep(0.3)  # the last 'die' may still be on its way
        self._stream.close()
        self._thread.join(timeout=10)
        return self.seen


def session(cl: docker.DockerClient, images: list[str], *args: str) -> tuple[float, float, Witness, str, int]:
    """A plain pytest session from an empty directory: (its wall-clock start (epoch s), TTV s, what the engine saw,
    the output tail, the exit status)."""
    tag = uuid.uuid4().hex[:12]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "YMIR_CONFORMANCE_TAG"))}
    env["YMIR_CONFORMANCE_TAG"] = tag
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        watch = Watch(cl, tag)
        argv = [sys.executable, "-m", "pytest", *(f"--image={i}" for i in images), "-p", "no:cacheprovider", "-q",
                f"--ymir-workdir={tmp}/work", *args]
        t_epoch, t0 = time.time(), time.monotonic()
        proc = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
        ttv = time.monotonic() - t0
        seen = watch.stop()
    return t_epoch, ttv, seen, (proc.stdout + proc.stderr)[-3000:], proc.returncode


def once(seen: Witness, expected: int) -> str:
    repeated = {r: n for r, n in seen.creates.items() if n != 1}
    ok = not repeated and len(seen.creates) == expected
    return (f"{sum(seen.creates.values())} task container creates, {len(seen.creates)} distinct runs "
            f"(expected {expected}): {'each exactly once' if ok else f'NOT once each: {repeated or dict(seen.creates)}'}")


def bench_ratio(cl: docker.DockerClient, extra: tuple[str, ...] = ()) -> float:
    print(f"== 1. quick profile, {IMAGE}, default --ymir-jobs ({os.cpu_count()} cores)"
          f"{', pytest ' + ' '.join(extra) if extra else ''}, load {os.getloadavg()[0]:.1f}")
    t_epoch, ttv, seen, tail, rc = session(cl, [IMAGE], *extra)
    if rc != 0:
        print(f"  session failed (exit {rc}):\n{tail}")
        return float("nan")
    walls = seen.walls()
    training = [r for r in walls if not r.startswith(DOWNSTREAM)]
    downstream = [r for r in walls if r.startswith(DOWNSTREAM)]
    critical = max(walls[r] for r in training) + (max(walls[r] for r in downstream) if downstream else 0.0)
    serial = sum(walls.values())
    runs = len(walls)
    span = seen.span()
    assert span is not None
    before = span[0] - t_epoch
    after = t_epoch + ttv - span[1]
    gaps = (span[1] - span[0]) - critical
    print(f"  time-to-verdict {ttv:.2f} s; container walls: " + ", ".join(f"{r} {w:.2f} s" for r, w in walls.items()))
    print(f"  critical path {critical:.2f} s (training + longest downstream), serial sum {serial:.2f} s, "
          f"{once(seen, 4)}")
    bounds = seen.bounds()
    if training and downstream:
        handoff = min(bounds[r][0] for r in downstream) - max(bounds[r][1] for r in training)
        print(f"  training container died -> first downstream container started: {handoff:.2f} s (the model packed, "
              "the downstream workspaces built)")
    print(f"  TTV / critical path = {ttv / critical:.2f}  (target <= 1.15)")
    print(f"  TTV / serial sum    = {ttv / serial:.2f}")
    print(f"  harness overhead per run = (TTV - critical path) / runs = {(ttv - critical) / runs:.2f} s "
          f"({ttv - critical:.2f} s over {runs} runs): before the first container {before:.2f} s, "
          f"first start -> last die beyond the critical path {gaps:.2f} s (hand-off, runs waiting for a job slot), "
          f"after the last container {after:.2f} s")
    return ttv / critical


def _median_time(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_inspection(cl: docker.DockerClient, repeat: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ymir_conformance.image import inspect_image
    from ymir_conformance.session import INSPECT_FETCHES

    print(f"== 2. inspection of {IMAGE} vs one `docker run --rm IMG true` (medians of {repeat}), load "
          f"{os.getloadavg()[0]:.1f}")
    cli = shutil.which("docker")

    def run_true() -> None:
        if cli:
            subprocess.run([cli, "run", "--rm", "--network", "none", IMAGE, "true"], check=True,
                           capture_output=True)
        else:
            cl.containers.run(IMAGE, ["true"], remove=True, network_mode="none")

    def concurrent() -> None:
        with ThreadPoolExecutor(INSPECT_FETCHES) as pool:
            inspect_image(cl, IMAGE, fetch_pool=pool)

    true_s = _median_time(run_true, repeat)
    par_s = _median_time(concurrent, repeat)
    ser_s = _median_time(lambda: inspect_image(cl, IMAGE), repeat)
    via = "docker CLI" if cli else "docker-py (no docker CLI here)"
    print(f"  docker run --rm IMG true: {true_s:.2f} s ({via}); inspection {par_s:.2f} s concurrent "
          f"({INSPECT_FETCHES} in flight), {ser_s:.2f} s one file at a time")
    print(f"  inspection / docker run = {par_s / true_s:.2f} (one at a time: {ser_s / true_s:.2f})")


def bench_xdist(cl: docker.DockerClient) -> None:
    images = [IMAGE, SECOND_IMAGE]
    print(f"== 3. two images ({', '.join(images)}), quick profile, load {os.getloadavg()[0]:.1f}")
    results: dict[str, float] = {}
    for name, args in (("-n 0 --ymir-jobs=1", ("-n", "0", "--ymir-jobs=1")), ("-n 0", ("-n", "0")),
                       ("-n 2", ("-n", "2"))):
        _, ttv, seen, tail, rc = session(cl, images, *args)
        results[name] = ttv
        print(f"  {name:<20} {ttv:6.2f} s, exit {rc}; {once(seen, 8)}")
        if rc not in (0, 1):
            print(tail)
    print(f"  -n 2 vs -n 0: {results['-n 0'] / results['-n 2']:.2f}x (target >= 1.7x); -n 2 vs -n 0 "
          f"--ymir-jobs=1: {results['-n 0 --ymir-jobs=1'] / results['-n 2']:.2f}x; -n 0 vs -n 0 --ymir-jobs=1: "
          f"{results['-n 0 --ymir-jobs=1'] / results['-n 0']:.2f}x")


def bench_synthesis(count: int) -> None:
    import bench_datasets

    print(f"== 4. dataset synthesis, generate + export det-ark, {count} images at 320x240, load "
          f"{os.getloadavg()[0]:.1f}")
    r = bench_datasets.child(count, "det-ark")
    print(f"  {count / r['seconds']:.0f} images/s ({r['seconds']:.2f} s; CPU {r['cpu_seconds'] / count * 1000:.2f} "
          "ms/image, process + workers)")


def bench_sampler(records: int, interval_ms: float) -> None:
    import bench_progress

    print(f"== 5. monitor.txt sampler, a writer every {interval_ms:g} ms, {records} records, load "
          f"{os.getloadavg()[0]:.1f}")
    for name, fn in (("host", bench_progress.host_run), ("container", bench_progress.container_run)):
        with tempfile.TemporaryDirectory() as d:
            try:
                got = fn(Path(d), records, interval_ms / 1000, True)
            except TypeError:  # an older bench_progress: (out, n, interval) -> (seen, polls/s)
                got = fn(Path(d), records, interval_ms / 1000)
        if len(got) == 3:
            seen, sampler, wall = got
            print(f"  {name:<9} capture {seen / records:.2%} ({seen}/{records}), sampler CPU "
                  f"{sampler.cpu_s * 1000:.0f} ms over {wall:.1f} s = {sampler.cpu_s / wall:.2%} of a core "
                  f"({getattr(sampler, 'mode', '?')})")
        else:
            seen, rate = got
            print(f"  {name:<9} capture {seen / records:.2%} ({seen}/{records}), {rate:.0f} polls/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=("ratio", "inspect", "xdist", "synthesis", "sampler"))
    ap.add_argument("--images", type=int, default=500, help="synthesis: images generated and exported")
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--interval-ms", type=float, default=10)
    ap.add_argument("--pytest-args", default="-p no:hypothesispytest",
                    help="extra pytest arguments for section 1, which is also run without them (default: without "
                         "the hypothesis plugin, whose terminal summary alone takes ~1.8 s here)")
    a = ap.parse_args()
    cl = docker.from_env(timeout=120)
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, Docker "
          f"{cl.version().get('Version')}, Python {platform.python_version()}; load at start "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    steps = {
        "ratio": lambda: (bench_ratio(cl), bench_ratio(cl, tuple(a.pytest_args.split())) if a.pytest_args else 0),
        "inspect": lambda: bench_inspection(cl, a.repeat),
        "xdist": lambda: bench_xdist(cl),
        "synthesis": lambda: bench_synthesis(a.images),
        "sampler": lambda: bench_sampler(a.records, a.interval_ms),
    }
    for name, step in steps.items():
        if a.only in (None, name):
            step()
    print(f"load at end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
