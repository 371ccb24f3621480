"""Write the assets and ``candidate-index.tsv`` of a mining or infer workspace (contract §3.4)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..platform import LATEST, Release
from .files import FileSink
from .layout import IN_ROOT, Layout
from .scene import Scene

CANDIDATE_INDEX = "candidate-index.tsv"


def export_candidates(
    in_dir: Path, scenes: Iterable[Scene], *, flat_names: bool = False, release: Release = LATEST
) -> list[str]:
    """Write each scene's asset and one line per asset to ``candidate-index.tsv``; return the container paths.

    Dataset form: ``/in/assets/<xx>/<sha1>.<ext>`` (one line per distinct sha1). ``flat_names``: the
    single-image-infer form, ``/in/assets/<scene.name>`` stored flat; a duplicate or non-flat name is a
    ``ValueError`` (the platform rejects those before the container starts).
    """
    layout = Layout(release)
    sink = FileSink(Path(in_dir))
    sink.mkdir("assets")
    paths: list[str] = []
    seen: set[str] = set()
    try:
        _write_candidates(sink, layout, scenes, flat_names, paths, seen)
    except BaseException:
        sink.abandon()
        raise
    sink.write(CANDIDATE_INDEX, "".join(p + "\n" for p in paths))
    sink.close()
    return paths


def _write_candidates(sink: FileSink, layout: Layout, scenes: Iterable[Scene], flat_names: bool, paths: list[str],
                      seen: set[str]) -> None:
    for scene in scenes:
        if flat_names:
            if "/" in scene.name or "\\" in scene.name or scene.name in ("", ".", ".."):
                raise ValueError(f"single-image infer needs a flat file name, got {scene.name!r}")
            if scene.name in seen:
                raise ValueError(f"duplicate upload name {scene.name!r} (the platform rejects it)")
            seen.add(scene.name)
            sink.write(f"assets/{scene.name}", scene.image_bytes)
            paths.append(f"{IN_ROOT}/assets/{scene.name}")
            continue
        if scene.sha1 in seen:
            continue
        seen.add(scene.sha1)
        relpath = layout.asset_relpath(scene)
        sink.write(f"assets/{relpath}", scene.image_bytes)
        paths.append(layout.candidate_path(relpath))
