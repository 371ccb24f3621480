"""Throughput and scaling of dataset generation and export (ymir_conformance.datasets).

Prints, at 320x240:
  1. scene generation, images/s per object type;
  2. export, images/s per export format (scenes generated beforehand, so this is the exporter alone);
  3. scaling of generate+export streamed end to end (splits passed as generators), 100 -> 10,000 images:
     time per image and peak RSS, each size in a fresh subprocess; a per-image time ratio near 1 and an
     RSS growth far below the data size show linear cost and streaming.

Generation runs in worker processes for large sets (``generate.default_workers``: one per core from 512 scenes) and
files are written by writer threads (``files.FileSink``); ``--workers 0`` measures the in-process renderer.
``--e2e N`` prints only the end-to-end figure the issue tracks (det-ark, N images, best of ``--repeat`` runs, each in
a fresh process), with the CPU time of the process and its workers.

Usage:  python benchmarks/bench_datasets.py [--sizes 100,1000,10000] [--formats det-ark,det-voc,coco]
        python benchmarks/bench_datasets.py --e2e 2000 --repeat 5 [--workers 0]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ymir_conformance.datasets import export_training_set, generate_scenes  # noqa: E402
from ymir_conformance.model import ObjectType  # noqa: E402
from ymir_conformance.platform import Release  # noqa: E402

NAMES = ("cat", "dog", "person")
WH = (320, 240)
FORMATS: dict[str, tuple[ObjectType, str]] = {
    "det-ark": (ObjectType.DETECTION, "2.5"),
    "det-voc": (ObjectType.DETECTION, "2.5"),
    "det-ls-json": (ObjectType.DETECTION, "2.4"),
    "coco": (ObjectType.DETECTION, "2.5"),
    "seg-coco": (ObjectType.INSTANCE_SEGMENTATION, "2.5"),
    "seg-mask": (ObjectType.SEMANTIC_SEGMENTATION, "2.0"),
    "none": (ObjectType.DETECTION, "2.5"),
}


def bench_generation(count: int) -> None:
    print(f"== generation, {count} images at 320x240 (jpg)")
    for object_type in (ObjectType.DETECTION, ObjectType.INSTANCE_SEGMENTATION, ObjectType.SEMANTIC_SEGMENTATION):
        start = time.perf_counter()
        for _ in generate_scenes(1, count, object_type, NAMES, image_exts=("jpg",), min_size=WH, max_size=WH):
            pass
        elapsed = time.perf_counter() - start
        print(f"  {object_type.name.lower():24s} {count / elapsed:8.0f} images/s")


def bench_export(count: int, formats: list[str]) -> None:
    print(f"== export only, {count} images at 320x240 (80% train / 20% val)")
    for fmt in formats:
        object_type, release = FORMATS[fmt]
        scenes = list(generate_scenes(2, count, object_type, NAMES, image_exts=("jpg",), min_size=WH, max_size=WH))
        split = count * 4 // 5
        with tempfile.TemporaryDirectory(prefix="bench-ds-") as tmp:
            start = time.perf_counter()
            export_training_set(
                Path(tmp), train=scenes[:split], val=scenes[split:], class_names=NAMES,
                export_format=f"{fmt}:raw", release=Release.parse(release),
            )
            elapsed = time.perf_counter() - start
        print(f"  {fmt:12s} ({object_type.short:7s} {release}) {count / elapsed:8.0f} images/s")


def _proc_status_kb(key: str) -> int:
    """VmRSS / VmHWM of this process (Linux). ru_maxrss would be wrong here: it survives fork+exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(count: int, fmt: str) -> dict[str, float]:
    """One end-to-end streamed run in this (fresh) process: generator -> export; time and peak RSS."""
    object_type, release = FORMATS[fmt]
    list(generate_scenes(0, 2, object_type, NAMES))  # warm-up: imports, noise tile
    rss_before = _proc_status_kb("VmRSS")
    tmp = tempfile.mkdtemp(prefix="bench-ds-")
    try:
        split = count * 4 // 5
        cpu_before = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                             resource.getrusage(resource.RUSAGE_CHILDREN)))
        start = time.perf_counter()
        summary = export_training_set(
            Path(tmp),
            train=generate_scenes(3, split, object_type, NAMES, image_exts=("jpg",), min_size=WH, max_size=WH),
            val=generate_scenes(4, count - split, object_type, NAMES, image_exts=("jpg",), min_size=WH, max_size=WH),
            class_names=NAMES,
            export_format=f"{fmt}:raw",
            release=Release.parse(release),
        )
        elapsed = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = sum(u.ru_utime + u.ru_stime for u in usage) - cpu_before
        rss_after = _proc_status_kb("VmHWM")  # before walking the output (that walk allocates, too)
        data = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp) for f in files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert summary.total_images == count
    return {"seconds": elapsed, "cpu_seconds": cpu, "rss_before_kb": rss_before, "rss_peak_kb": rss_after,
            "data_bytes": data}


def bench_scaling(sizes: list[int], formats: list[str]) -> None:
    print(f"== scaling, generate+export streamed, sizes {sizes} (each in a fresh process)")
    for fmt in formats:
        rows = []
        for count in sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(count), fmt], check=True, capture_output=True, text=True
            )
            rows.append((count, json.loads(out.stdout)))
        base_count, base = rows[0]
        base_per_image = base["seconds"] / base_count
        for count, r in rows:
            per_image_ms = r["seconds"] / count * 1000
            growth = (r["rss_peak_kb"] - base["rss_peak_kb"]) / 1024
            during = (r["rss_peak_kb"] - r["rss_before_kb"]) / 1024
            print(
                f"  {fmt:12s} n={count:6d}  {count / r['seconds']:7.0f} img/s  {per_image_ms:6.3f} ms/img"
                f"  ratio {r['seconds'] / count / base_per_image:5.2f}  peak RSS {r['rss_peak_kb'] / 1024:6.1f} MiB"
                f" (+{during:5.1f} during the run, {growth:+5.1f} vs n={base_count})"
                f"  data written {r['data_bytes'] / 2**20:7.1f} MiB"
            )


def bench_e2e(count: int, repeat: int) -> None:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--child", str(count), "det-ark"], check=True,
                             capture_output=True, text=True)
        runs.append(json.loads(out.stdout))
    rates = sorted(count / r["seconds"] for r in runs)
    cpu = sorted(r["cpu_seconds"] / count * 1000 for r in runs)
    print(f"== end to end, generate+export det-ark, {count} images at 320x240, {repeat} fresh processes, "
          f"workers={os.environ.get('YMIR_DATASET_WORKERS', 'auto')}, load {os.getloadavg()[0]:.1f}")
    print(f"  best {rates[-1]:6.0f} img/s, median {rates[len(rates) // 2]:6.0f} img/s "
          f"(all: {', '.join(f'{r:.0f}' for r in rates)}); CPU {cpu[0]:.3f} ms/img at best, median "
          f"{cpu[len(cpu) // 2]:.3f} (process + workers)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--scaling-formats", default="det-ark,coco,seg-coco")
    parser.add_argument("--count", type=int, default=1000, help="images for the throughput sections")
    parser.add_argument("--child", nargs=2, metavar=("COUNT", "FORMAT"), help=argparse.SUPPRESS)
    parser.add_argument("--e2e", type=int, metavar="N", help="only the end-to-end det-ark figure for N images")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, help="generation worker processes (default: auto; 0: in-process)")
    args = parser.parse_args()
    if args.workers is not None:
        os.environ["YMIR_DATASET_WORKERS"] = str(args.workers)
    if args.e2e:
        bench_e2e(args.e2e, args.repeat)
        return
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return
    bench_generation(args.count)
    bench_export(args.count, args.formats.split(","))
    bench_scaling([int(s) for s in args.sizes.split(",")], args.scaling_formats.split(","))


if __name__ == "__main__":
    main()
