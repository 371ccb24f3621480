"""The task matrix: driven by the templates an image declares, the profile, and the platform releases."""
from __future__ import annotations

from ymir_conformance.image import ImageInfo
from ymir_conformance.model import ObjectType, Task
from ymir_conformance.options import PROFILE_TASKS, Settings
from ymir_conformance.platform import RELEASES, Release
from ymir_conformance.session import families, plan


def info(object_types: list[ObjectType], tasks: tuple[Task, ...] = tuple(Task), fmt: str = "det-voc:raw") -> ImageInfo:
    templates = {(ot, t): ({"export_format": fmt} if t is Task.TRAINING else {}) for ot in object_types for t in tasks}
    return ImageInfo("img:1", "sha256:" + "a" * 64, ["bash"], [], {"object_type": 2}, object_types, templates)


def test_quick_profile_runs_the_template_format_and_four_shapes() -> None:
    specs = plan([info([ObjectType.DETECTION])], Settings())
    assert [s.id for s in specs] == ["det-voc", "infer-det-voc", "mining-det-voc", "mining+infer-det-voc"]
    assert all(s.judged_on == (Release(2, 5),) for s in specs)


def test_standard_profile_trains_on_every_detection_format_of_2_5_the_declared_one_first() -> None:
    s = Settings(profile="standard", tasks=PROFILE_TASKS["standard"])
    ids = [x.id for x in plan([info([ObjectType.DETECTION])], s)]
    assert [i for i in ids if not i.startswith(("infer", "mining", "retraining", "single"))] == \
        ["det-voc", "det-ark", "coco"]
    # downstream runs use the model of the format the training template declares (det-voc:raw)
    assert "retraining-det-voc" in ids and "infer-nonbest-det-voc" in ids and "single-image-infer-det-voc" in ids
    assert not [i for i in ids if i.startswith(("infer", "mining", "retraining", "single")) and "det-voc" not in i]


def test_all_releases_share_runs_per_input_family() -> None:
    fams = families(RELEASES)
    assert {str(k): [str(r) for r in v] for k, v in fams.items()} == {
        "1.1": ["1.1"], "2.0": ["2.0"], "2.3": ["2.1", "2.2", "2.3"], "2.5": ["2.4", "2.5"]}
    specs = plan([info([ObjectType.DETECTION])], Settings(tasks=("training",), releases=RELEASES))
    assert [s.id for s in specs] == ["det-ark@1.1", "det-voc@2.0", "det-voc@2.3", "det-voc@2.5"]


def test_segmentation_is_not_planned_before_2_1() -> None:
    specs = plan([info([ObjectType.SEMANTIC_SEGMENTATION], fmt="seg-coco:raw")],
                 Settings(tasks=("training",), releases=RELEASES))
    assert [s.id for s in specs] == ["seg-coco@2.3", "seg-coco@2.5"]
    assert specs[0].judged_on == (Release(2, 1), Release(2, 2), Release(2, 3))


def test_absent_templates_are_still_planned_and_skipped_with_a_reason_at_run_time() -> None:
    specs = plan([info([ObjectType.DETECTION], tasks=(Task.TRAINING,))], Settings())
    assert [s.kind for s in specs] == ["training", "infer", "mining", "mining+infer"]


def test_multi_type_images_prefix_ids_with_the_object_type() -> None:
    specs = plan([info([ObjectType.DETECTION, ObjectType.INSTANCE_SEGMENTATION])], Settings(tasks=("training",)))
    assert [s.id for s in specs] == ["det-det-voc", "instseg-seg-coco"]


def test_negative_inputs_expand_to_variants() -> None:
    specs = plan([info([ObjectType.DETECTION])], Settings(tasks=("negative",)))
    assert [s.kind for s in specs] == ["negative-config-strings", "negative-no-template-keys", "negative-empty-val",
                                       "negative-corrupt-image", "negative-absent-class"]


def test_each_format_runs_at_the_newest_release_that_offers_it() -> None:
    s = Settings(profile="standard", tasks=("training",), releases=(Release(2, 4), Release(2, 5)))
    by_id = {x.id: x for x in plan([info([ObjectType.DETECTION])], s)}
    assert by_id["det-ls-json"].release == Release(2, 4) and by_id["det-ls-json"].judged_on == (Release(2, 4),)
    assert by_id["coco"].judged_on == (Release(2, 5),)
    assert by_id["det-voc"].judged_on == (Release(2, 4), Release(2, 5))


def test_template_aliases_are_normalised() -> None:
    """contract §4: ark/voc/ls_json are det-ark/det-voc/det-ls-json; config.yaml keeps the template's spelling."""
    for value, fmt in (("voc:raw", "det-voc"), ("ark:raw", "det-ark"), ("VOC:raw", "det-voc"),
                       ("det-voc:raw", "det-voc")):
        [spec] = plan([info([ObjectType.DETECTION], fmt=value)], Settings(tasks=("training",)))
        assert (spec.export_format, spec.export_format_value) == (fmt, value), value
    specs = plan([info([ObjectType.DETECTION], fmt="ls_json:raw")],
                 Settings(tasks=("training",), releases=(Release(2, 4), Release(2, 5))))
    assert [(s.id, s.export_format_value, [str(r) for r in s.judged_on]) for s in specs] == [
        ("det-ls-json", "ls_json:raw", ["2.4"]), ("det-ark", "det-ark:raw", ["2.5"])]


def test_template_without_export_format_gets_the_platform_default() -> None:
    empty = ImageInfo("img:1", "sha256:" + "a" * 64, ["bash"], [], None, [ObjectType.DETECTION],
                      {(ObjectType.DETECTION, Task.TRAINING): {}})
    [spec] = plan([empty], Settings(tasks=("training",)))
    assert spec.export_format == "det-voc"  # 2.x read a missing export_format as voc:raw


def test_format_notes_tell_the_author() -> None:
    from ymir_conformance.session import format_notes

    assert format_notes(info([ObjectType.DETECTION], fmt="voc:raw"), RELEASES) == []
    [note] = format_notes(info([ObjectType.DETECTION], fmt="ls_json:raw"), (Release(2, 4), Release(2, 5)))
    assert "platform 2.5" in note and "no annotations" in note and "det-ark" in note
    [note] = format_notes(info([ObjectType.DETECTION], fmt="voc:lmdb"), (Release(2, 5),))
    assert "lmdb" in note and "det-ark" in note
    [note] = format_notes(info([ObjectType.DETECTION], fmt="voc"), (Release(2, 5),))
    assert "169999" in note
    seg = format_notes(info([ObjectType.SEMANTIC_SEGMENTATION], fmt="voc:raw"), (Release(2, 5),))
    assert len(seg) == 1 and "not a semantic_segmentation format" in seg[0] and "seg-coco" in seg[0]


def test_formats_the_template_does_not_declare_are_off_declared_on_2_0_plus() -> None:
    """An ark-only template: the other formats' trainings are judged at SHOULD on 2.0+ (a user may switch
    export_format in the form); 1.1 always exports ARK; --ymir-formats is the certifier's own declaration."""
    from ymir_conformance.session import off_declared_releases

    img = info([ObjectType.DETECTION], fmt="ark:raw")
    s = Settings(profile="standard", tasks=("training",), releases=RELEASES)
    got = {x.id: off_declared_releases(img, ObjectType.DETECTION, x.export_format, x.judged_on, s)
           for x in plan([img], s)}
    assert got["det-ark@2.5"] == () and got["det-ark@1.1"] == ()
    assert got["coco@2.5"] == (Release(2, 5),) and got["det-voc@2.0"] == (Release(2, 0),)
    assert off_declared_releases(img, ObjectType.DETECTION, "coco", (Release(2, 5),),
                                 Settings(formats=("coco",))) == ()
    # ls_json is not offered on 2.5: there nothing is declared, and the format the suite trains is judged in full
    ls = info([ObjectType.DETECTION], fmt="ls_json:raw")
    assert off_declared_releases(ls, ObjectType.DETECTION, "det-ark", (Release(2, 4), Release(2, 5)), s) == \
        (Release(2, 4),)


def test_format_notes_name_the_formats_judged_at_should() -> None:
    from ymir_conformance.session import format_notes

    img = info([ObjectType.DETECTION], fmt="ark:raw")
    assert format_notes(img, (Release(2, 5),), Settings()) == []  # quick: the declared format only
    [note] = format_notes(img, (Release(2, 5),), Settings(profile="standard", tasks=("training",)))
    assert "'ark:raw'" in note and "det-voc, coco" in note and "SHOULD" in note
