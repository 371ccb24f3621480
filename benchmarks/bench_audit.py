"""Overhead of the input audit (ymir_conformance/audit.py): the same container runs with and without it.

Runs the quick-profile matrix of an image (training, infer, mining, mining+infer) ``--rounds`` times, alternating
audit on (``YMIR_CONFORMANCE_AUDIT=1``) and off, and prints per run kind the median wall time of the container
run, plus the audit's own costs recorded on each run (setup = walking /in and the asset cache and adding the
watches, stop = draining and closing, busy = CPU time of the reader thread, summary = reading the index files
and counting) and its counts.

Usage:  python benchmarks/bench_audit.py [--image ymir-conformance/reference-det:latest] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker  # noqa: E402

from ymir_conformance.audit import ENV_SWITCH, counts_line  # noqa: E402
from ymir_conformance.options import Settings  # noqa: E402
from ymir_conformance.platform import LATEST  # noqa: E402
from ymir_conformance.conductor import Conductor  # noqa: E402
from ymir_conformance.session import plan  # noqa: E402


def one_round(cl: docker.DockerClient, image: str, on: bool) -> dict[str, tuple[float, dict[str, object]]]:
    os.environ[ENV_SWITCH] = "1" if on else "0"
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        settings = Settings(images=(image,), profile="quick", tasks=("training", "infer", "mining", "mining+infer"),
                            workdir=Path(tmp), releases=(LATEST,))
        c = Conductor(cl, settings, Path(tmp), uuid.uuid4().hex[:12])
        out: dict[str, tuple[float, dict[str, object]]] = {}
        for spec in plan([c.info(image)], settings):
            o = c.get(spec).outcome
            if o is not None:
                out[spec.id] = (o.duration_s, o.inputs_opened)
        return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="ymir-conformance/reference-det:latest")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cl = docker.from_env()
    times: dict[tuple[str, bool], list[float]] = {}
    last: dict[str, dict[str, object]] = {}
    for _ in range(args.rounds):
        for on in (True, False):
            for run_id, (dur, audit) in one_round(cl, args.image, on).items():
                times.setdefault((run_id, on), []).append(dur)
                if on:
                    last[run_id] = audit
    print(f"{'run':<24} {'audit on':>9} {'off':>7} {'diff':>7}  setup/stop/busy/summary ms  events watches  counts")
    for run_id, audit in last.items():
        a, b = statistics.median(times[(run_id, True)]), statistics.median(times[(run_id, False)])
        ms = "/".join(f"{float(audit.get(k, 0)) * 1000:.1f}" for k in ("setup_s", "stop_s", "busy_s", "summary_s"))  # type: ignore[arg-type]
        print(f"{run_id:<24} {a:8.2f}s {b:6.2f}s {a - b:+6.2f}s  {ms:>26}  {audit.get('events')!s:>6} "
              f"{audit.get('watches')!s:>7}  {counts_line(audit)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
