"""Capture rate of the live monitor.txt sampler (issue: >= 99 % of records written every 100 ms are seen).

Two writers, each writing N distinct records atomically (temp file + rename inside the folder, like a conformant
executor), while ``MonitorSampler`` polls:
  * host: a thread on this machine (measures the sampler alone);
  * container: a real container on the engine writing into a bind-mounted /out (the path the suite uses).
Prints records written, records seen, the capture ratio, and polls per second. Usage:
    python benchmarks/bench_progress.py [--records 200] [--interval-ms 100] [--no-container]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from ymir_conformance.progress import MonitorSampler, parse_record

WRITER = """
import os, sys, time
n, interval = int(sys.argv[1]), float(sys.argv[2])
for i in range(n):
    tmp = '/out/.monitor.tmp'
    with open(tmp, 'w') as f:
        f.write(f't1\\t{time.time():.6f}\\t{(i + 1) / n:.6f}\\t2\\t0\\n')
    os.replace(tmp, '/out/monitor.txt')
    time.sleep(interval)
"""


def seen_records(samples: list) -> int:  # type: ignore[type-arg]
    percents = {parse_record(s.raw)[1] for s in samples if parse_record(s.raw)}  # type: ignore[index]
    return len(percents)


def host_run(out: Path, n: int, interval: float) -> tuple[int, float]:
    sampler = MonitorSampler(out / "monitor.txt")
    sampler.start()
    t0 = time.monotonic()

    def write() -> None:
        for i in range(n):
            tmp = out / ".monitor.tmp"
            tmp.write_text(f"t1\t{time.time():.6f}\t{(i + 1) / n:.6f}\t2\t0\n")
            os.replace(tmp, out / "monitor.txt")
            time.sleep(interval)

    th = threading.Thread(target=write)
    th.start()
    th.join()
    time.sleep(0.05)
    samples = sampler.stop()
    return seen_records(samples), sampler.polls / (time.monotonic() - t0)


def container_run(out: Path, n: int, interval: float) -> tuple[int, float]:
    import docker

    cl = docker.from_env()
    os.chmod(out, 0o777)
    sampler = MonitorSampler(out / "monitor.txt")
    sampler.start()
    t0 = time.monotonic()
    c = cl.containers.run("ymir-conformance/base:bookworm", ["python3", "-c", WRITER, str(n), str(interval)],
                          volumes={str(out): {"bind": "/out", "mode": "rw"}}, user="12345:12345",
                          network_mode="none", detach=True)
    try:
        c.wait(timeout=n * interval * 3 + 30)
    finally:
        c.remove(force=True)
    samples = sampler.stop()
    return seen_records(samples), sampler.polls / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--interval-ms", type=float, default=100)
    ap.add_argument("--no-container", action="store_true")
    a = ap.parse_args()
    interval = a.interval_ms / 1000
    modes = [("host", host_run)] + ([] if a.no_container else [("container", container_run)])
    for name, fn in modes:
        with tempfile.TemporaryDirectory() as d:
            seen, polls = fn(Path(d), a.records, interval)
        print(f"{name:<9} writer every {a.interval_ms:.0f} ms: {a.records} records written, {seen} seen, "
              f"capture {seen / a.records:.2%}, {polls:.0f} polls/s")


if __name__ == "__main__":
    main()
