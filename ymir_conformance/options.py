"""Command-line and ini options (one ``ymir`` group), validated at parse time, resolved once into :class:`Settings`.

Precedence: command line > ini file > profile default. Every option has an ini twin sharing its help text.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from .errors import SettingsError
from .hyper import DatasetSize, HyperParam, parse_dataset_size, parse_sets
from .limits import DEFAULT_EXIT_GRACE_S, DEFAULT_LIMITS, Limits, parse_limits
from .platform import LATEST, RELEASES, Release, ReleaseRange

PROFILES = ("quick", "standard", "certify")
TASKS = ("training", "retraining", "infer", "infer-nonbest", "single-image-infer", "mining", "mining+infer",
         "negative")
NO_ROOT_UID = "12345:12345"  # a uid:gid with no passwd entry in any image (LC-09)


@dataclass(frozen=True)
class Budget:
    """Time budgets per task run, in seconds (contract §7 has no deadline: these are the certification policy)."""

    total_s: float
    first_progress_s: float
    heartbeat_s: float


PROFILE_BUDGETS = {
    "quick": Budget(total_s=300, first_progress_s=60, heartbeat_s=120),
    "standard": Budget(total_s=900, first_progress_s=120, heartbeat_s=300),
    "certify": Budget(total_s=3600, first_progress_s=180, heartbeat_s=600),
}
PROFILE_TASKS = {
    "quick": ("training", "infer", "mining", "mining+infer"),
    "standard": ("training", "retraining", "infer", "infer-nonbest", "single-image-infer", "mining", "mining+infer"),
    "certify": TASKS,
}


@dataclass(frozen=True)
class Settings:
    """Resolved once per session; stored in ``config.stash[SETTINGS_KEY]``."""

    images: tuple[str, ...] = ()
    profile: str = "quick"
    formats: tuple[str, ...] = ()  # empty: every format valid for the image's object types (quick: one)
    tasks: tuple[str, ...] = PROFILE_TASKS["quick"]
    gpu_ids: tuple[str, ...] = ()  # host GPU ids; empty = CPU mode (gpu_id: '')
    user: str = NO_ROOT_UID
    allow_network: bool = False
    budget: Budget = PROFILE_BUDGETS["quick"]
    seed: int = 0
    keep: bool = False
    workdir: Path | None = None
    releases: tuple[Release, ...] = (LATEST,)
    report_dir: Path | None = None
    strict: bool = False  # SHOULD violations fail too (compliance level "should")
    gate: tuple[Release, ...] = ()  # releases whose findings fail tests (empty: every judged release)
    diagnose: str = "auto"  # --ymir-diagnose: off | auto | all, retries of a failed run (diagnosis.py)
    limits: Limits = DEFAULT_LIMITS  # the suite's containment of task and inspection containers (limits.py)
    exit_grace_s: float = DEFAULT_EXIT_GRACE_S  # a done run (monitor 1.0 + result files) that does not exit: stopped
    transfer: str = "auto"  # --ymir-transfer: auto | bind | archive (transfer.py)
    engines: tuple[str, ...] = ()  # --ymir-engines: engine URLs (engines.py); empty: DOCKER_HOST / the default
    hyper_params: tuple[HyperParam, ...] = ()  # --ymir-set: the user's template edits (hyper.py)
    dataset_size: DatasetSize | None = None  # --ymir-dataset-size: overrides of the profile's dataset sizes
    jobs: int = 1  # --ymir-jobs: container runs at once (resolved: CPU cores in CPU mode, 1 in GPU mode)
    status_interval_s: float | None = 30.0  # --ymir-status-interval: live status lines on a non-TTY; None: off
    fuzz: int = 0  # --ymir-fuzz: candidate inputs hypothesis tries per image (0: no candidate search)
    fuzz_training: int = 0  # --ymir-fuzz-training: training inputs per image (0: no training search)
    fuzz_budget_s: float = 1200.0  # --ymir-fuzz-budget: after it no fuzz container starts
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gated(self) -> tuple[Release, ...]:
        """The releases whose MUST (and, with --ymir-strict, SHOULD) findings fail tests and the session."""
        return self.gate or self.releases

    @property
    def target_release(self) -> Release:
        """The release pass/fail is decided on: the newest selected one."""
        return max(self.releases)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# -- validators: each raises SettingsError naming the bad value and where it came from ----------------------

def parse_profile(value: str, where: str) -> str:
    if value not in PROFILES:
        raise SettingsError(f"{where}: profile {value!r} is not one of {', '.join(PROFILES)}")
    return value


def parse_list(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(p.strip() for item in items for p in str(item).split(",") if p.strip())


def parse_tasks(value: str | list[str] | None, where: str) -> tuple[str, ...]:
    tasks = parse_list(value)
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise SettingsError(f"{where}: unknown task(s) {', '.join(bad)}; choose from {', '.join(TASKS)}")
    return tasks


def parse_gpus(value: str | None, where: str) -> tuple[str, ...]:
    if value is None or value.strip().lower() in ("", "none", "cpu"):
        return ()
    ids = parse_list(value)
    bad = [i for i in ids if not i.isdigit()]
    if bad or len(set(ids)) != len(ids):
        raise SettingsError(f"{where}: {value!r} is not a comma-separated list of distinct host GPU ids like 0,1")
    return ids


def parse_user(value: str | None, where: str) -> str:
    v = (value or "auto").strip()
    if v == "auto":
        uid, gid = os.getuid(), os.getgid()
        return NO_ROOT_UID if uid == 0 else f"{uid}:{gid}"
    if v == "current":
        return f"{os.getuid()}:{os.getgid()}"
    if v == "root":
        return "0:0"
    parts = v.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise SettingsError(f"{where}: {value!r} is not auto, current, root, or a numeric uid:gid like 1000:1000")
    return v


def parse_seconds(value: str | None, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        s = float(value)
    except ValueError:
        raise SettingsError(f"{where}: {value!r} is not a number of seconds") from None
    if s <= 0:
        raise SettingsError(f"{where}: {value!r} must be a positive number of seconds")
    return s


DEFAULT_STATUS_INTERVAL_S = 30.0


def parse_status_interval(value: Any, where: str) -> float | None:
    """--ymir-status-interval: seconds between live status lines on a non-TTY (default 30), or off."""
    if value is None or str(value).strip() == "":
        return DEFAULT_STATUS_INTERVAL_S
    if str(value).strip().lower() in ("off", "0", "none", "no"):
        return None
    return parse_seconds(str(value).strip(), where)


def parse_int(value: str | None, where: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{where}: {value!r} is not an integer") from None


def parse_jobs(value: Any, where: str, gpu_ids: tuple[str, ...] = (), workers: int = 1) -> int:
    """--ymir-jobs: a positive integer; default the CPU cores (CPU mode; an xdist worker: its share of them) or 1
    (GPU mode: every run gets all the given GPUs, so two runs at once would share them)."""
    if value is None or str(value).strip() in ("", "auto"):
        return 1 if gpu_ids else max(1, (os.cpu_count() or 1) // max(1, workers))
    try:
        jobs = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{where}: {value!r} is not a positive integer (or auto)") from None
    if jobs < 1:
        raise SettingsError(f"{where}: {value!r} must be at least 1")
    if jobs > 1 and gpu_ids:
        raise SettingsError(f"{where}: {jobs} runs at once with --ymir-gpus={','.join(gpu_ids)} would put two runs "
                            "on one GPU (every run gets all the given GPUs); use 1, or pytest-xdist -n with "
                            "--ymir-gpus to give each worker its own GPUs")
    return jobs


def parse_releases(value: str | None, where: str) -> tuple[Release, ...]:
    v = (value or str(LATEST)).strip()
    try:
        if v == "all":
            return RELEASES
        out: list[Release] = []
        for part in parse_list(v):
            out.extend(ReleaseRange.parse(part).releases())
        return tuple(sorted(set(out)))
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def parse_gate(value: str | None, where: str, releases: tuple[Release, ...]) -> tuple[Release, ...]:
    """--ymir-gate: releases (as --ymir-platform spells them) that must all be judged in this session."""
    if value is None or not str(value).strip():
        return ()
    gate = parse_releases(str(value), where)
    outside = [r for r in gate if r not in releases]
    if outside:
        raise SettingsError(f"{where}: {', '.join(str(r) for r in outside)} not judged in this session (judged: "
                            f"{', '.join(str(r) for r in releases)}); add it to --ymir-platform")
    return gate


def parse_diagnose(value: Any, where: str) -> str:
    """--ymir-diagnose: off | auto | all (default auto; diagnosis.py)."""
    from .diagnosis import DEFAULT_MODE, MODES

    if value is None or str(value).strip() == "":
        return DEFAULT_MODE
    mode = str(value).strip().lower()
    if mode not in MODES:
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(MODES)} (off: never retry a failed run; "
                            "auto: retry once when its log shows a permission or gpu_id cause; all: every retry)")
    return mode


def parse_count(value: Any, where: str, what: str) -> int:
    """--ymir-fuzz / --ymir-fuzz-training: a number of inputs, 0 or more (default 0: no search)."""
    if value is None or str(value).strip() == "":
        return 0
    try:
        n = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{where}: {value!r} is not a whole number of {what} (0 turns the search off)") from None
    if n < 0 or n > 100_000:
        raise SettingsError(f"{where}: {value!r} must be between 0 and 100000 {what}")
    return n


DEFAULT_FUZZ_BUDGET_S = 1200.0


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


# -- registration ----------------------------------------------------------------------------------------

OPTIONS: list[tuple[str, str, dict[str, Any], str]] = [
    # (flag, ini name, argparse kwargs, help)
    ("--image", "ymir_images", {"action": "append", "metavar": "REPO:TAG"},
     "executor image to certify (repeatable: the suite is parametrized over images). Never pulled: the image "
     "must be in the local engine. With --image and no test paths, the shipped conformance suite is collected."),
    ("--ymir-profile", "ymir_profile", {"metavar": "NAME"},
     "quick | standard | certify: datasets, formats, tasks and time budgets. certify may skip nothing the "
     "image declares. Default: quick."),
    ("--ymir-formats", "ymir_formats", {"metavar": "LIST"},
     "comma-separated export formats to train on (e.g. det-voc,det-ark); default: quick = the template's "
     "export_format, standard/certify = every format valid for the image's object types."),
    ("--ymir-tasks", "ymir_tasks", {"metavar": "LIST"},
     f"comma-separated task shapes to run, from: {', '.join(TASKS)}. Default: by profile."),
    ("--ymir-gpus", "ymir_gpus", {"metavar": "IDS"},
     "host GPU ids to hand to the image (e.g. 0,1): a device request for those GPUs and gpu_id: '0,1', "
     "gpu_count: 2 in config.yaml. Default: none = CPU mode (gpu_id: '')."),
    ("--ymir-user", "ymir_user", {"metavar": "UID:GID"},
     "--user for task containers: auto (default: your uid:gid, or 12345:12345 with no passwd entry when you "
     "are root), current, root, or a numeric uid:gid."),
    ("--ymir-allow-network", "ymir_allow_network", {"action": "store_true", "default": None},
     "run task containers on the default bridge network instead of --network none."),
    ("--ymir-budget-total", "ymir_budget_total", {"metavar": "SECONDS"},
     "wall-time budget per task run (default by profile: quick 300, standard 900, certify 3600). Over it: BUD-04, "
     "a SHOULD. The container is stopped at 1.5x the budget: BUD-01, a MUST (a hang). Set it to your run's real length."),
    ("--ymir-budget-first-progress", "ymir_budget_first_progress", {"metavar": "SECONDS"},
     "budget for the first monitor.txt update after start (default by profile: 60 / 120 / 180). Over it: BUD-02, "
     "a SHOULD (the platform has no deadline; --ymir-strict fails it)."),
    ("--ymir-budget-heartbeat", "ymir_budget_heartbeat", {"metavar": "SECONDS"},
     "budget for the longest gap between monitor.txt updates (default by profile: 120 / 300 / 600). Over it: "
     "BUD-03, a SHOULD naming how many progress records the run wrote and how often."),
    ("--ymir-seed", "ymir_seed", {"metavar": "INT"},
     "seed of every synthetic dataset (default 0); shown in the report header so runs reproduce."),
    ("--ymir-keep", "ymir_keep", {"action": "store_true", "default": None},
     "keep workspaces and stopped containers for debugging; their paths and names are printed."),
    ("--ymir-workdir", "ymir_workdir", {"metavar": "DIR"},
     "where workspaces and the trained-model cache live (default: .ymir-work under the rootdir)."),
    ("--ymir-platform", "ymir_platform", {"metavar": "RELEASE"},
     f"platform release(s) to judge against: one of {', '.join(str(r) for r in RELEASES)}, a range such as "
     f"2.1-2.3, or all (a compatibility table). Default: {LATEST} (certify profile: all)."),
    ("--ymir-report-dir", "ymir_report_dir", {"metavar": "DIR"},
     "write the certification report there: report.json, certificate.html (self-contained) and the "
     "workspace-independent run logs."),
    ("--ymir-strict", "ymir_strict", {"action": "store_true", "default": None},
     "fail on SHOULD-level violations too (default: they are warnings and appear in the report)."),
    ("--ymir-gate", "ymir_gate", {"metavar": "RELEASES"},
     "the platform release(s) whose findings fail the session (CI gating): a subset of --ymir-platform, e.g. "
     "2.4-2.5 or 2.5,2.3. Findings on the other judged releases are reported (terminal, JUnit, report.json) "
     "but do not fail tests. Default: every judged release."),
    ("--ymir-limits", "ymir_limits", {"metavar": "on|off|KEY=VALUE,..."},
     "the suite's containment of every container it starts (the platform itself sets none): on (default: "
     "--pids-limit=4096, --memory=min(8g, half the host's RAM) with no extra swap, json-file log driver with "
     "max-size=16m, no-new-privileges, --cap-drop=ALL plus the file-ownership capabilities CHOWN, DAC_OVERRIDE, "
     "FOWNER, FSETID, SETUID, SETGID and KILL, --cpus=the host's cores minus one), off (exactly the platform's "
     "unlimited docker run), or overrides such as pids=8192,memory=16g,log=64m,cpus=4 (pids=off drops one limit). "
     "A run that hits a limit fails LC-11/LC-12/LC-15; one throttled by --cpus for most of its life gets LC-16."),
    ("--ymir-exit-grace", "ymir_exit_grace", {"metavar": "SECONDS"},
     "how long a run that is done (monitor.txt at 100 percent or state 3, and its result files written) may stay "
     "idle (no CPU time used, no file written under /out) without exiting before the suite stops it and fails V1 "
     "(the platform would wait forever). A run still working after 100 percent is not stopped. Default: 30."),
    ("--ymir-transfer", "ymir_transfer", {"metavar": "auto|bind|archive"},
     "how /in reaches the engine and /out comes back: bind (bind mounts, the platform's way; the engine must see "
     "the suite's files), archive (volumes filled and read over the Docker API: remote engines, DOCKER_HOST "
     "tcp:// or ssh://), auto (default: archive for a remote engine or one that cannot see a probe file through "
     "a bind mount, else bind)."),
    ("--ymir-jobs", "ymir_jobs", {"metavar": "N"},
     "how many container runs may run at once: once a run's inputs are ready (a training for its downstream "
     "runs) it starts, up to N together; each is still its own `docker run` in its own workspace. Default: the "
     "number of CPU cores in CPU mode; 1 with --ymir-gpus (every run gets all the given GPUs, and two runs never "
     "share one). With pytest-xdist: per worker."),
    ("--ymir-status-interval", "ymir_status_interval", {"metavar": "SECONDS|off"},
     "live status while containers run (run id, percent from monitor.txt, elapsed time, time left in the total "
     "budget): redrawn in place on a terminal; on a non-TTY (CI logs) one plain line per running container at least "
     "every SECONDS (default 30, with -q too) and, unless -q, on every 10 percent step. off: no status. Under "
     "pytest-xdist the controller prints the workers' lines."),
    ("--ymir-engines", "ymir_engines", {"metavar": "URL,URL..."},
     "spread container runs over several Docker engines (unix:///..., tcp://host:2376, ssh://user@host): each "
     "xdist worker binds to one engine (gwK -> engine K mod E); without xdist each training group goes to the "
     "next engine in turn. Every engine needs every image. Default: DOCKER_HOST or the default socket."),
    ("--ymir-set", "ymir_set", {"action": "append", "metavar": "KEY=VALUE"},
     "edit a template hyper-parameter as a platform user does in the web form (repeatable; ini: one per line): "
     "training.epochs=1 or mining.batch_size=2 (scopes: training, mining, infer: the template names) or epochs=1 "
     "for every template. The value is a YAML scalar. Applied before the UI drops empty values and the platform "
     "adds its keys (contract 3.3); platform-reserved keys (task_id, class_names, gpu_id, gpu_count, ...) are "
     "refused."),
    ("--ymir-diagnose", "ymir_diagnose", {"metavar": "off|auto|all"},
     "retries of a failed run, to name its cause. auto (default): one retry, only when the log shows evidence: "
     "a permission error on a file the image should own -> rerun as root (LC-09); int('') or a gpu_id/CUDA device "
     "parsing error in CPU mode -> rerun with gpu_id '0', still no GPU (LC-07); never for a run over 120 s. A "
     "network failure is named from the log alone (LC-10), never retried. off: no retry. all: rerun as root, on "
     "an internal network with no route anywhere, and with gpu_id '0', whatever the log says; a networked rerun "
     "is never the judged run. Every rerun has exactly the first run's containment."),
    ("--ymir-fuzz", "ymir_fuzz", {"metavar": "N"},
     "search the input space: hypothesis generates up to N candidate sets per image (image modes L, LA, RGB, RGBA, "
     "P, I;16, CMYK JPEG; EXIF orientation; progressive JPEG; 1x1 px to 8000 px panoramas; boxes at and across "
     "borders) and runs the image's mining+infer (or infer, or mining) on each with one trained model, every run "
     "fully judged and contained. A crash or a MUST finding fails test_fuzz_candidates, shrunk to a minimal "
     "reproducer. Default 0: no search."),
    ("--ymir-fuzz-training", "ymir_fuzz_training", {"metavar": "M"},
     "the same search over small training sets (also class names: many, non-ASCII, very long; classes with no "
     "examples; empty validation splits): up to M training runs per image (test_fuzz_training). A training set "
     "the image refuses cleanly (state 4 with a 3000xx code) is not a failure. Default 0."),
    ("--ymir-fuzz-budget", "ymir_fuzz_budget", {"metavar": "SECONDS"},
     "wall-clock budget of all fuzz searches together, from the first: after it no fuzz container starts, the "
     "searches and their shrinking end and the report says how many inputs were tried. Default 1200."),
    ("--ymir-dataset-size", "ymir_dataset_size", {"metavar": "N|train=N,val=N,candidates=N"},
     "override the profile's synthetic dataset sizes (quick: train=24,val=8,candidates=12): N means train=N and "
     "N // 3 val and candidates; or any of train=, val=, candidates=. For images whose epochs need more data."),
]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ymir", "ymir-conformance: certify YMIR executor images")
    for flag, ini, kwargs, help_ in OPTIONS:
        kw = dict(kwargs)
        dest = ini if flag != "--image" else "ymir_images"
        group.addoption(flag, dest=dest, help=help_, **kw)
        if kw.get("action") == "append":
            parser.addini(ini, help=help_, type="linelist", default=[])
        elif kw.get("action") == "store_true":
            parser.addini(ini, help=help_, type="bool", default=None)
        else:
            parser.addini(ini, help=help_, type="string", default=None)


def _get(config: pytest.Config, ini: str) -> tuple[Any, str]:
    value = config.getoption(ini, default=None)
    if value not in (None, []):
        flag = next(f for f, i, _, _ in OPTIONS if i == ini)
        return value, flag
    ini_value = config.getini(ini)
    return (ini_value if ini_value not in (None, [], "") else None), f"ini option {ini}"


def resolve(config: pytest.Config) -> Settings:
    """Build the frozen :class:`Settings` from command line and ini (raises SettingsError on a bad value)."""
    images_v, _ = _get(config, "ymir_images")
    profile_v, where = _get(config, "ymir_profile")
    profile = parse_profile(profile_v or "quick", where)
    tasks_v, where = _get(config, "ymir_tasks")
    tasks = parse_tasks(tasks_v, where) or PROFILE_TASKS[profile]
    formats_v, _ = _get(config, "ymir_formats")
    gpus_v, where = _get(config, "ymir_gpus")
    user_v, where_user = _get(config, "ymir_user")
    base = PROFILE_BUDGETS[profile]
    budget = Budget(
        total_s=parse_seconds(*_get(config, "ymir_budget_total")) or base.total_s,
        first_progress_s=parse_seconds(*_get(config, "ymir_budget_first_progress")) or base.first_progress_s,
        heartbeat_s=parse_seconds(*_get(config, "ymir_budget_heartbeat")) or base.heartbeat_s,
    )
    platform_v, where_platform = _get(config, "ymir_platform")
    releases = parse_releases(platform_v or ("all" if profile == "certify" else None), where_platform)
    workdir_v, _ = _get(config, "ymir_workdir")
    report_v, _ = _get(config, "ymir_report_dir")
    seed_v, where_seed = _get(config, "ymir_seed")
    limits_v, where_limits = _get(config, "ymir_limits")
    gate_v, where_gate = _get(config, "ymir_gate")
    gate = parse_gate(gate_v, where_gate, releases)
    grace_v, where_grace = _get(config, "ymir_exit_grace")
    from .engines import parse_engines, parse_transfer, worker_index, worker_share

    transfer_v, where_transfer = _get(config, "ymir_transfer")
    engines_v, where_engines = _get(config, "ymir_engines")
    # an xdist worker: its engine, and its own disjoint slice of the GPUs (engines.py)
    engines, gpu_ids = worker_share(getattr(config, "workerinput", None), parse_engines(engines_v, where_engines),
                                    parse_gpus(gpus_v, where))
    return Settings(
        images=tuple(parse_list(images_v)),
        profile=profile,
        formats=parse_list(formats_v),
        tasks=tasks,
        gpu_ids=gpu_ids,
        user=parse_user(user_v, where_user),
        allow_network=parse_bool(_get(config, "ymir_allow_network")[0] or False),
        budget=budget,
        seed=parse_int(seed_v, where_seed, 0),
        keep=parse_bool(_get(config, "ymir_keep")[0] or False),
        workdir=Path(workdir_v).resolve() if workdir_v else Path(str(config.rootpath)) / ".ymir-work",
        releases=releases,
        report_dir=Path(report_v).resolve() if report_v else None,
        strict=parse_bool(_get(config, "ymir_strict")[0] or False),
        gate=gate,
        limits=parse_limits(limits_v, where_limits),
        exit_grace_s=parse_seconds(grace_v, where_grace) or DEFAULT_EXIT_GRACE_S,
        transfer=parse_transfer(transfer_v, where_transfer),
        engines=engines,
        hyper_params=parse_sets(*_get(config, "ymir_set")),
        dataset_size=parse_dataset_size(*_get(config, "ymir_dataset_size")),
        diagnose=parse_diagnose(*_get(config, "ymir_diagnose")),
        status_interval_s=parse_status_interval(*_get(config, "ymir_status_interval")),
        fuzz=parse_count(*_get(config, "ymir_fuzz"), "candidate inputs"),
        fuzz_training=parse_count(*_get(config, "ymir_fuzz_training"), "training inputs"),
        fuzz_budget_s=parse_seconds(*_get(config, "ymir_fuzz_budget")) or DEFAULT_FUZZ_BUDGET_S,
        jobs=parse_jobs(*_get(config, "ymir_jobs"), gpu_ids=gpu_ids,
                        workers=(worker_index(getattr(config, "workerinput", None)) or (0, 1))[1]),
    )


SETTINGS_KEY = pytest.StashKey[Settings]()  # the resolved settings of a pytest run (entry.py)
