"""The YMIR platform as an oracle: run the platform's own code (PyPI ``ymir-cmd``, the ``mir`` package) on plain data.

Executed with a platform venv's python (``scripts/platform-venv``), never imported by the suite: it cannot import
``ymir_conformance`` (other dependencies). One JSON request on stdin, one JSON reply on stdout:
``{"op": ..., ...}`` -> ``{"ok": true, ...}`` or ``{"ok": false, "error": ..., "type": ...}``.

Ops (contract §8.1 names the functions):

* ``version``: the release of the installed ``mir``.
* ``build_training``: /in and /out as ``mir train`` leaves them before ``docker run`` (prepare_executant_env, the
  executor log symlink in tensorboard/, exporter.export_mirdatas_to_dir, training._generate_config,
  env_config.generate_training_env_config_file). 1.1.0: its data_exporter and commands/training.py helpers.
* ``build_mining_infer``: the same for ``mir mining`` / ``mir infer`` (candidate export, infer._prepare_assets,
  infer.prepare_config_file, env_config.generate_mining_infer_env_config_file).
* ``judge``: the platform's post-processing of an /out tree (percent_log_util, training._get_model_storage +
  models.pack_and_copy_models, infer._process_infer_detbox_result / _process_infer_seg_coco_result,
  mining._get_topk_asset_ids): accept/reject per part, with what was kept. 1.1.0 (no models/exporter/
  percent_log_util modules): training._process_model_storage (_find_models + utils.pack_and_copy_models), the infer
  rewrite infer._process_infer_results then mining._get_infer_annotations (the ``annotations`` key; what
  ``mir mining --add-annotations`` keeps), mining._get_topk_asset_ids; its mir package parses no monitor.txt.

Run as ``oracle.py`` (one request on stdin) or ``oracle.py --serve`` (one JSON request per line, one reply per
line, until stdin closes: the tests keep one such process per release instead of paying the imports per call).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from typing import Any, Dict, List

ASSET_TYPES = {"jpg": "AssetTypeImageJpeg", "png": "AssetTypeImagePng", "bmp": "AssetTypeImageBmp",
               "unknown": "AssetTypeUnknown"}
TVT = {"train": "TvtTypeTraining", "val": "TvtTypeValidation", "test": "TvtTypeTest"}


def _version() -> str:
    from mir import version
    return str(getattr(version, "YMIR_VERSION", None) or getattr(version, "__version__", ""))


def _legacy() -> bool:
    return _version().startswith("1.")


def _user_labels(names: List[str]) -> Any:
    from mir.tools import class_ids
    return class_ids.UserLabels(labels=[class_ids.SingleLabel(name=n) for n in names])


def _voc_xml(asset: Dict[str, Any]) -> str:
    """One image of the user's VOC dataset as uploaded: objects by name and inclusive corners, no <image_quality>,
    no <confidence> or <box_quality> (what a labelling tool writes)."""
    from xml.sax.saxutils import escape
    parts = [f"<annotation><folder>images</folder><filename>{asset['sha1']}.{asset['ext']}</filename><size>"
             f"<width>{asset['width']}</width><height>{asset['height']}</height><depth>{asset.get('channels', 3)}"
             "</depth></size><segmented>0</segmented>"]
    for obj in asset.get("objects", []):
        x, y, w, h = obj["box"]
        parts.append(f"<object><name>{escape(obj['class_name'])}</name><pose>Unspecified</pose><truncated>0"
                     f"</truncated><difficult>0</difficult><bndbox><xmin>{x}</xmin><ymin>{y}</ymin>"
                     f"<xmax>{x + w - 1}</xmax><ymax>{y + h - 1}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "".join(parts)


def _import_voc(req: Dict[str, Any], labels: Any, annotations: Any) -> None:
    """The ground truth of a detection dataset as ``mir import`` stores it (2.x imports detection from VOC only:
    annotations._annotation_parse_func): the platform's own VOC parser, on one XML per image (empty images too),
    which also sets image_cks[asset].image_quality (-1.0 for an XML without the element)."""
    from mir.tools import annotations as mir_annotations
    gt_dir = tempfile.mkdtemp(prefix="oracle-voc-")
    try:
        names = {}
        for asset in req["assets"]:
            with open(os.path.join(gt_dir, asset["sha1"] + ".xml"), "w") as f:
                f.write(_voc_xml(asset))
            names[f"{asset['sha1']}.{asset['ext']}"] = asset["sha1"]
        mir_annotations._import_annotations_voc_xml(
            file_name_to_asset_ids=names, mir_annotation=annotations, annotations_dir_path=gt_dir,
            class_type_manager=labels, unknown_types_strategy=mir_annotations.UnknownTypesStrategy.STOP,
            accu_new_class_names={}, image_annotations=annotations.ground_truth)
    finally:
        shutil.rmtree(gt_dir, ignore_errors=True)


def _metadatas_annotations(req: Dict[str, Any], labels: Any) -> Any:
    """MirMetadatas + MirAnnotations, in the request's asset order (protobuf maps keep insertion order). Detection
    ground truth goes through the platform's VOC import (:func:`_import_voc`); segmentation objects (polygons,
    masks) are stored as its COCO import stores them, which sets no image_cks."""
    from mir.protos import mir_command_pb2 as mirpb
    metadatas = mirpb.MirMetadatas()
    annotations = mirpb.MirAnnotations()
    gt = annotations.ground_truth
    segmentation = any(obj.get("polygon") or obj.get("mask") for a in req["assets"] for obj in a.get("objects", []))
    for asset in req["assets"]:
        attrs = metadatas.attributes[asset["sha1"]]
        attrs.asset_type = getattr(mirpb.AssetType, ASSET_TYPES[asset["ext"]])
        attrs.width = asset["width"]
        attrs.height = asset["height"]
        attrs.image_channels = asset.get("channels", 3)
        attrs.tvt_type = getattr(mirpb.TvtType, TVT[asset.get("tvt", "train")])
        attrs.timestamp.start = int(asset.get("timestamp", 0))
        if not segmentation:
            continue
        sia = gt.image_annotations[asset["sha1"]]
        for index, obj in enumerate(asset.get("objects", [])):
            oa = sia.boxes.add()
            oa.index = index
            oa.class_id = labels.id_and_main_name_for_name(obj["class_name"])[0]
            x, y, w, h = obj["box"]
            oa.box.x, oa.box.y, oa.box.w, oa.box.h = x, y, w, h
            oa.anno_quality = -1.0
            oa.score = -1.0
            if obj.get("polygon"):
                oa.type = mirpb.ObjectSubType.OST_SEG_POLYGON
                pts = obj["polygon"]
                for i in range(0, len(pts), 2):
                    p = oa.polygon.add()
                    p.x, p.y = int(pts[i]), int(pts[i + 1])
            elif obj.get("mask"):
                oa.type = mirpb.ObjectSubType.OST_SEG_MASK
                oa.mask = obj["mask"]
            oa.mask_area = int(obj.get("area", 0))
            oa.iscrowd = int(obj.get("iscrowd", 0))
    if not segmentation and any(a.get("objects") is not None for a in req["assets"]):
        _import_voc(req, labels, annotations)
    used = {oa.class_id for sia in gt.image_annotations.values() for oa in sia.boxes}
    gt.task_class_ids[:] = used  # as mir_storage_ops builds it: a set of the label ids present
    return metadatas, annotations


def _media(req: Dict[str, Any]) -> str:
    """The platform's media location: assets named by sha1 (no extension), in <xx>/ sub folders."""
    media = req["media_dir"]
    for asset in req["assets"]:
        dst = os.path.join(media, asset["sha1"][-2:], asset["sha1"])
        if not os.path.exists(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(asset["src"], dst)
    return media


def op_build_training(req: Dict[str, Any]) -> Dict[str, Any]:
    if _legacy():
        return _build_training_110(req)
    from mir.protos import mir_command_pb2 as mirpb
    from mir.tools import env_config, exporter
    from mir.tools.executant import prepare_executant_env
    from mir.commands import training

    work_dir = req["work_dir"]
    work_in, work_out = os.path.join(work_dir, "in"), os.path.join(work_dir, "out")
    cache = req.get("asset_cache_dir") or None
    if cache:
        os.makedirs(cache, exist_ok=True)
    tensorboard = req.get("tensorboard_dir") or None  # the controller passes <TENSORBOARD_ROOT>/<user>/<task>
    if tensorboard:
        os.makedirs(tensorboard, exist_ok=True)
    prepare_executant_env(work_dir_in=work_in, work_dir_out=work_out, asset_cache_dir=cache,
                          tensorboard_dir=tensorboard)
    # training.py: an empty executor log, linked into tensorboard/
    log_src = os.path.join(work_out, "ymir-executor-out.log")
    open(log_src, "w").close()
    os.symlink(log_src, os.path.join(work_out, "tensorboard", "executor.log"))

    labels = _user_labels(req["label_names"])
    metadatas, annotations = _metadatas_annotations(req, labels)
    executor_config = dict(req["executor_config"])
    class_names = executor_config["class_names"]
    type_ids, unknown = labels.id_for_names(class_names)
    assert not unknown, unknown
    mapping = {type_id: index for index, type_id in enumerate(type_ids)}
    anno_format, asset_format = exporter.parse_export_type(type_str=executor_config.get("export_format", ""))
    ec = mirpb.ExportConfig(asset_format=asset_format, asset_dir=os.path.join(work_in, "assets"),
                            asset_index_file=os.path.join(work_in, "idx-assets.tsv"), asset_index_prefix="/in/assets",
                            media_location=_media(req), need_sub_folder=True, anno_format=anno_format,
                            gt_dir=os.path.join(work_in, "annotations"),
                            gt_index_file=os.path.join(work_in, "idx-gt.tsv"), gt_index_prefix="/in/annotations",
                            pred_dir=os.path.join(work_in, "predictions"),
                            pred_index_file=os.path.join(work_in, "idx-pred.tsv"),
                            pred_index_prefix="/in/predictions", tvt_index_dir=work_in)
    exporter.export_mirdatas_to_dir(mir_metadatas=metadatas, ec=ec, mir_annotations=annotations,
                                    class_ids_mapping=mapping, cls_id_mgr=labels)
    training._generate_config(executor_config=executor_config, out_config_path=os.path.join(work_in, "config.yaml"),
                              task_id=req["task_id"],
                              pretrained_model_params=[os.path.join("/in/models", n) for n in req.get("pretrained", [])])
    env_config.generate_training_env_config_file(task_id=req["task_id"],
                                                 env_config_file_path=os.path.join(work_in, "env.yaml"))
    return {"ok": True}


def _build_training_110(req: Dict[str, Any]) -> Dict[str, Any]:
    """ymir 1.1.0: commands/training.py exports ARK per split through tools/data_exporter.py (the parts of
    ``data_exporter.export`` after it loads the mir repo), then _generate_config and the env file."""
    from mir.commands import training
    from mir.protos import mir_command_pb2 as mirpb
    from mir.tools import class_ids, data_exporter
    from mir.tools import utils as mir_utils

    work_dir = req["work_dir"]
    work_in, work_out = os.path.join(work_dir, "in"), os.path.join(work_dir, "out")
    annotations_dir, asset_dir = os.path.join(work_in, "annotations"), os.path.join(work_in, "assets")
    for d in (annotations_dir, work_out, os.path.join(work_out, "models"), asset_dir,
              os.path.join(work_out, "tensorboard")):
        os.makedirs(d, exist_ok=True)
    mir_root = os.path.join(req["media_dir"] + "-mir")
    os.makedirs(os.path.join(mir_root, ".mir"), exist_ok=True)
    class_ids.create_empty_if_not_exists(mir_root=mir_root)
    media = req["media_dir"]  # 1.1.0: <location>/<sha1>, flat
    os.makedirs(media, exist_ok=True)
    label_id = {n: i for i, n in enumerate(req["label_names"])}
    executor_config = dict(req["executor_config"])
    mapping = {label_id[n]: i for i, n in enumerate(executor_config["class_names"])}
    metadatas = mirpb.MirMetadatas()
    by_asset: Dict[str, List[Any]] = {}
    splits: Dict[str, set] = {"train": set(), "val": set()}
    for asset in req["assets"]:
        shutil.copyfile(asset["src"], os.path.join(media, asset["sha1"]))
        attrs = metadatas.attributes[asset["sha1"]]
        attrs.asset_type = getattr(mirpb.AssetType, ASSET_TYPES[asset["ext"]])
        attrs.width, attrs.height = asset["width"], asset["height"]
        attrs.image_channels = asset.get("channels", 3)
        annos = []
        for index, obj in enumerate(asset.get("objects", [])):
            cid = label_id[obj["class_name"]]
            if cid not in mapping:
                continue
            a = mirpb.Annotation(index=index, class_id=cid, score=-1.0)
            a.box.x, a.box.y, a.box.w, a.box.h = obj["box"]
            annos.append(a)
        by_asset[asset["sha1"]] = annos
        splits[asset.get("tvt", "train")].add(asset["sha1"])  # training.py keeps the ids of a split in a set
    for split, ids in splits.items():
        result = mir_utils.store_assets_to_dir(asset_ids=list(ids), out_root=asset_dir, sub_folder=".",
                                               asset_location=media, overwrite=False, create_prefix=True,
                                               need_suffix=True)
        data_exporter._export_detect_annotations_to_path(
            asset_ids=list(ids), format_type=data_exporter.ExportFormat.EXPORT_FORMAT_ARK, mir_metadatas=metadatas,
            annotations_dict=by_asset, class_type_mapping=mapping, dest_path=annotations_dir, mir_root=mir_root,
            assert_id_filename_map=result)
        data_exporter._generate_asset_index_file(
            asset_rel_paths=result.values(), index_assets_prefix="/in/assets",
            index_annotations_prefix="/in/annotations", index_file_path=os.path.join(work_in, f"{split}-index.tsv"),
            format_type=data_exporter.ExportFormat.EXPORT_FORMAT_ARK)
    training._generate_config(executor_config=executor_config, out_config_path=os.path.join(work_in, "config.yaml"),
                              task_id=req["task_id"],
                              pretrained_model_params=[os.path.join("/in/models", n) for n in req.get("pretrained", [])])
    mir_utils.generate_training_env_config_file(task_id=req["task_id"],
                                                env_config_file_path=os.path.join(work_in, "env.yaml"))
    return {"ok": True}


def _build_mining_infer_110(req: Dict[str, Any]) -> Dict[str, Any]:
    """ymir 1.1.0 ``mir mining``: mining._prepare_env and _prepare_assets (data_exporter.export, no annotations,
    host-path src index), then infer.CmdInfer.run_with_args up to docker run: infer._prepare_env,
    infer._prepare_assets, utils.prepare_model (the package made by utils.pack_and_copy_models, as training
    leaves it), infer.prepare_config_file, utils.generate_mining_infer_env_config_file. 1.1.0 mounts no /in
    folder: only assets, models, candidate-index.tsv, config.yaml and env.yaml (infer.run_docker_cmd), so the
    reply names ``view``, the tree a container sees under /in."""
    from mir.commands import infer, mining
    from mir.tools import data_exporter
    from mir.tools import utils as mir_utils

    work_dir = req["work_dir"]
    work_in, work_out = os.path.join(work_dir, "in"), os.path.join(work_dir, "out")
    work_assets = req.get("asset_cache_dir") or os.path.join(work_in, "assets")
    work_models = os.path.join(work_in, "models")
    src_index = os.path.join(work_in, "candidate-src-index.tsv")
    mining._prepare_env(export_root=work_dir, work_in_path=work_in, work_out_path=work_out,
                        work_asset_path=work_assets, work_model_path=work_models)
    media = req["media_dir"]  # 1.1.0: <location>/<sha1>, flat
    os.makedirs(media, exist_ok=True)
    for asset in req["assets"]:
        shutil.copyfile(asset["src"], os.path.join(media, asset["sha1"]))
    mir_root = req["media_dir"] + "-mir"
    os.makedirs(os.path.join(mir_root, ".mir"), exist_ok=True)
    data_exporter.export(mir_root=mir_root, assets_location=media, class_type_ids={},
                         asset_ids={a["sha1"] for a in req["assets"]}, asset_dir=work_assets, annotation_dir="",
                         need_ext=True, need_id_sub_folder=True, base_branch="", base_task_id="",
                         format_type=data_exporter.ExportFormat.EXPORT_FORMAT_NO_ANNOTATION,
                         index_file_path=src_index, index_assets_prefix=work_assets)
    # the model package, as 1.1.0 training packs it (training._process_model_storage)
    pkg_dir, location = os.path.join(work_dir, "trained-models"), os.path.join(work_dir, "model-location")
    os.makedirs(pkg_dir)
    os.makedirs(location)
    for name, src in req["model_files"].items():
        shutil.copyfile(src, os.path.join(pkg_dir, name))
    storage = mir_utils.ModelStorage(executor_config={"class_names": list(req["class_names"])},
                                     task_context={"executor": "oracle", "mAP": 0.5, "type": 1},
                                     models=list(req["model_files"]))
    model_hash = mir_utils.pack_and_copy_models(model_storage=storage, model_dir_path=pkg_dir, model_location=location)
    # infer.CmdInfer.run_with_args, up to run_docker_cmd
    infer._prepare_env(work_dir)
    work_index = os.path.join(work_in, "candidate-index.tsv")
    infer._prepare_assets(index_file=src_index, work_index_file=work_index, media_path=work_assets)
    model_storage = mir_utils.prepare_model(model_location=location, model_hash=model_hash,
                                            dst_model_path=work_models)
    config = {"executor_config": dict(req["executor_config"]), "task_context": {}}
    infer.prepare_config_file(config=config, dst_config_file=os.path.join(work_in, "config.yaml"),
                              class_names=model_storage.class_names, task_id=req["task_id"],
                              model_params_path=[os.path.join("/in/models", n) for n in model_storage.models],
                              run_infer=req["run_infer"], run_mining=req["run_mining"])
    mir_utils.generate_mining_infer_env_config_file(task_id=req["task_id"], run_mining=req["run_mining"],
                                                    run_infer=req["run_infer"],
                                                    env_config_file_path=os.path.join(work_in, "env.yaml"))
    # the container's /in: run_docker_cmd's bind mounts, nothing else
    view = os.path.join(work_dir, "view")
    os.makedirs(view)
    shutil.copytree(work_assets, os.path.join(view, "assets"), symlinks=True)
    shutil.copytree(work_models, os.path.join(view, "models"), symlinks=True)
    for name in ("candidate-index.tsv", "config.yaml", "env.yaml"):
        shutil.copy2(os.path.join(work_in, name), os.path.join(view, name))
    for d in (os.path.join(view, "assets"), os.path.join(view, "models")):  # copytree keeps modes; be explicit
        shutil.copystat(os.path.join(work_in, os.path.basename(d)) if d.endswith("models") else work_assets, d)
    return {"ok": True, "view": view}


def op_build_mining_infer(req: Dict[str, Any]) -> Dict[str, Any]:
    if _legacy():
        return _build_mining_infer_110(req)
    from mir.protos import mir_command_pb2 as mirpb
    from mir.tools import env_config, exporter
    from mir.tools.executant import prepare_executant_env
    from mir.commands import infer

    work_dir = req["work_dir"]
    work_in, work_out = os.path.join(work_dir, "in"), os.path.join(work_dir, "out")
    work_assets = req.get("asset_cache_dir") or os.path.join(work_in, "assets")  # mining.py: the cache when given
    src_index = os.path.join(work_in, "candidate-src-index.tsv")
    for d in (work_dir, work_in, work_out, work_assets):  # mining._prepare_env
        os.makedirs(d, exist_ok=True)
    labels = _user_labels(req["label_names"])
    metadatas, _ = _metadatas_annotations(req, labels)
    ec = mirpb.ExportConfig(asset_format=mirpb.AssetFormat.AF_RAW, asset_dir=work_assets, asset_index_file=src_index,
                            media_location=_media(req), need_sub_folder=True,
                            anno_format=mirpb.ExportFormat.EF_NO_ANNOTATIONS)
    exporter.export_mirdatas_to_dir(mir_metadatas=metadatas, ec=ec)
    # infer.run_with_args
    prepare_executant_env(work_dir_in=work_in, work_dir_out=work_out, asset_cache_dir=work_assets)
    infer._prepare_assets(index_file=src_index, work_index_file=os.path.join(work_in, "candidate-index.tsv"),
                          media_path=work_assets)
    config = {"executor_config": dict(req["executor_config"]), "task_context": {}}
    infer.prepare_config_file(config=config, dst_config_file=os.path.join(work_in, "config.yaml"),
                              class_names=req["class_names"], task_id=req["task_id"],
                              model_params_path=[os.path.join("/in/models", req["stage"], n) for n in req["model_files"]],
                              run_infer=req["run_infer"], run_mining=req["run_mining"])
    env_config.generate_mining_infer_env_config_file(task_id=req["task_id"], run_mining=req["run_mining"],
                                                     run_infer=req["run_infer"],
                                                     env_config_file_path=os.path.join(work_in, "env.yaml"))
    return {"ok": True}


def _error(exc: BaseException) -> Dict[str, Any]:
    code = getattr(exc, "error_code", None)
    return {"accepted": False, "error": f"{type(exc).__name__}: {exc}"[:500],
            "code": int(code) if code is not None else None}


NO_MONITOR_110 = ("ymir-cmd 1.1.0 parses no monitor.txt: its mir package only writes it (phase_logger); the reader "
                  "lived in the 1.1 backend's monitor service, not in the wheel (mir.tools.percent_log_util: 2.3.0)")


def _labels_110(mir_root: str, names: List[str]) -> Any:
    """1.1.0's label store (<mir_root>/.mir/labels.yaml), read by its ClassIdManager."""
    from mir.tools import class_ids
    os.makedirs(os.path.join(mir_root, ".mir"), exist_ok=True)
    storage = class_ids._LabelStorage(labels=[class_ids._SingleLabel(id=i, name=n) for i, n in enumerate(names)])
    with open(class_ids.ids_file_path(mir_root), "w") as f:
        import yaml
        yaml.safe_dump({"version": storage.version, "labels": [lb.dict() for lb in storage.labels]}, f)
    return class_ids.ClassIdManager(mir_root=mir_root)


def _judge_110(req: Dict[str, Any], work: str, out: str, reply: Dict[str, Any]) -> None:
    """ymir 1.1.0's post-processing (commands/training.py, infer.py, mining.py), part by part."""
    parts = req["parts"]
    if "monitor" in parts:
        reply["monitor"] = {"unavailable": True, "why": NO_MONITOR_110}
    if "training" in parts:
        from mir.commands import training
        try:
            location = os.path.join(work, "model-location")
            os.makedirs(location)
            found, _ = training._find_models(os.path.join(out, "models"))
            model_hash, model_map = training._process_model_storage(
                out_root=out, model_upload_location=location, executor_config=dict(req["executor_config"]),
                task_context={"executor": "oracle"})
            reply["training"] = {"accepted": True, "model_hash": model_hash, "map": model_map,
                                 "files": [os.path.basename(f) for f in found]}
            if not model_hash:  # _find_models: no result.yaml -> no model, and the task still succeeds
                reply["training"]["lost"] = "no result.yaml: the task succeeds with no model"
        except Exception as exc:  # noqa: BLE001 - command_run_in_out fails the task on any of these
            reply["training"] = _error(exc)
    selected = None
    if "mining" in parts:
        from mir.commands import mining
        try:
            ids = mining._get_topk_asset_ids(os.path.join(out, "result.tsv"), int(req["topk"]))
            selected = ids
            reply["mining"] = {"accepted": True, "selected": sorted(ids)}
        except Exception as exc:  # noqa: BLE001
            reply["mining"] = _error(exc)
    if "infer" in parts:
        from mir.commands import infer, mining
        mir_root = os.path.join(work, "mir-root")
        try:
            labels = _labels_110(mir_root, list(req["label_names"]))
            path = os.path.join(out, "infer-result.json")
            # infer.CmdInfer.run_with_args after the container (max_boxes: the task-config file's top level,
            # which the controller never sets: 50), then mining._process_results with add_annotations
            infer._process_infer_results(infer_result_file=path, max_boxes=50, mir_root=mir_root)
            ids = selected if selected is not None else set(req["candidates"])
            annos = mining._get_infer_annotations(file_path=path, asset_ids_set=ids, cls_id_mgr=labels)
            kept = {k: len(v.annotations) for k, v in annos.items()}
            reply["infer"] = {"accepted": True, "kept": kept, "objects": sum(kept.values())}
        except Exception as exc:  # noqa: BLE001
            reply["infer"] = _error(exc)


def op_judge(req: Dict[str, Any]) -> Dict[str, Any]:
    """Run the platform's post-processing on a copy of an /out tree; each part accepts or rejects."""
    out_src = req["out_dir"]
    work = tempfile.mkdtemp(prefix="ymir-oracle-")
    out = os.path.join(work, "out")
    shutil.copytree(out_src, out, symlinks=True)
    reply: Dict[str, Any] = {"ok": True}
    if _legacy():
        try:
            _judge_110(req, work, out, reply)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return reply
    parts = req["parts"]
    if "monitor" in parts:
        try:
            from mir.tools.percent_log_util import PercentLogHandler
        except ImportError:  # 2.0-2.2 wheels do not ship it
            reply["monitor"] = {"unavailable": True}
            parts = [p for p in parts if p != "monitor"]
    if "monitor" in parts:
        try:
            res = PercentLogHandler.parse_percent_log(os.path.join(out, "monitor.txt"))
            reply["monitor"] = {"accepted": True, "percent": float(res.percent), "state": int(res.state),
                                "state_code": int(res.state_code or 0)}
        except Exception as exc:  # noqa: BLE001 - the platform fails the task on any of these
            reply["monitor"] = _error(exc)
    if "training" in parts:
        from mir.commands import training
        from mir.tools import models
        try:
            storage = training._get_model_storage(model_root=os.path.join(out, "models"),
                                                  executor_config=dict(req["executor_config"]), task_context={})
            location = os.path.join(work, "model-location")
            os.makedirs(location)
            model_hash = models.pack_and_copy_models(model_storage=storage, model_dir_path=os.path.join(out, "models"),
                                                     model_location=location)
            reply["training"] = {"accepted": True, "best_stage": storage.best_stage_name,
                                 "stages": {k: list(v.files) for k, v in storage.stages.items()},
                                 "object_type": int(storage.object_type), "model_hash": model_hash}
        except Exception as exc:  # noqa: BLE001
            reply["training"] = _error(exc)
    if "infer" in parts:
        from mir.commands import infer
        from mir.protos import mir_command_pb2 as mirpb
        labels = _user_labels(req["label_names"])
        task_annotations = mirpb.SingleTaskAnnotations()
        det = int(req.get("object_type", 2)) == 2
        try:
            if det:
                infer._process_infer_detbox_result(task_annotations, out, labels)
            else:
                task_annotations.type = mirpb.ObjectType.OT_SEG
                task_annotations.is_instance_segmentation = int(req.get("object_type")) == 4
                infer._process_infer_seg_coco_result(task_annotations, out, labels)
            kept = {k: len(v.boxes) for k, v in task_annotations.image_annotations.items()}
            reply["infer"] = {"accepted": True, "kept": kept, "objects": sum(kept.values())}
        except Exception as exc:  # noqa: BLE001
            reply["infer"] = _error(exc)
    if "mining" in parts:
        from mir.commands import mining
        try:
            ids = mining._get_topk_asset_ids(os.path.join(out, "result.tsv"), int(req["topk"]))
            reply["mining"] = {"accepted": True, "selected": sorted(ids)}
        except Exception as exc:  # noqa: BLE001
            reply["mining"] = _error(exc)
    shutil.rmtree(work, ignore_errors=True)
    return reply


def _answer(req: Dict[str, Any]) -> Dict[str, Any]:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the platform logs and prints; only the reply goes to stdout
    cwd = os.getcwd()
    try:
        op = req["op"]
        if op == "version":
            reply: Dict[str, Any] = {"ok": True, "version": _version()}
        else:
            reply = globals()[f"op_{op}"](req)
    except Exception as exc:  # noqa: BLE001
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        sys.stdout = real_stdout
        os.chdir(cwd)
    return reply


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        for line in iter(sys.stdin.readline, ""):
            if line.strip():
                sys.stdout.write(json.dumps(_answer(json.loads(line))) + "\n")
                sys.stdout.flush()
        return
    json.dump(_answer(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
