"""Containers and container-seconds of a quick and a standard session on the realistic fixture executor.

    PYTHONPATH=$PWD python3 benchmarks/bench_realistic.py [--profile quick|standard] [pytest args...]

Runs a plain ``pytest --image=ymir-conformance/realistic-det:latest`` from an empty temp directory (as a release
pipeline would), counts the task containers the engine creates (its event stream, filtered by a fresh
``org.ymir-conformance.tag`` label) and sums the runs' wall times from report.json. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker

IMAGE = "ymir-conformance/realistic-det:latest"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--image", default=IMAGE)
    args, extra = ap.parse_known_args()
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    cl = docker.from_env()
    creates: list[str] = []
    stream = cl.events(decode=True, filters={"type": "container", "event": "create",
                                            "label": f"org.ymir-conformance.tag={tag}"})

    def read() -> None:
        try:
            for ev in stream:
                creates.append(ev.get("Actor", {}).get("Attributes", {}).get("org.ymir-conformance.run", "?"))
        except Exception:
            pass

    threading.Thread(target=read, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "YMIR_CONFORMANCE_TAG": tag}
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", f"--image={args.image}", f"--ymir-profile={args.profile}",
                               "-p", "no:cacheprovider", "-q", f"--ymir-report-dir={tmp}/reports", *extra],
                              cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.monotonic() - start
        time.sleep(1.0)
        stream.close()
        report = json.loads((Path(tmp) / "reports" / "report.json").read_text())
    runs = [r for r in report["runs"] if "attempts" in r]
    print(json.dumps({
        "profile": args.profile, "exit": proc.returncode, "session_s": round(wall, 1),
        "container_creates": len([c for c in creates if c != "inspect"]),
        "container_runs": report.get("container_runs"),
        "container_s": round(sum(a.get("duration_s", 0) for r in runs for a in r["attempts"]), 1),
        "wall_s_sum": round(sum(r.get("wall_s", 0) for r in runs), 1),
        "runs": {r["id"]: [len(r["attempts"]), r.get("wall_s"), r.get("exit_code")] for r in runs},
        "verdicts": {v["release"]: v["verdict"] for v in report.get("verdicts", [])},
        "summary_tail": proc.stdout.splitlines()[-12:],
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
