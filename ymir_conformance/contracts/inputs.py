"""Input coverage (issue 11): the image reads what the platform gave it, and nothing it was not given.

Judged from the inotify audit of the run (``ymir_conformance/audit.py``, ``RunOutcome.inputs_opened``): which
files under the host side of ``/in`` and of the asset cache the container opened, against what the index files
and config.yaml list.

Rule ids and levels (contract §1.4, §3):

* ``IN-11`` MUST, training: opens the annotation files of the export format it was given (per-image files of
  train-index.tsv, or the one coco-annotations.json). Judged on the training split alone (its images are
  counted too, ``train_assets``, but not judged: a skeleton that trains on labels alone is the author's start): none of its annotation files opened means the model was trained on nothing the user labelled,
  whatever else was opened (the validation split's files, or the dataset's predictions: ``pred-*-index.tsv``
  and ``/in/predictions``, which env.yaml never names and which hold what earlier models inferred). The task
  "succeeds" and the user's labels are silently unused, which the platform cannot notice. Partial reading
  (e.g. a subsample) is the image's choice, so only "none" fails. Reading the predictions *as well* is not a
  finding of its own: the platform exports them beside the labels (``exporter.export_mirdatas_to_dir``
  writes ``pred-{train,val,test}-index.tsv``), an image may use them (e.g. as pseudo-labels); only training
  *instead of* the labels is wrong, and that is exactly an empty training split here.
* ``IN-12`` SHOULD, mining/infer: opens every candidate image listed in candidate-index.tsv. A skipped image
  gets no prediction or score; INF-/MIN- rules see the outputs, this names the cause (it never read them).
  SHOULD because the platform accepts fewer results (it drops nothing it was given).
* ``IN-13`` MUST, mining/infer: opens at least one of the model files listed in model_params_path (for a
  legacy 1.1 package extracted flat, a file of that name under /in/models). None opened means the results do
  not come from the model the user chose: predictions from built-in weights, or made up.
* ``LC-04`` SHOULD (2.0+, where /in/assets is the user's shared asset cache): never lists /in/assets. The
  folder holds other tasks' images; the suite puts decoys there that no index names, so listing it (or reading
  a decoy) is the tell of an image that enumerates the folder instead of reading the index.

The rules live in the LIFECYCLE area, so that one test per run (``test_lifecycle``) judges them whatever the
task. A run that was not audited (``judge`` on external dirs, the audit switched off, inotify's per-user limits
reached) is not applicable, never failed; the "not opened" rules (IN-11..13) also need a complete audit (no
events dropped by the kernel), while LC-04 reports what was seen.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..model import Task
from .base import REGISTRY, Area, Check, CheckFunc, Level, RunView, Violation, check, short

AUDIT_DOC = "ymir_conformance/audit.py"


@dataclass(frozen=True)
class AuditedCheck(Check):
    """A check judged only on an audited run (``complete``: and only when no event was dropped)."""

    complete: bool = True

    def applies_to(self, view: RunView) -> bool:
        audit = view.outcome.inputs_opened
        if not audit or not audit.get("audited"):
            return False
        if self.complete and not audit.get("complete", False):
            return False
        return super().applies_to(view)


def _audited(complete: bool) -> Callable[[CheckFunc], CheckFunc]:
    """Turn the check just registered by ``@check`` into an :class:`AuditedCheck` (same fields)."""

    def wrap(func: CheckFunc) -> CheckFunc:
        for rule, chk in list(REGISTRY.items()):
            if chk.func is func and not isinstance(chk, AuditedCheck):
                REGISTRY[rule] = AuditedCheck(**{**chk.__dict__, "complete": complete})
        return func

    return wrap


def _cov(view: RunView, key: str) -> dict[str, Any]:
    value = view.outcome.inputs_opened.get(key)
    return value if isinstance(value, dict) else {}


def _missed(cov: dict[str, Any]) -> str:
    missed = [str(p) for p in cov.get("missed") or []]
    more = int(cov.get("listed", 0)) - int(cov.get("opened", 0)) - len(missed)
    return ", ".join(missed) + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------------------------------------
# IN-11: training reads the annotations
# --------------------------------------------------------------------------------------------------------


@_audited(complete=True)
@check("IN-11", "training opens the annotation files of the export format it was given", area=Area.LIFECYCLE,
       level=Level.MUST, tasks={Task.TRAINING})
def in_11(view: RunView) -> Iterator[Violation]:
    """Judged on the training split: files of the validation split (or the dataset's predictions) opened say
    nothing about what the model was trained on."""
    audit = view.outcome.inputs_opened
    split = isinstance(audit.get("train_annotations"), dict)
    cov = _cov(view, "train_annotations" if split else "annotations")
    listed, opened = int(cov.get("listed", 0)), int(cov.get("opened", 0))
    val = _cov(view, "val_annotations")
    preds = _cov(view, "predictions")
    fmt = view.config.get("export_format") or view.outcome.export_format or "voc:raw"
    also = []
    if split and val.get("listed"):
        also.append(f"val annotations {val.get('opened', 0)}/{val.get('listed', 0)}")
    if preds.get("opened"):
        also.append(f"{preds['opened']} file(s) of the dataset's predictions (e.g. "
                    f"{', '.join(str(p) for p in preds.get('examples') or [])})")
    trained_on = ("it read the dataset's predictions instead (what earlier models inferred, not labels)"
                  if preds.get("opened") else "")
    if listed and not opened:
        yield Violation(
            "IN-11", f"training never opened an annotation file of the training split: the model was trained on "
            f"nothing the user labelled{'; ' + trained_on if trained_on else ''}, yet the task succeeds, so the "
            "user's labels are silently unused",
            file="/in/train-index.tsv", where="column 2",
            found=f"train annotations 0/{listed} opened (export_format {short(fmt)})"
                  + (f"; opened {', '.join(also)}" if also else ""),
            expected="the annotation files of the training index lines (column 2 of each train-index.tsv line)",
            fix="Read every line of env.yaml input.training_index_file (train-index.tsv, the user's labels) and "
                "val_index_file as '<image>\\t<annotation>' and parse the annotation file in the format config.yaml "
                "export_format names (contract §3.4, §4): per-image ARK/VOC/LS-JSON files, or the one "
                "/in/annotations/coco-annotations.json. Never train on pred-*-index.tsv or /in/predictions: those "
                "are earlier models' predictions. Fail with 300002 if the format is not one you support.")


# --------------------------------------------------------------------------------------------------------
# IN-12: every candidate is read; IN-13: the model is loaded
# --------------------------------------------------------------------------------------------------------


@_audited(complete=True)
@check("IN-12", "infer/mining opens every candidate image listed in candidate-index.tsv", area=Area.LIFECYCLE,
       level=Level.SHOULD, tasks={Task.MINING, Task.INFER})
def in_12(view: RunView) -> Iterator[Violation]:
    cov = _cov(view, "candidates")
    listed, opened = int(cov.get("listed", 0)), int(cov.get("opened", 0))
    if opened < listed:
        yield Violation(
            "IN-12", f"{listed - opened} of the {listed} candidate images were never opened: those images get no "
            "prediction or mining score", file="/in/candidate-index.tsv", found=f"not opened: {_missed(cov)}",
            expected=f"all {listed} candidate images opened", lost=listed - opened,
            fix="Iterate over every line of env.yaml input.candidate_index_file (one /in/assets/... path per line) "
                "and open each image; do not stop at a fixed count, a batch remainder or the first error.")


@_audited(complete=True)
@check("IN-13", "infer/mining opens the model files listed in model_params_path", area=Area.LIFECYCLE,
       level=Level.MUST, tasks={Task.MINING, Task.INFER})
def in_13(view: RunView) -> Iterator[Violation]:
    cov = _cov(view, "models")
    listed, opened = int(cov.get("listed", 0)), int(cov.get("opened", 0))
    if listed and not opened:
        yield Violation(
            "IN-13", "none of the model files in config.yaml model_params_path was opened: the results do not "
            "come from the model the user trained and chose (built-in weights, or made up)",
            file="/in/config.yaml", where="model_params_path", found=f"0 of {listed} opened: {_missed(cov)}",
            expected="the listed model files (/in/models/<stage>/<file>) loaded",
            fix="Load the weights from the paths in config.yaml model_params_path (check that each exists, and for "
                "a legacy package look under env.yaml input.models_dir, IN-04); never fall back silently to "
                "weights baked into the image: fail cleanly (monitor state 4, a 3000xx code) if no listed file is usable.")


# --------------------------------------------------------------------------------------------------------
# LC-04: /in/assets is not enumerated
# --------------------------------------------------------------------------------------------------------


@_audited(complete=False)
@check("LC-04", "never lists /in/assets (it holds other tasks' images)", area=Area.LIFECYCLE,
       levels={"2.0+": Level.SHOULD}, needs_success=False)
def lc_04(view: RunView) -> Iterator[Violation]:
    audit = view.outcome.inputs_opened
    decoys = _cov(view, "decoys")
    n_decoys = int(decoys.get("opened", 0))
    if not audit.get("assets_listed") and not n_decoys:
        return
    found = []
    if audit.get("assets_listed"):
        found.append("listed " + ", ".join(str(d) for d in audit.get("listed_dirs") or []))
    if n_decoys:
        examples = ", ".join(str(p) for p in decoys.get("examples") or [])
        found.append(f"opened {n_decoys} image(s) that no index file of this task names: {examples}")
    yield Violation(
        "LC-04", "the image enumerated /in/assets instead of reading the index files: on the platform that folder "
        "is the user's asset cache shared by all tasks, so it picks up (and here "
        + ("read" if n_decoys else "could read") + ") other tasks' images", file="/in/assets",
        found="; ".join(found), expected="only the images the index files list are opened; no directory listing",
        fix="Take the image list from env.yaml input.training_index_file/val_index_file (training) or "
            "candidate_index_file (mining/infer); never os.listdir/glob/os.walk /in/assets.")
