"""Write a training workspace's data exactly as the platform exports it into /in (contract §3, §4)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..platform import LATEST, Release
from .files import FileSink
from .formats import parse_export_format, writer_for
from .layout import COCO_JSON_NAME, Layout
from .scene import Scene, SceneObject
from .writers.ark import render_ark
from .writers.coco import CocoBuilder
from .writers.ls_json import render_ls_json
from .writers.seg_mask import render_labelmap, render_seg_mask
from .writers.voc import render_voc

SPLITS = ("train", "val", "test")
INDEX_FILES_2X = (
    "train-index.tsv",
    "val-index.tsv",
    "test-index.tsv",
    "pred-train-index.tsv",
    "pred-val-index.tsv",
    "pred-test-index.tsv",
    "idx-assets.tsv",
    "idx-gt.tsv",
    "idx-pred.tsv",
)
INDEX_FILES_1X = ("train-index.tsv", "val-index.tsv")
SUFFIX = {"ark": "txt", "voc": "xml", "ls_json": "json", "seg_mask": "png"}


@dataclass(frozen=True)
class ExportSummary:
    """What ``export_training_set`` wrote."""

    release: Release
    export_format: str | None  # the value as given
    annotation_format: str | None  # None: no annotations (index files empty, only idx-assets lists images)
    asset_format: str
    images: Mapping[str, int]  # per split: images listed in that split's index (or exported, without annotations)
    objects: int  # objects exported (classes outside class_names are dropped, as the platform does)
    objects_per_class: Mapping[str, int]
    files_written: int
    index_files: tuple[str, ...]
    duplicates_skipped: int = 0  # scenes whose sha1 was already exported (one asset, one split)
    unindexed: int = 0  # 1.1 only: assets whose PIL extension its index kept out (bmp, unreadable)
    split_of: Mapping[str, str] = field(default_factory=dict, repr=False)  # sha1 -> split

    @property
    def total_images(self) -> int:
        return sum(self.images.values())


class _Annotations:
    """Dispatch to the active writer; per-image files are written at once, COCO at ``finish``.

    ``top`` is ``annotations`` (ground truth) or ``predictions``: the platform runs the same writer over every asset
    for both (``exporter._export_mirdatas_to_raw``); the suite's data has no predictions, so that pass writes each
    asset's file with no objects.
    """

    def __init__(self, writer: str | None, sink: FileSink, layout: Layout, class_names: Sequence[str],
                 label_names: Sequence[str] | None = None, top: str = "annotations") -> None:
        self.writer = writer
        self.sink = sink
        self.layout = layout
        self.top = top
        self.class_names = tuple(class_names)
        self.coco = CocoBuilder(class_names, label_names) if writer == "coco" else None
        if writer == "seg_mask" and top == "annotations":
            sink.write("annotations/labelmap.txt", render_labelmap(class_names))

    def container_path(self, scene: Scene) -> str:
        if self.writer == "coco":
            return f"/in/{self.top}/{COCO_JSON_NAME}"
        assert self.writer is not None
        return self.layout.container_path(self.top, self.layout.annotation_relpath(scene, SUFFIX[self.writer]))

    def write(self, scene: Scene, labelled: Sequence[tuple[int, SceneObject]], asset_path: str) -> None:
        if self.writer is None:
            return
        if self.coco is not None:
            self.coco.add(scene, labelled)
            return
        relpath = f"{self.top}/" + self.layout.annotation_relpath(scene, SUFFIX[self.writer])
        if self.writer == "ark":
            self.sink.write(relpath, render_ark(labelled, legacy=self.layout.legacy))
        elif self.writer == "voc":
            # image_cks[asset].image_quality: 2.x imports detection ground truth from VOC only, and its parser sets
            # -1.0 for every imported XML without the element (annotations._import_annotations_voc_xml); the
            # predictions pass is handed image_cks={} (exporter._export_mirdatas_to_raw): the protobuf default 0.0.
            quality = -1.0 if self.top == "annotations" else 0.0
            self.sink.write(relpath, render_voc(scene, labelled, self.class_names, asset_path, quality))
        elif self.writer == "ls_json":
            self.sink.write(relpath, render_ls_json(scene, labelled, self.class_names, asset_path))
        elif self.writer == "seg_mask":
            png = render_seg_mask(scene, labelled)
            if png is not None:
                self.sink.write(relpath, png)

    def finish(self) -> None:
        if self.coco is not None:
            with open(self.sink.path(f"{self.top}/{COCO_JSON_NAME}"), "w", encoding="utf-8", newline="\n") as out:
                self.coco.write(out)
            self.sink.files_written += 1


def export_training_set(
    in_dir: Path,
    *,
    train: Iterable[Scene],
    val: Iterable[Scene],
    test: Iterable[Scene] = (),
    class_names: Sequence[str],
    export_format: str | None,
    release: Release = LATEST,
    label_names: Sequence[str] | None = None,
) -> ExportSummary:
    """Write assets, annotations and every index file into ``in_dir`` (the host side of /in).

    The splits are read once, one scene at a time (generators are fine). Index lines follow the given
    order: train, then val, then test. ``ValueError`` for an ``export_format`` the platform would fail on.
    ``label_names``: the user's label store in label-id order (COCO lists categories by label id); default
    ``class_names`` sorted. 2.x also gets ``/in/predictions``: one object-less file per asset (the dataset has no
    predictions) and the ``pred-*-index.tsv`` / ``idx-pred.tsv`` lines, as the platform writes them.
    """
    anno_format, asset_format = parse_export_format(export_format, release)
    layout = Layout(release)
    sink = FileSink(Path(in_dir))
    sink.mkdir("assets")
    sink.mkdir("annotations")
    index_names = INDEX_FILES_1X if layout.legacy else INDEX_FILES_2X
    if not layout.legacy:
        sink.mkdir("predictions")
    writer = writer_for(anno_format) if anno_format is not None else None
    annotations = _Annotations(writer, sink, layout, class_names, label_names)
    # seg-mask (2.0 only) is left out of the predictions pass: not verified against a 2.0 oracle yet
    predictions = (_Annotations(writer, sink, layout, class_names, label_names, top="predictions")
                   if writer is not None and writer != "seg_mask" and not layout.legacy else None)
    class_ids = {name: i for i, name in enumerate(class_names)}
    counts: Counter[str] = Counter()
    per_class: Counter[str] = Counter()
    split_of: dict[str, str] = {}
    duplicates = unindexed = 0
    handles: dict[str, IO[str]] = {
        name: (sink.root / name).open("w", encoding="utf-8", newline="\n") for name in index_names
    }
    try:
        for split, scenes in zip(SPLITS, (train, val, test)):
            for scene in scenes:
                if layout.legacy and split == "test":
                    raise ValueError("ymir 1.1 has no test split; pass test=() for release 1.1")
                if scene.sha1 in split_of:
                    duplicates += 1
                    continue
                split_of[scene.sha1] = split
                relpath = layout.asset_relpath(scene)
                sink.write(f"assets/{relpath}", scene.image_bytes)
                asset_path = layout.container_path("assets", relpath)
                labelled = [(class_ids[o.class_name], o) for o in scene.objects if o.class_name in class_ids]
                annotations.write(scene, labelled, asset_path)
                if predictions is not None:
                    predictions.write(scene, [], asset_path)
                per_class.update(class_names[cid] for cid, _ in labelled)
                if not layout.indexed(scene):
                    unindexed += 1
                    continue
                counts[split] += 1
                if "idx-assets.tsv" in handles:
                    handles["idx-assets.tsv"].write(asset_path + "\n")
                if writer is not None:
                    line = f"{asset_path}\t{annotations.container_path(scene)}\n"
                    handles[f"{split}-index.tsv"].write(line)
                    if "idx-gt.tsv" in handles:
                        handles["idx-gt.tsv"].write(line)
                if predictions is not None:
                    line = f"{asset_path}\t{predictions.container_path(scene)}\n"
                    handles[f"pred-{split}-index.tsv"].write(line)
                    handles["idx-pred.tsv"].write(line)
        annotations.finish()
        if predictions is not None:
            predictions.finish()
    except BaseException:
        sink.abandon()
        raise
    finally:
        for handle in handles.values():
            handle.close()
    sink.close()  # every file written (raises a writer's error)
    return ExportSummary(
        release=release,
        export_format=export_format,
        annotation_format=anno_format,
        asset_format=asset_format,
        images={split: counts[split] for split in SPLITS},
        objects=sum(per_class.values()) if writer is not None else 0,
        objects_per_class=dict(per_class) if writer is not None else {},
        files_written=sink.files_written + len(handles),
        index_files=index_names,
        duplicates_skipped=duplicates,
        unindexed=unindexed,
        split_of=split_of,
    )
