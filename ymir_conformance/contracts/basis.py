"""Why each rule exists: its *basis*, one line per rule id (issue 18).

* ``platform``: the platform's own code rejects the output, fails the task, or loses data. Proven by the
  differential tests (``tests/differential``: ymir-cmd 2.3.0 and 1.1.0 from PyPI judge the same ``/out``) where
  that code is published, by the cited source for 2.4-2.5.
* ``integrity``: the platform accepts the run, but the image does not do its job: it ignores its inputs, its
  model or its class order, or its outputs do not mean what they say.
* ``operations``: the platform does not enforce it, but a shared GPU host needs it: resource limits, time
  budgets, log volume, not touching what other tasks own.

Levels (MUST/SHOULD) stay per release on each check; the basis says why the rule is there. A release's
``platform_accepts`` answer counts only MUST findings of basis ``platform``; the conformance verdict counts every
MUST (and, with ``--ymir-strict``, every SHOULD).

Adding a rule: add its line here (``tests/unit/test_basis.py`` fails for a rule without one). A rule missing
from the table is counted as ``platform`` (the conservative answer: it can only make ``platform_accepts`` false).
"""
from __future__ import annotations

import enum


class Basis(enum.StrEnum):
    PLATFORM = "platform"
    INTEGRITY = "integrity"
    OPERATIONS = "operations"


P, I, O = Basis.PLATFORM, Basis.INTEGRITY, Basis.OPERATIONS

BASIS_WORDS = {
    Basis.PLATFORM: "the platform's own code rejects the output, fails the task or loses data",
    Basis.INTEGRITY: "the platform accepts it, but the image does not do its job",
    Basis.OPERATIONS: "the platform does not enforce it, but a shared GPU host needs it",
}

# rule id -> (basis, why: what happens on the platform or on the host when the rule is broken)
CATALOGUE: dict[str, tuple[Basis, str]] = {
    # -- registration (image.py) --------------------------------------------------------------------------
    "IM-01": (P, "registration parses the output of `docker run IMG cat /img-man/<file>` as YAML: anything else "
                 "and the template is ignored or the image cannot be registered"),
    "IM-02": (P, "without a template that parses as a mapping the platform offers no task for the image"),
    "IM-03": (P, "a template that is not a YAML mapping is dropped at registration (invoker_cmd_inspect_image)"),
    "IM-04": (P, "the web form edits only flat `key: scalar` templates; nested values come back as strings"),
    "V14": (P, "manifest.yaml must be a mapping with a valid object_type, else 2.1+ ignores it or refuses the "
               "image"),
    "LC-02": (P, "the platform runs the image with no command: without a default CMD/ENTRYPOINT nothing starts "
                 "and the task fails"),
    # -- lifecycle ---------------------------------------------------------------------------------------------
    "V1": (P, "a container that exits non-zero or never exits fails the task (or leaves it RUNNING forever)"),
    "LC-03": (P, "/in is mounted read-only from 2.0 on: a write there raises and the task fails"),
    "LC-04": (I, "enumerating /in/assets instead of reading the index uses images of other tasks: the platform "
                 "cannot tell, the results are not about the task's data"),
    "LC-05": (O, "the asset cache is mounted read-write and shared by every task of the user: a change there "
                 "corrupts other tasks' data, and the platform does not prevent it"),
    "LC-07": (P, "the platform runs CPU tasks with gpu_id '': an image that cannot cope fails the task"),
    "LC-09": (P, "the platform runs the container as the controller's uid:gid (`--user`) unless run_as_root: an "
                 "image that needs root fails the task in those deployments"),
    "LC-10": (O, "the platform does not cut the network, but offline and shared hosts do: an image that "
                 "downloads at start fails there"),
    "LC-11": (O, "the platform sets no pids limit: a fork bomb takes down other users' tasks on the host"),
    "LC-12": (O, "the platform sets no memory limit: a memory hog gets other users' tasks OOM-killed"),
    "LC-13": (O, "the platform keeps every byte of container output: a log flood fills the host's disk"),
    "LC-14": (O, "the platform reads the log's tail, following links, into the task message: a link leaks a "
                 "host file there, a FIFO blocks the reader"),
    "LC-15": (O, "the platform sets no disk quota on /out: a disk filler takes the host's disk from every task"),
    "LC-16": (O, "the platform sets no CPU limit: a run that needs every core starves the other tasks on the host"),
    "MON-08": (P, "only the last 5 log lines become the task's error message: a reason printed earlier is lost"),
    "BUD-01": (O, "no deadline on the platform: a task that never ends holds a shared GPU forever; the suite stops "
                  "it at 1.5x the budget"),
    "BUD-04": (O, "no deadline on the platform: a run slower than its budget holds a shared GPU longer (a SHOULD: "
                  "how long a run takes depends on the host's load)"),
    "BUD-02": (O, "without an early progress update nobody can tell a slow start from a hang on a shared host"),
    "BUD-03": (O, "without regular progress updates a stalled task cannot be told from a working one"),
    # -- negative inputs (plugin.judge_negative) ------------------------------------------------------------
    "IN-07": (P, "the platform sends empty validation splits and unreadable images: an image must cope or fail "
                 "cleanly (state 4, a 3000xx code), not hang or succeed with garbage"),
    "IN-10": (P, "the web form sends template values as strings and drops empty keys: an image must cope or "
                 "fail cleanly"),
    # -- monitor -----------------------------------------------------------------------------------------------
    "MON-01": (P, "percent_log_util cannot parse the record: the monitor shows nothing or the task fails"),
    "MON-02": (P, "the platform reads only line 1: appended records are never shown, progress stays at the "
                  "first one"),
    "MON-03": (P, "a half-written monitor.txt read by the 20 s poll does not parse: that update is lost"),
    "MON-04": (P, "the UI estimates the time left from the percent: backwards or unfinished progress misleads it"),
    "MON-05": (P, "the monitor orders updates by timestamp: a timestamp that does not increase hides the update"),
    "MON-06": (P, "the platform writes DONE itself after post-processing; an executor's DONE leaves a subtask "
                  "RUNNING"),
    "MON-07": (P, "state 4 with its code is how the platform learns why a task failed; state 4 on success, or "
                  "none on failure, misreports the task"),
    # -- training ----------------------------------------------------------------------------------------------
    "TR-01": (P, "no readable result.yaml: the platform fails the task (160011 / 160010)"),
    "TR-02": (P, "ModelStageStorage refuses the stage (missing keys, metrics outside [0, 1]): the task fails"),
    "TR-03": (P, "best_stage_name not among model_stages: ModelStorage refuses the model"),
    "TR-04": (P, "pack_and_copy_models cannot find (or copies a host file through) a listed model file"),
    "TR-05": (P, "attachments that are not {section: [files]} or do not exist fail the packing"),
    "TR-06": (P, "evaluate_config must be Dict[str, float]: ModelStorage refuses other values"),
    "TR-07": (P, "stage keys with '@' or '/' break the platform's model@stage references and paths"),
    "TR-08": (P, "stage names that are not identifiers or differ from their key are shown and stored "
                 "inconsistently"),
    "TR-09": (O, "the platform keeps every stage it is given: more than the SDK's 11 fill the model store"),
    "TR-10": (P, "a stage without files, or a file that is a symlink, packs an unusable or foreign model"),
    "TR-11": (I, "the platform believes best_stage_name: naming a worse stage hands the user the worse model"),
    "TR-12": (P, "2.1-2.3 read the model's object type from result.yaml: without it a segmentation model is "
                 "taken for detection and its infer results are rejected"),
    "TR-15": (O, "pack_and_copy_models copies every listed file whole into the model store: a huge or hollow (sparse) "
              "stage file fills the host's disk (the suite does not copy it)"),
    "TR-14": (P, "the platform shows the training curves from /out/tensorboard: without event files it shows "
                 "nothing"),
    # -- infer -------------------------------------------------------------------------------------------------
    "INF-01": (P, "no 'detection' object: the platform's infer reader fails the task"),
    "INF-02": (P, "the platform maps detection keys to assets by basename: other keys are dropped"),
    "INF-03": (P, "a detection value that is not {boxes: [...]} crashes the infer reader"),
    "INF-04": (P, "a box the reader cannot parse (float or missing coordinates, no class_name) crashes it; a "
                  "box without score is dropped (2.1+)"),
    "INF-05": (P, "boxes whose class_name is not in class_names are silently dropped"),
    "INF-06": (I, "the platform stores scores and boxes as given: scores outside [0, 1] or boxes outside the "
                  "image mean the predictions are wrong"),
    "INF-07": (P, "ymir <= 2.0 keeps the 50 best boxes per image and drops the rest"),
    "INF-08": (P, "a candidate without a key gets no prediction; a key that is no candidate is dropped"),
    "INF-10": (P, "a COCO result without images, categories and annotations lists fails the infer reader"),
    "INF-11": (P, "images[].file_name must be the candidate's basename, else its annotations are dropped"),
    "INF-12": (P, "annotations without image_id, category_id, bbox, area or a decodable segmentation crash "
                  "the COCO reader or are dropped"),
    "INF-13": (P, "categories not named as class_names, or duplicate annotations, are dropped"),
    "INF-14": (P, "the platform reads an instance's confidence from 'confidence': a 'score' is lost"),
    "IN-03": (I, "the platform cannot tell a model that names its outputs in the wrong class order: every "
                 "box is well formed and wrongly labelled"),
    # -- mining ------------------------------------------------------------------------------------------------
    "MIN-01": (P, "no result.tsv: mining._get_topk_asset_ids fails the task (160011 'Cannot find result file')"),
    "MIN-02": (P, "the platform splits each line at the first TAB: a line without one names no candidate and is "
                  "selected as nothing"),
    "MIN-03": (P, "the platform keeps the first top-k lines in file order and never reads the score: lines not "
                  "sorted best first select the wrong images"),
    "MIN-04": (P, "lines that name no candidate, or repeat one, silently shrink the selection"),
    "MIN-05": (P, "the platform matches a line by its basename: another path form is kept, but not as written"),
    "MIN-07": (I, "the platform never reads the score column, so it keeps such lines; but a score that is not a "
                  "finite number cannot show that the lines are ranked by score (nan does not sort)"),
    # -- input coverage (audit.py) ---------------------------------------------------------------------------
    "IN-11": (I, "the platform accepts a training that never read its annotations: a model trained on nothing "
                 "the user labelled"),
    "IN-12": (I, "the platform accepts fewer results: candidates never opened get no prediction or score"),
    "IN-13": (I, "the platform accepts results that do not come from the model the user chose"),
}


# rule id -> the consequence in a few words, for verdict lines ('not conformant: IN-11 (<headline>)'); a rule
# without one is named by its title
HEADLINES: dict[str, str] = {
    "IN-03": "names its outputs in the wrong class order",
    "IN-11": "never opened its annotations: a model trained on nothing",
    "IN-12": "skipped candidate images",
    "IN-13": "never opened its model: results from other weights",
    "LC-04": "enumerated /in/assets: other tasks' images",
    "LC-05": "modified the shared asset cache",
    "LC-10": "needs the network",
    "LC-11": "hit the pids limit",
    "LC-12": "hit the memory limit",
    "LC-13": "floods the log",
    "LC-14": "replaced the executor log by a link or FIFO",
    "LC-15": "filled the disk budget",
    "LC-16": "was throttled at its CPU limit",
    "BUD-01": "never ended (stopped at 1.5x the time budget)",
    "BUD-04": "over the total time budget",
    "BUD-02": "first progress too late",
    "BUD-03": "progress updates too far apart",
    "TR-11": "best_stage_name is not the best stage",
    "INF-06": "scores or boxes out of range",
    "MIN-07": "scores that are not finite numbers",
    "V1": "the container did not exit 0",
    "TR-01": "no readable result.yaml",
    "TR-02": "a stage the platform refuses",
    "MIN-03": "result.tsv not sorted best first",
    "MON-04": "progress goes backwards or never reaches 1",
}


def headline(rule: str) -> str:
    """A few words for ``rule`` in a verdict line: :data:`HEADLINES`, else the rule's title."""
    if rule in HEADLINES:
        return HEADLINES[rule]
    from .base import REGISTRY

    chk = REGISTRY.get(rule)
    if chk is None:
        try:
            from ..image import IMAGE_CHECKS

            chk = IMAGE_CHECKS.get(rule)
        except Exception:  # noqa: BLE001 - a name is enough
            chk = None
    return chk.title if chk is not None else reason_of(rule).split(":")[0]


def basis_of(rule: str) -> Basis:
    """The basis of ``rule``; ``platform`` for a rule missing from :data:`CATALOGUE` (see the module doc)."""
    entry = CATALOGUE.get(rule)
    return entry[0] if entry else Basis.PLATFORM


def reason_of(rule: str) -> str:
    entry = CATALOGUE.get(rule)
    return entry[1] if entry else "no basis recorded in ymir_conformance/contracts/basis.py: counted as platform"


__all__ = ["BASIS_WORDS", "CATALOGUE", "HEADLINES", "Basis", "basis_of", "headline", "reason_of"]
