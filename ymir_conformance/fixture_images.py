"""Build the project's own fixture executor images, offline, only when their build context changed.

Layout under ``fixtures/executors/``:

* ``<name>/Dockerfile``: a reference image, tagged ``ymir-conformance/<name>:latest``. The build context is
  the whole ``fixtures/executors/`` folder, so images share code (``ymir_ref/``) instead of copying it.
* ``<name>/wheels.txt`` (optional): Python requirements that Debian lacks; they are fetched on the host with
  ``pip download`` into ``_wheels/`` (inside the context) and installed in the image with
  ``--no-index --find-links``. Builds run with ``--network=none``.
* ``broken/gallery.yaml``: the broken-image gallery; each entry becomes ``ymir-conformance/broken-<name>``,
  built from a generated Dockerfile ``FROM ymir-conformance/<base>`` + ``ENV YMIR_REF_DEFECT=<defect>``
  + optional extra Dockerfile lines.
* ``environment/gallery.yaml``: the same, for the environment fixtures (root only, network, CPU mode, ...).
* ``hostile/gallery.yaml``: the same, for images that attack the certifying host (``hostile-<name>``).

The content hash of everything an image is built from is stored in the label ``org.ymir-conformance.context``;
an image whose label matches is not rebuilt.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HASH_LABEL = "org.ymir-conformance.context"
REPO = "ymir-conformance"
WHEELS_DIR = "_wheels"
GALLERY_FILES = ("broken/gallery.yaml", "environment/gallery.yaml")
# Built like the galleries above, but judged by tests/integration/test_hostile.py (whole pytest runs as root
# against images that attack the host), not by test_gallery.py's exact-rules expectations.
HOSTILE_GALLERY_FILES = ("hostile/gallery.yaml",)


@dataclass
class FixtureImage:
    name: str
    dockerfile_text: str
    depends_on: str | None = None  # another fixture image this one is FROM
    wheels: list[str] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)  # gallery: expected outcome
    entry: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{REPO}/{self.name}:latest"


def image_tag(name: str) -> str:
    return f"{REPO}/{name}:latest"


def load_gallery(root: Path, relpath: str) -> list[dict[str, Any]]:
    path = root / relpath
    if not path.exists():
        return []
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list):
        raise SystemExit(f"{path}: expected a YAML list of gallery entries")
    return entries


def discover(root: Path, base_image: str) -> list[FixtureImage]:
    """Every fixture image, in build order (references before the gallery images built FROM them)."""
    images: list[FixtureImage] = []
    for dockerfile in sorted(root.glob("*/Dockerfile")):
        name = dockerfile.parent.name
        text = dockerfile.read_text().replace("${BASE_IMAGE}", base_image)
        wheels_file = dockerfile.parent / "wheels.txt"
        wheels = [ln.strip() for ln in wheels_file.read_text().splitlines()
                  if ln.strip() and not ln.startswith("#")] if wheels_file.exists() else []
        depends = None
        for line in text.splitlines():
            if line.startswith("FROM ") and f"{REPO}/" in line and base_image not in line:
                depends = line.split()[1].split("/", 1)[1].split(":")[0]
        images.append(FixtureImage(name, text, depends, wheels))
    for rel in GALLERY_FILES + HOSTILE_GALLERY_FILES:
        prefix = rel.split("/")[0]
        for entry in load_gallery(root, rel):
            base = entry.get("base", "reference-det")
            lines = [f"FROM {image_tag(base)}"]
            if entry.get("defect"):
                lines.append(f"ENV YMIR_REF_DEFECT={entry['defect']}")
            if entry.get("dockerfile"):
                lines.append(str(entry["dockerfile"]).rstrip())
            name = f"{prefix}-{entry['name']}"
            images.append(FixtureImage(name, "\n".join(lines) + "\n", base, [], entry.get("expect", {}), entry))
    by_name = {i.name: i for i in images}
    ordered: list[FixtureImage] = []

    def visit(img: FixtureImage) -> None:
        if img in ordered:
            return
        if img.depends_on and img.depends_on in by_name:
            visit(by_name[img.depends_on])
        ordered.append(img)

    for img in images:
        visit(img)
    return ordered


def context_hash(root: Path, img: FixtureImage, parent_hash: str) -> str:
    h = hashlib.sha256()
    h.update(img.dockerfile_text.encode())
    h.update(parent_hash.encode())
    h.update("\n".join(img.wheels).encode())
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        parts = Path(rel).parts
        if path.is_file() and parts[0] != WHEELS_DIR and not any(p.startswith(".") or p == "__pycache__" for p in parts):
            h.update(rel.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def current_hash(tag: str) -> str | None:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{ index .Config.Labels \"" + HASH_LABEL + "\" }}", tag],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def fetch_wheels(root: Path, wheels: list[str]) -> None:
    """``pip download`` binary wheels for the base image's Python (3.11, x86_64 manylinux) into ``_wheels/``."""
    dest = root / WHEELS_DIR
    dest.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux2014_x86_64",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64", "-d", str(dest), *wheels]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pip download {' '.join(wheels)} failed (exit {proc.returncode}):\n{proc.stderr}")


def build(root: Path, base_image: str, only: list[str] | None = None, quiet: bool = False) -> list[str]:
    """Build what changed; returns the tags that were (re)built."""
    images = discover(root, base_image)
    hashes: dict[str, str] = {}
    built: list[str] = []
    for img in images:
        parent = hashes.get(img.depends_on or "", "")
        digest = context_hash(root, img, parent)
        hashes[img.name] = digest
        if only and img.name not in only:
            continue
        if current_hash(img.tag) == digest:
            continue
        start = time.monotonic()
        if img.wheels:
            fetch_wheels(root, img.wheels)
        cmd = ["docker", "build", "--network=none", "-q", "-t", img.tag, "--label", f"{HASH_LABEL}={digest}",
               "-f", "-", str(root)]
        proc = subprocess.run(cmd, input=img.dockerfile_text, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"building {img.tag} failed:\n{proc.stdout}\n{proc.stderr}")
        built.append(img.tag)
        if not quiet:
            print(f"[bootstrap]     built {img.tag} ({time.monotonic() - start:.1f} s)", flush=True)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ymir_conformance.fixture_images")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the fixture images whose build context changed")
    b.add_argument("--root", type=Path, default=Path("fixtures/executors"))
    b.add_argument("--base", default="ymir-conformance/base:bookworm")
    b.add_argument("names", nargs="*", help="only these fixture images (default: all)")
    ls = sub.add_parser("list", help="list the fixture images and their expected outcomes")
    ls.add_argument("--root", type=Path, default=Path("fixtures/executors"))
    args = parser.parse_args(argv)
    root = args.root if args.root.name == "executors" else args.root / "executors"
    if args.cmd == "build":
        built = build(root, args.base, args.names or None)
        print(f"[bootstrap]     {len(built)} image(s) rebuilt, {len(discover(root, args.base)) - len(built)} up to date")
    else:
        for img in discover(root, "ymir-conformance/base:bookworm"):
            print(img.tag, img.expect or "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
