"""Training output checks: ``/out/models/result.yaml``, the model files and ``/out/tensorboard``
(contract §5.3, TR-01..TR-15; §6 V4-V8; §10).

TR-01 owns result.yaml: when it is missing, unreadable, not YAML or not a mapping, only TR-01 reports and every
other TR check yields nothing.
"""
from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..model import ObjectType, Task
from ..platform import Release
from .. import guard, tfevents
from ..errors import UnsafeOutput
from ._values import as_float, as_int, described, is_symlink, key_text, kind, regular_file
from .base import Area, Level, RunView, Violation, cap, check, short

RESULT = "/out/models/result.yaml"
MODELS = "/out/models"
TRAINING = [Task.TRAINING]
R20 = Release(2, 0)
R21 = Release(2, 1)

METRICS_20 = ("mAP", "mAR")
METRICS_21 = ("mAP", "mAR", "mIoU", "mAcc", "maskAP", "boxAP")
COUNTS = ("tp", "fp", "fn")
MAIN_METRIC = {ObjectType.DETECTION: "mAP", ObjectType.SEMANTIC_SEGMENTATION: "mIoU",
               ObjectType.INSTANCE_SEGMENTATION: "maskAP", ObjectType.MULTI_MODAL: "mAP"}
MAX_STAGES = 11
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

EXAMPLE = ("best_stage_name: epoch20\nmodel_stages:\n  epoch20:\n    stage_name: epoch20\n    files: [epoch20.pt, "
           "config.py]\n    timestamp: 1663840020\n    mAP: 0.72")
FIX_RESULT = (
    "At the end of training (and after every saved stage) write /out/models/result.yaml with yaml.safe_dump of "
    "a plain dict: {'best_stage_name': 'epoch20', 'model_stages': {'epoch20': {'stage_name': 'epoch20', "
    "'files': ['epoch20.pt', 'config.py'], 'timestamp': int(time.time()), 'mAP': float(map50)}}}, with the "
    "files in /out/models/epoch20/. Convert every metric to a plain Python float with float() (numpy and torch "
    "scalars are not plain YAML). The SDK does this: ymir_exc.result_writer.write_model_stage(stage_name=..., "
    "files=[...], evaluation_result={'mAP': ...})."
)
EXAMPLE_11 = "model: [model.pt, config.py]\nmap: 0.72"
FIX_RESULT_11 = (
    "For platform 1.1 (env.yaml has no protocol_version) write the legacy format at the end of training: "
    "/out/models/result.yaml = yaml.safe_dump({'model': [<file names directly in /out/models>], 'map': "
    "float(map50)}) (ymir_exc 1.1's write_training_result does this). Branch on env.yaml protocol_version: "
    "absent means 1.1 and the legacy format, 1.0.0 or later means model_stages + best_stage_name."
)
FIX_STAGE = (
    "Give every entry of model_stages the keys stage_name (str, equal to its key), files (a list of file names "
    "relative to /out/models/<stage>/), timestamp (int seconds, int(time.time())) and the metrics of your "
    "object type as plain floats in [0, 1] (mAP/mAR for detection, mIoU/mAcc for semantic segmentation, "
    "maskAP/boxAP for instance segmentation; tp/fp/fn as ints >= 0). A percentage such as 65.3 must be written "
    "as 0.653. The platform validates this with pydantic and fails the task (160010/160011) otherwise."
)
FIX_FILES = (
    "List in files only names relative to the stage directory, and save each listed file at "
    "/out/models/<stage_key>/<name> (searched first) or /out/models/<name>, as a regular file, before writing "
    "result.yaml. Never list absolute paths such as /out/models/x.pt: the platform resolves them on the host, "
    "where they do not exist, and fails the task."
)


# --------------------------------------------------------------------------------------------------------
# Reading result.yaml once
# --------------------------------------------------------------------------------------------------------


def _result(view: RunView) -> dict[Any, Any] | None:
    art = view.result_yaml
    return art.value if art.ok and isinstance(art.value, dict) else None


def _uses_stages(view: RunView, res: dict[Any, Any]) -> bool:
    """Whether the platform of this release reads the stage format (2.x prefers model_stages; 1.1 reads model)."""
    return view.release >= R20 and "model_stages" in res


def _stages(view: RunView) -> dict[Any, Any] | None:
    res = _result(view)
    if res is None or not _uses_stages(view, res):
        return None
    stages = res.get("model_stages")
    return stages if isinstance(stages, dict) and stages else None


def _metric_names(release: Release) -> tuple[str, ...]:
    return METRICS_20 if release < R21 else METRICS_21


# --------------------------------------------------------------------------------------------------------
# TR-01: the file and its top-level shape
# --------------------------------------------------------------------------------------------------------


@check("TR-01", "result.yaml exists and is a mapping with model_stages+best_stage_name (or legacy model+map)",
       area=Area.TRAINING, level=Level.MUST, tasks=TRAINING)
def tr_01(view: RunView) -> Iterator[Violation]:
    art = view.result_yaml
    legacy = view.release < R20
    consequence = ("ymir 1.1's _find_models raises and the task fails" if legacy
                   else "the platform fails the task (160010 on <= 2.3, 160011 on 2.4+)")
    fix = FIX_RESULT_11 if legacy else FIX_RESULT
    if not art.exists:
        missing = ("ymir 1.1 then marks the task successful but stores no model" if legacy
                   else consequence)
        yield Violation("TR-01", f"/out/models/result.yaml does not exist after training: {missing}",
                        file=RESULT, found="no file", expected=EXAMPLE_11 if legacy else EXAMPLE, fix=fix)
        return
    if not art.ok:
        problem = art.problem
        hint = ""
        if re.search(r"python/|numpy|torch", problem + art.text[:100000]):
            hint = ("; it holds a numpy/torch scalar (a !!python/object tag) that yaml.safe_load refuses: "
                    "convert with float()")
        yield Violation("TR-01", f"/out/models/result.yaml {problem}{hint}: {consequence}", file=RESULT,
                        found=short(art.text[:200]) if art.text else problem, expected="a YAML mapping",
                        fix=fix)
        return
    res = art.value
    if not isinstance(res, dict):
        yield Violation("TR-01", f"/out/models/result.yaml is {kind(res)}, not a mapping: {consequence}",
                        file=RESULT, found=described(res), expected="a YAML mapping", fix=fix)
        return
    if legacy:
        missing_keys = [k for k in ("model", "map") if k not in res]
        if missing_keys:
            sdk = " (this is the 2.x SDK's model_stages format, which 1.1 does not know)" if "model_stages" in res else ""
            yield Violation("TR-01", f"result.yaml has no {' and no '.join(missing_keys)}{sdk}: ymir 1.1 reads only "
                            "the legacy keys model (list of files in /out/models) and map (float), so its "
                            "_find_models raises KeyError and the task fails", file=RESULT, where=missing_keys[0],
                            found=f"keys {short(sorted(map(key_text, res)))}", expected="model: [...] and map: 0.8",
                            fix=fix)
        return
    if "model_stages" in res:
        stages = res["model_stages"]
        if not isinstance(stages, dict) or not stages:
            yield Violation("TR-01", f"model_stages is {described(stages)}, not a non-empty mapping of stage name "
                            "to stage: the platform fails the task", file=RESULT, where="model_stages",
                            found=described(stages), expected="a non-empty mapping", fix=FIX_RESULT)
        if "best_stage_name" not in res:
            yield Violation("TR-01", "best_stage_name is missing: the platform fails the task", file=RESULT,
                            where="best_stage_name", found="no key", expected="best_stage_name: <a model_stages key>",
                            fix=FIX_RESULT)
    elif "model" in res:
        if "map" not in res:
            yield Violation("TR-01", "the legacy format has model but no map: the platform fails the task",
                            file=RESULT, where="map", found="no key", expected="map: <float in [0, 1]>",
                            fix=FIX_RESULT)
    else:
        yield Violation("TR-01", "result.yaml has neither model_stages (+ best_stage_name) nor the legacy model "
                        f"(+ map): {consequence}", file=RESULT, found=f"keys {short(sorted(map(key_text, res)))}",
                        expected=EXAMPLE, fix=FIX_RESULT)


# --------------------------------------------------------------------------------------------------------
# TR-02: stage schema
# --------------------------------------------------------------------------------------------------------


def _metric_problem(name: str, value: Any) -> tuple[str, str]:
    """(problem, expectation) of one metric value; ("", "") when it is fine."""
    f = as_float(value)
    if f is None:
        return f"{name} is {described(value)}, not a float", f"{name}: a float in [0, 1], e.g. 0.653"
    if math.isnan(f) or not (0.0 <= f <= 1.0):
        if 1.0 < f <= 100.0:  # a percentage: say the value it stands for
            return (f"{name} = {short(value)} is outside [0, 1] (looks like a percentage: divide by 100)",
                    f"{name}: {f / 100:.6g} (a float in [0, 1])")
        return f"{name} = {short(value)} is outside [0, 1]", f"{name}: a float in [0, 1]"
    return "", ""


def _stage_problems(key: Any, stage: Any, release: Release) -> list[tuple[str, str, str, str]]:
    """(where, message, found, expected) for one stage."""
    base = f"model_stages.{key_text(key)}"
    if not isinstance(stage, dict):
        metrics = ", ".join(f"{m}: <float in [0, 1]>" for m in _metric_names(release))
        return [(base, f"stage {key_text(key)} is {kind(stage)}, not a mapping", described(stage),
                 f"{{stage_name: {key_text(key)}, files: [<file>, ...], timestamp: <int seconds>"
                 + (f", {metrics}" if metrics else "") + "}")]
    out: list[tuple[str, str, str, str]] = []
    name = stage.get("stage_name")
    if "stage_name" not in stage:
        out.append((f"{base}.stage_name", "stage_name is missing", "no key", f"stage_name: {key_text(key)}"))
    elif not isinstance(name, (str, int, float)):
        out.append((f"{base}.stage_name", f"stage_name is {kind(name)}, not a string", described(name),
                    f"stage_name: {key_text(key)} (a string, the stage's key)"))
    files = stage.get("files")
    if "files" not in stage:
        out.append((f"{base}.files", "files is missing", "no key",
                    f"files: [<file names relative to /out/models/{key_text(key)}/>]"))
    elif not isinstance(files, list):
        out.append((f"{base}.files", f"files is {kind(files)}, not a list of file names", described(files),
                    "a list of file names, e.g. [best.pt, config.py]"))
    else:
        for i, f in enumerate(files):
            if not isinstance(f, (str, int, float)) or isinstance(f, bool):
                out.append((f"{base}.files[{i}]", f"files[{i}] is {kind(f)}, not a file name", described(f),
                            "a file name (a string)"))
    ts = stage.get("timestamp")
    if "timestamp" not in stage:
        out.append((f"{base}.timestamp", "timestamp is missing", "no key",
                    "timestamp: <int seconds since the epoch, int(time.time())>"))
    elif as_int(ts) is None:
        out.append((f"{base}.timestamp", f"timestamp is {kind(ts)}, not an integer (seconds)", described(ts),
                    "an integer: seconds since the epoch, int(time.time())"))
    for metric in _metric_names(release):
        if metric not in stage:
            if release < R21 and metric == "mAP":
                out.append((f"{base}.mAP", "mAP is missing; ymir 2.0 requires mAP in every stage", "no key",
                            "mAP: <float in [0, 1]>"))
            continue
        problem, expected = _metric_problem(metric, stage[metric])
        if problem:
            out.append((f"{base}.{metric}", problem, described(stage[metric]), expected))
    for count in COUNTS:
        if count in stage:
            n = as_int(stage[count])
            if n is None or n < 0:
                out.append((f"{base}.{count}", f"{count} is {described(stage[count])}, not an integer >= 0",
                            described(stage[count]), f"{count}: an integer >= 0"))
    return out


@check("TR-02", "stage schema: stage_name, files, timestamp; metrics floats in [0, 1]; counts ints >= 0",
       area=Area.TRAINING, level=Level.MUST, tasks=TRAINING)
def tr_02(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    if res is None:
        return
    bad: list[Violation] = []
    if _uses_stages(view, res):
        stages = _stages(view)
        for key, stage in (stages or {}).items():
            for where, msg, found, expected in _stage_problems(key, stage, view.release):
                bad.append(Violation("TR-02", f"{msg}: the platform rejects the model (160010/160011)", file=RESULT,
                                     where=where, found=found, expected=expected, fix=FIX_STAGE))
    elif "model" in res:
        model = res.get("model")
        if not isinstance(model, list):
            bad.append(Violation("TR-02", f"model is {kind(model)}, not a list of file names", file=RESULT,
                                 where="model", found=described(model), expected="model: [a.pt, b.py]",
                                 fix=FIX_STAGE))
        else:
            for i, f in enumerate(model):
                if not isinstance(f, (str, int, float)) or isinstance(f, bool):
                    bad.append(Violation("TR-02", f"model[{i}] is {kind(f)}, not a file name", file=RESULT,
                                         where=f"model[{i}]", found=described(f), expected="a file name",
                                         fix=FIX_STAGE))
        if "map" in res:
            problem, expected = _metric_problem("map", res.get("map"))
            if view.release < R20 and as_float(res.get("map")) is not None:
                problem = ""  # 1.1 stores float(map) as is, unchecked (measured with ymir-cmd 1.1.0)
            if problem:
                bad.append(Violation("TR-02", f"{problem}: the platform converts map to the stage's mAP and "
                                     "rejects the model", file=RESULT, where="map", found=described(res.get("map")),
                                     expected=expected, fix=FIX_STAGE))
    yield from cap(bad, 10)


# --------------------------------------------------------------------------------------------------------
# TR-03 .. TR-11
# --------------------------------------------------------------------------------------------------------


@check("TR-03", "best_stage_name is a key of model_stages", area=Area.TRAINING, levels={"2.0+": Level.MUST},
       tasks=TRAINING)
def tr_03(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    stages = _stages(view)
    if res is None or stages is None or "best_stage_name" not in res:
        return
    best = res["best_stage_name"]
    try:
        ok = best in stages
    except TypeError:
        ok = False
    if not ok:
        yield Violation("TR-03", f"best_stage_name {short(best)} is not a key of model_stages: the platform fails "
                        "the task (KeyError, 160010/160011)", file=RESULT, where="best_stage_name",
                        found=described(best), expected=f"one of {short(sorted(map(key_text, stages)))}",
                        fix="Set best_stage_name to exactly one of the keys of model_stages (the stage with the best "
                            "metric), and write that stage's files before writing result.yaml.")


def _file_entries(view: RunView) -> list[tuple[str, str, str]]:
    """(where, stage_key or '', file name) of every listed model file the platform will look for."""
    res = _result(view)
    if res is None:
        return []
    out: list[tuple[str, str, str]] = []
    if _uses_stages(view, res):
        for key, stage in (_stages(view) or {}).items():
            if not isinstance(key, str) or not isinstance(stage, dict) or not isinstance(stage.get("files"), list):
                continue
            for i, f in enumerate(stage["files"]):
                if isinstance(f, (str, int, float)) and not isinstance(f, bool):
                    out.append((f"model_stages.{key}.files[{i}]", key, str(f)))
    elif isinstance(res.get("model"), list):
        for i, f in enumerate(res["model"]):
            if isinstance(f, (str, int, float)) and not isinstance(f, bool):
                name = os.path.basename(str(f)) if view.release < R20 else str(f)
                out.append((f"model[{i}]", "", name))
    return out


def _locate(out_dir: Path, stage: str, name: str) -> tuple[str | None, str]:
    """The relative path under /out/models the platform would use, or None with the reason (looked up beneath
    /out, so that /out/models itself being a link is caught too)."""
    tried: list[str] = []
    for rel in ([f"{stage}/{name}"] if stage else []) + [name]:
        ok, problem = regular_file(out_dir, f"models/{rel}")
        if ok:
            return rel, ""
        tried.append(f"/out/models/{rel} {problem}")
    return None, "; ".join(tried)


@check("TR-04", "every listed model file exists as a regular file under /out/models, named relatively",
       area=Area.TRAINING, level=Level.MUST, tasks=TRAINING)
def tr_04(view: RunView) -> Iterator[Violation]:
    bad: list[Violation] = []
    for where, stage, name in _file_entries(view):
        if os.path.isabs(name):
            bad.append(Violation("TR-04", f"the file name {short(name)} is absolute: the platform's os.path.join "
                                 "drops its model directory for an absolute name and looks the path up on its own "
                                 "host: a missing file fails the task, an existing host file would be copied into "
                                 "the model package", file=RESULT, where=where,
                                 found=name, expected=f"a relative name such as {short(os.path.basename(name))}",
                                 fix=FIX_FILES))
            continue
        if ".." in Path(name).parts or not name.strip():
            bad.append(Violation("TR-04", f"the file name {short(name)} does not name a file inside /out/models",
                                 file=RESULT, where=where, found=short(name), expected="a plain relative file name",
                                 fix=FIX_FILES))
            continue
        odd = next((guard.name_problem(p) for p in name.split("/") if p not in ("", ".")
                    and guard.name_problem(p)), "")
        if odd:
            bad.append(Violation("TR-04", f"the file name {short(name)} {odd}: the suite does not copy a file of "
                                 "that name into the model package (no host path is built from it), so the next "
                                 "task would not get it", file=RESULT, where=where, found=short(name),
                                 expected="a plain relative file name (letters, digits, '_', '-', '.')",
                                 fix=FIX_FILES))
            continue
        rel, problem = _locate(view.outcome.out_dir, stage, name)
        if rel is None:
            bad.append(Violation("TR-04", f"the listed file {short(name)} is not a regular file where the platform "
                                 "looks for it, so packing fails and the task fails (160010/160011/169999)",
                                 file=RESULT, where=where, found=problem,
                                 expected=(f"/out/models/{stage}/{name} or " if stage else "") + f"/out/models/{name}",
                                 fix=FIX_FILES))
    yield from cap(bad, 10)


@check("TR-15", "every model file is one the platform can store: within the size caps, mostly data, readable",
       area=Area.TRAINING, level=Level.MUST, tasks=TRAINING)
def tr_15(view: RunView) -> Iterator[Violation]:
    """The stage files the suite will not copy into the model package, in the order it packs them: over the
    4 GiB per-file cap or the 8 GiB package cap (apparent sizes), sparse beyond reason, or unreadable. The
    platform's packer (tar.gz) reads every apparent byte into its model store, and every later task extracts them
    dense into /in/models: a 1 TiB file of holes is a disk bomb for the platform, not a model."""
    fix = ("Save real weights as ordinary files (torch.save / np.save write every byte) and keep every listed file "
           f"under {guard.human(guard.CAPS['model-file'])} and all stages together under "
           f"{guard.human(guard.CAPS['model-package'])}; never list a preallocated or truncate()d placeholder, "
           "and delete (or leave unlisted) checkpoints the next task does not need.")
    out_dir = view.outcome.out_dir
    budget = guard.CAPS["model-package"]
    bad: list[Violation] = []
    for where, stage, name in _file_entries(view):
        if stage and guard.plain_name(stage) is None:
            continue  # TR-07: the suite packs no stage of that key
        if guard.plain_relpath(name) is None:
            continue  # TR-04
        rel, _ = _locate(out_dir, stage, name)
        if rel is None:
            continue  # TR-04
        cpath = f"{MODELS}/{rel}"
        try:
            fd, st = guard.open_regular(out_dir, f"models/{rel}")
        except (FileNotFoundError, UnsafeOutput):
            continue  # TR-04 / TR-10: a link
        except OSError as exc:
            bad.append(Violation("TR-15", f"{cpath} cannot be read ({exc.strerror or exc}): neither the suite nor "
                                 "the platform's packer can copy it into the model package", file=cpath,
                                 where=where, found=f"open() failed: {exc.strerror or exc}",
                                 expected="a file readable by the platform", fix=fix))
            continue
        os.close(fd)
        file_cap = guard.CAPS["model-file"]
        limit, what = ((file_cap, "copies of one model file") if file_cap <= budget else
                       (budget, f"has left of the {guard.human(guard.CAPS['model-package'])} it copies of one "
                                "model package"))
        problem = guard.copy_refusal(st, limit, what)
        if problem:
            bad.append(Violation(
                "TR-15", f"{cpath} {problem}: the platform's packer would read all {guard.human(st.st_size)} "
                "into its model store and every later task would get them written out in full in /in/models; the "
                "suite does not copy it into the model package", file=cpath, where=where,
                found=f"{st.st_size} bytes apparent, {guard.allocated(st)} bytes allocated",
                expected=(f"at most {guard.human(limit)} per file, mostly data (at least 1/{guard.SPARSE_RATIO} "
                          "allocated)"), fix=fix))
            continue
        budget -= st.st_size
    yield from cap(bad, 10)


@check("TR-05", "attachments is {section: [file names]} and every attachment exists", area=Area.TRAINING,
       levels={"2.0+": Level.MUST}, tasks=TRAINING)
def tr_05(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    if res is None or res.get("attachments") is None:
        return
    att = res["attachments"]
    fix = ("Write attachments as a mapping of section name to a list of file names, and save each file at "
           "/out/models/attachments/<section>/<name>, e.g. attachments: {deploy: [model.onnx]} with the file "
           "/out/models/attachments/deploy/model.onnx.")
    if not isinstance(att, dict):
        yield Violation("TR-05", f"attachments is {kind(att)}, not a mapping: the platform rejects the model",
                        file=RESULT, where="attachments", found=described(att), expected="{section: [names]}", fix=fix)
        return
    bad: list[Violation] = []
    for section, names in att.items():
        where = f"attachments.{key_text(section)}"
        if not isinstance(section, str) or not section or "/" in section or section in (".", ".."):
            bad.append(Violation("TR-05", f"attachment section {short(section)} is not a plain name", file=RESULT,
                                 where=where, found=described(section), expected="a directory name", fix=fix))
            continue
        if not isinstance(names, list):
            bad.append(Violation("TR-05", f"{where} is {kind(names)}, not a list of file names", file=RESULT,
                                 where=where, found=described(names), expected="[name, ...]", fix=fix))
            continue
        for i, n in enumerate(names):
            if not isinstance(n, str) or not n or os.path.isabs(n) or ".." in Path(n).parts:
                bad.append(Violation("TR-05", f"{where}[{i}] is not a relative file name", file=RESULT,
                                     where=f"{where}[{i}]", found=described(n), expected="a file name", fix=fix))
                continue
            ok, problem = regular_file(view.outcome.out_dir, f"models/attachments/{section}/{n}")
            if not ok:
                bad.append(Violation("TR-05", f"attachment /out/models/attachments/{section}/{n} {problem}: "
                                     "packing fails and the task fails", file=RESULT, where=f"{where}[{i}]",
                                     found=problem, expected=f"/out/models/attachments/{section}/{n}", fix=fix))
    yield from cap(bad, 10)


@check("TR-06", "evaluate_config values are floats", area=Area.TRAINING, levels={"2.0+": Level.MUST},
       tasks=TRAINING)
def tr_06(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    if res is None or res.get("evaluate_config") is None:
        return
    ec = res["evaluate_config"]
    fix = ("Write evaluate_config as a flat mapping of name to a single float, e.g. {conf_thr: 0.005, iou_thr: 0.5}; "
           "no ranges such as '0.5:0.95:0.05', no lists, no nested mappings.")
    if not isinstance(ec, dict):
        yield Violation("TR-06", f"evaluate_config is {kind(ec)}, not a mapping: the platform rejects the model",
                        file=RESULT, where="evaluate_config", found=described(ec), expected="{name: float}", fix=fix)
        return
    bad = [Violation("TR-06", f"evaluate_config.{key_text(k)} is {described(v)}, not a float: the platform rejects "
                     "the model", file=RESULT, where=f"evaluate_config.{key_text(k)}", found=described(v),
                     expected="a float", fix=fix)
           for k, v in ec.items() if as_float(v) is None or not isinstance(k, str)]
    yield from cap(bad)


@check("TR-07", "stage keys contain no '@' or '/' and are at most 100 characters", area=Area.TRAINING,
       levels={"2.0+": Level.MUST}, tasks=TRAINING)
def tr_07(view: RunView) -> Iterator[Violation]:
    fix = ("Name stages with letters, digits and '_' only, at most 100 characters (e.g. epoch_20): the platform "
           "uses the key as a directory name, stores it in a 100-character column and later refers to the model "
           "as '<model_hash>@<stage_name>'.")
    bad: list[Violation] = []
    for key in _stages(view) or {}:
        problems: list[str] = []
        if not isinstance(key, str):
            problems.append(f"is {kind(key)}, not a string (YAML turned the key into a number: quote it)")
        else:
            if "@" in key:
                problems.append("contains '@' (the model reference <hash>@<stage> would not split into 2 parts)")
            if "/" in key or key in (".", ".."):
                problems.append("is not one plain name (it contains '/' or is '.'/'..'): the platform uses the key "
                                "as a directory name under its model directory, so an absolute key or one with "
                                "'..' makes it create and read files elsewhere on its own host")
            elif guard.plain_name(key) is None and key.strip():
                problems.append(f"{guard.name_problem(key)}: the suite refuses it as a directory name, and the "
                                "platform's packer would fail on it or create a directory no shell shows plainly")
            if len(key) > 100:
                problems.append(f"is {len(key)} characters long (the database column holds 100)")
            if not key.strip():
                problems.append("is empty")
        if problems:
            bad.append(Violation("TR-07", f"stage key {short(key)} " + "; ".join(problems), file=RESULT,
                                 where=f"model_stages.{key_text(key)[:60]}", found=short(key),
                                 expected="a short name without '@' or '/'", fix=fix))
    yield from cap(bad)


@check("TR-08", "stage names are identifiers and each key equals its stage_name", area=Area.TRAINING,
       levels={"2.0+": Level.SHOULD}, tasks=TRAINING)
def tr_08(view: RunView) -> Iterator[Violation]:
    fix = ("Use Python identifiers as stage names (letters, digits, '_', not starting with a digit; e.g. epoch_10 "
           "rather than epoch-10 or 10) and write the same string as the key and as stage_name: the platform uses "
           "the key for directories and the stage_name for display. ymir_exc.result_writer.write_model_stage does "
           "this.")
    bad: list[Violation] = []
    for key, stage in (_stages(view) or {}).items():
        if not isinstance(key, str):
            continue  # TR-07
        if not _IDENT.match(key):
            bad.append(Violation("TR-08", f"stage key {short(key)} is not an identifier", file=RESULT,
                                 where=f"model_stages.{key[:60]}", found=short(key), expected="e.g. epoch_10", fix=fix))
        name = stage.get("stage_name") if isinstance(stage, dict) else None
        if isinstance(name, (str, int, float)) and str(name) != key:  # a missing/odd stage_name is TR-02's
            bad.append(Violation("TR-08", f"stage key {short(key)} differs from its stage_name {short(stage['stage_name'])}",
                                 file=RESULT, where=f"model_stages.{key[:60]}.stage_name",
                                 found=short(stage["stage_name"]), expected=short(key), fix=fix))
    yield from cap(bad)


@check("TR-09", "at most 11 model stages", area=Area.TRAINING, levels={"2.0+": Level.SHOULD}, tasks=TRAINING)
def tr_09(view: RunView) -> Iterator[Violation]:
    stages = _stages(view)
    if stages is not None and len(stages) > MAX_STAGES:
        yield Violation("TR-09", f"result.yaml lists {len(stages)} stages; every stage is packed into the model and "
                        "shown in the UI", file=RESULT, where="model_stages", found=f"{len(stages)} stages",
                        expected=f"<= {MAX_STAGES} (the 10 latest + the best)",
                        fix="Keep at most 11 stages: when adding a stage, drop the oldest non-best stage from "
                            "model_stages and delete its directory (the SDK's write_model_stage does this).")


@check("TR-10", "each stage lists files, and no listed file is a symlink", area=Area.TRAINING, level=Level.SHOULD,
       tasks=TRAINING)
def tr_10(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    if res is None:
        return
    bad: list[Violation] = []
    fix_empty = ("List in files everything inference needs: the weights plus configs (e.g. [best.pt, "
                 "model_config.py]); mining and infer tasks get only these files in /in/models/<stage>/.")
    if _uses_stages(view, res):
        for key, stage in (_stages(view) or {}).items():
            if isinstance(stage, dict) and isinstance(stage.get("files"), list) and not stage["files"]:
                bad.append(Violation("TR-10", f"stage {key_text(key)} lists no files: a model without weights",
                                     file=RESULT, where=f"model_stages.{key_text(key)}.files", found="[]",
                                     expected="the weights and configs", fix=fix_empty))
    elif isinstance(res.get("model"), list) and not res["model"]:
        bad.append(Violation("TR-10", "model lists no files: a model without weights", file=RESULT, where="model",
                             found="[]", expected="the weights and configs", fix=fix_empty))
    out_dir = view.outcome.out_dir
    for where, stage, name in _file_entries(view):
        if os.path.isabs(name):
            continue
        for rel in ([f"{stage}/{name}"] if stage else []) + [name]:
            if guard.plain_relpath(rel) is None:
                break  # TR-04 / TR-07
            if is_symlink(out_dir, f"models/{rel}"):
                bad.append(Violation("TR-10", f"/out/models/{rel} is a symlink: the model package stores the link, "
                                     "not the file, so mining/infer get a dangling link", file=f"/out/models/{rel}",
                                     where=where, found=f"symlink to {short(_readlink(out_dir / 'models' / rel))}",
                                     expected="a regular file",
                                     fix="Copy (shutil.copy) the file into /out/models/<stage>/ instead of linking it."))
                break
            try:
                if guard.lstat_beneath(out_dir, f"models/{rel}") is not None:
                    break
            except UnsafeOutput:
                break
    yield from cap(bad)


def _readlink(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return "?"


@check("TR-11", "best_stage_name names the stage with the best main metric", area=Area.TRAINING,
       levels={"2.0+": Level.SHOULD}, tasks=TRAINING)
def tr_11(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    stages = _stages(view)
    if res is None or stages is None:
        return
    best = res.get("best_stage_name")
    if not isinstance(best, str) or best not in stages:
        return  # TR-01 / TR-03
    metric = "mAP" if view.release < R21 else MAIN_METRIC.get(view.outcome.object_type, "mAP")
    values: dict[str, float] = {}
    for key, stage in stages.items():
        if isinstance(key, str) and isinstance(stage, dict) and metric in stage:
            f = as_float(stage[metric])
            if f is not None and math.isfinite(f):
                values[key] = f
    if not values:
        return
    fix = (f"Set best_stage_name to the stage with the highest {metric} (the model's headline metric in the UI), "
           f"and write {metric} in every stage.")
    if best not in values:
        yield Violation("TR-11", f"the best stage {short(best)} has no {metric}, the main metric for object type "
                        f"{int(view.outcome.object_type)}: the model's headline metric shows 0", file=RESULT,
                        where=f"model_stages.{best}.{metric}", found="no key", expected=f"{metric}: <float>", fix=fix)
        return
    top = max(values, key=lambda k: values[k])
    if values[top] > values[best] + 1e-9:
        yield Violation("TR-11", f"best_stage_name is {short(best)} ({metric} {values[best]:g}) but stage {short(top)} has a "
                        f"higher {metric} ({values[top]:g})", file=RESULT, where="best_stage_name", found=short(best),
                        expected=short(top), fix=fix)


# --------------------------------------------------------------------------------------------------------
# TR-12: object_type in result.yaml (2.1-2.3)
# --------------------------------------------------------------------------------------------------------


@check("TR-12", "result.yaml object_type matches the task's object type (read by ymir 2.1-2.3)",
       area=Area.TRAINING, levels={"2.1-2.3": Level.MUST}, tasks=TRAINING,
       object_types=[ObjectType.DETECTION, ObjectType.SEMANTIC_SEGMENTATION, ObjectType.INSTANCE_SEGMENTATION])
def tr_12(view: RunView) -> Iterator[Violation]:
    res = _result(view)
    if res is None:
        return
    want = int(view.outcome.object_type)
    raw = res.get("object_type", 2)
    got = as_int(raw) if not isinstance(raw, bool) else None
    if got == want:
        return
    what = "missing (the platform defaults to 2, detection)" if "object_type" not in res else f"{described(raw)}"
    yield Violation("TR-12", f"result.yaml object_type is {what} but the model is of object type {want}: ymir "
                    "2.1-2.3 take the model's object type from result.yaml, so the model is registered with the wrong "
                    "type and its infer results are parsed as detection JSON (160010)", file=RESULT,
                    where="object_type", found=short(raw) if "object_type" in res else "no key",
                    expected=f"object_type: {want}",
                    fix=f"Write object_type: {want} at the top level of /out/models/result.yaml (2 detection, 3 "
                        "semantic segmentation, 4 instance segmentation); take it from your own "
                        "/img-man/manifest.yaml object_type (ymir 2.1-2.3 put no object_type in /in/config.yaml: "
                        "that key exists only from 2.4). ymir 2.4+ ignore the key, so writing it is always safe.")


# --------------------------------------------------------------------------------------------------------
# TR-14: tensorboard
# --------------------------------------------------------------------------------------------------------

MAX_EVENT_FILES = 5
MAX_EVENTS = 10000
FIX_TB = (
    "Write TensorBoard event files to /out/tensorboard (env.yaml output.tensorboard_dir), e.g. with "
    "torch.utils.tensorboard.SummaryWriter(log_dir='/out/tensorboard'), tensorboardX, or without torch the "
    "standard-library writer `python -m ymir_conformance init` puts in app/tfevents.py, logging at least the "
    "training loss and the evaluation metric per epoch, and close() the writer before exiting. The platform's "
    "TensorBoard view shows nothing otherwise."
)


def _event_files(root: Path, rel: str) -> list[str]:
    """Event files under ``root/rel`` (relative to ``root``), found without following any link."""
    return sorted(path for path, st in guard.walk(root, rel)
                  if "tfevents" in path.rsplit("/", 1)[-1] and stat.S_ISREG(st.st_mode))


def _count_events(root: Path, rel: str) -> tuple[int, bool, str]:
    """(events read, any summary value seen, error) from one event file, read through the guarded door (capped)
    and parsed by the suite's own TFRecord/Event reader (tfevents.py: no tensorboard needed)."""
    try:
        data = guard.read_bytes(root, rel, guard.CAPS["tensorboard-file"])
    except UnsafeOutput as exc:  # a link, a FIFO, over the cap: named as the door names it
        return 0, False, exc.problem
    except OSError as exc:
        return 0, False, f"cannot be opened: {exc}"
    try:
        found = tfevents.read_events(data, MAX_EVENTS)
    except tfevents.EventFileError as exc:
        return 0, False, f"is not a readable event file: {exc}"
    return len(found.events), found.summaries, ""


@check("TR-14", "/out/tensorboard holds readable TensorBoard event files", area=Area.TRAINING, level=Level.SHOULD,
       tasks=TRAINING)
def tr_14(view: RunView) -> Iterator[Violation]:
    where = view.tensorboard_location()
    if isinstance(where, str):
        yield Violation("TR-14", f"/out/tensorboard {where} after training", file="/out/tensorboard",
                        found=where, expected="the folder the platform provides, with event files", fix=FIX_TB)
        return
    root, base = where
    files = _event_files(root, base)
    if not files:
        yield Violation("TR-14", "/out/tensorboard holds no TensorBoard event file (events.out.tfevents.*)",
                        file="/out/tensorboard", found="no event file", expected="events.out.tfevents.* files",
                        fix=FIX_TB)
        return
    any_summary = False
    bad: list[Violation] = []
    for rel in files[:MAX_EVENT_FILES]:
        cpath = "/out/tensorboard/" + rel.removeprefix(base).lstrip("/")
        n, summaries, error = _count_events(root, rel)
        any_summary = any_summary or summaries
        if error or n == 0:
            bad.append(Violation("TR-14", f"{cpath} {error or 'holds no readable event'}", file=cpath,
                                 found=error or "0 events", expected="a TensorBoard event file", fix=FIX_TB))
    yield from cap(bad)
    if not bad and not any_summary:
        yield Violation("TR-14", "the TensorBoard event files hold no logged values (only file headers)",
                        file="/out/tensorboard", found=f"{len(files)} file(s) without summaries",
                        expected="scalars such as the loss and the metric", fix=FIX_TB)
