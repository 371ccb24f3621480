"""Capture rate and own CPU of the live monitor.txt sampler (issue 13: >= 99 % of records written every 10 ms
are seen, the sampler's own CPU under 2 % of a core).

Two writers, each writing N distinct records atomically (temp file + rename inside the folder, like a conformant
executor), while ``MonitorSampler`` watches (inotify, or ``--poll``: the old 10 ms polling):
  * host: a thread on this machine (measures the sampler alone);
  * container: a real container on the engine writing into a bind-mounted /out (the path the suite uses).
Prints records written, records seen, the capture ratio, the sampler thread's own CPU time (``time.thread_time``
in that thread) as a share of one core over the run, and reads / wake-ups per second. Usage:
    python benchmarks/bench_progress.py [--records 500] [--interval-ms 10] [--no-container] [--poll]
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


Result = tuple[int, MonitorSampler, float]  # records seen, the sampler, wall seconds it ran


def host_run(out: Path, n: int, interval: float, inotify: bool) -> Result:
    (out / "monitor.txt").write_text("t1\t0\t0.00\t1\t0\n")
    sampler = MonitorSampler(out / "monitor.txt", use_inotify=inotify)
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
    return seen_records(samples), sampler, time.monotonic() - t0


def container_run(out: Path, n: int, interval: float, inotify: bool) -> Result:
    import docker

    cl = docker.from_env()
    os.chmod(out, 0o777)
    (out / "monitor.txt").write_text("t1\t0\t0.00\t1\t0\n")
    sampler = MonitorSampler(out / "monitor.txt", use_inotify=inotify)
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
    return seen_records(samples), sampler, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=500)
    ap.add_argument("--interval-ms", type=float, default=10)
    ap.add_argument("--no-container", action="store_true")
    ap.add_argument("--poll", action="store_true", help="the polling sampler (no inotify), for comparison")
    a = ap.parse_args()
    interval = a.interval_ms / 1000
    modes = [("host", host_run)] + ([] if a.no_container else [("container", container_run)])
    for name, fn in modes:
        with tempfile.TemporaryDirectory() as d:
            seen, sampler, wall = fn(Path(d), a.records, interval, not a.poll)
        print(f"{name:<9} {sampler.mode:<7} writer every {a.interval_ms:g} ms: {a.records} records written, "
              f"{seen} seen, capture {seen / a.records:.2%}, sampler CPU {sampler.cpu_s * 1000:.0f} ms over "
              f"{wall:.1f} s = {sampler.cpu_s / wall:.2%} of a core, {sampler.polls / wall:.0f} reads/s, "
              f"{sampler.wakeups / wall:.0f} wake-ups/s")


if __name__ == "__main__":
    main()
