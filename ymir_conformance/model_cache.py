"""The trained-model cache (a room of the conductor, conductor.py): a training's model package kept under
``<workdir>/../model-cache`` by image id, seed, profile, object type, export format, release, the data version
(``workspace.DATA_VERSION``) and the hyper-parameter edits that reach training, and reused by a later session that runs downstream tasks only.
"""
from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from . import guard, hyper
from .image import ImageInfo
from .model import Task
from .options import Settings
from .rmtree import remove_tree_or_raise
from .session import RunRecord, RunSpec
from .workspace import DATA_VERSION, ModelPackage, load_package


class ModelCache:
    """``_cache_model`` after a training; ``_cached_model`` instead of a training that was not requested."""

    settings: Settings
    cache_dir: Path
    _cache_lock: threading.Lock

    if TYPE_CHECKING:  # the conductor's image inspection
        def info(self, image: str) -> ImageInfo: ...

    def _cache_key(self, spec: RunSpec) -> Path:
        info = self.info(spec.image)
        s = self.settings
        # a model trained with other hyper-parameters or dataset sizes is another model; edits that reach only
        # the mining/infer templates do not change it
        edits = hyper.reaching(s.hyper_params, Task.TRAINING)
        tuned = "" if not (edits or s.dataset_size) else "-h" + hashlib.sha1(
            f"{[str(p) for p in edits]}|{s.dataset_size}".encode()).hexdigest()[:10]
        return (self.cache_dir / f"{info.image_id.removeprefix('sha256:')[:16]}-seed{self.settings.seed}-"
                f"{self.settings.profile}-{spec.object_type.short}-{spec.export_format}-{spec.release}-d{DATA_VERSION}"
                f"{tuned}")

    def _cache_model(self, spec: RunSpec, pkg: ModelPackage) -> None:
        dest = self._cache_key(spec)
        with self._cache_lock:
            remove_tree_or_raise(dest)
            shutil.copytree(pkg.root, dest, copy_function=guard.clone_file)  # sparse-aware: holes stay holes

    def _cached_model(self, spec: RunSpec) -> RunRecord | None:
        """When training is not among the requested tasks, reuse a model trained by an earlier session."""
        if spec.kind != "training" or "training" in self.settings.tasks:
            return None
        with self._cache_lock:
            pkg = load_package(self._cache_key(spec))
        if pkg is None:
            return None
        return RunRecord(spec, None, None, model=pkg,
                         skipped=f"training was not requested; reused the model cached at {pkg.root}")


__all__ = ["ModelCache"]
