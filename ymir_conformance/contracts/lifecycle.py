"""Lifecycle checks: exit code (V1), filesystem and deployment rules (LC-xx), the error tail (MON-08) and the
timing budgets (BUD-xx) of one container run (contract §1, §5.2, §6, §7)."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

from .. import diagnosis, guard
from ..model import RunOutcome
from ..printable import printable
from .base import START_COMMAND, Area, Level, RunView, Violation, cap, check, short
from .monitor_format import MONITOR_PATH, Snapshot, snapshot, snapshots

LOG_PATH = "/out/ymir-executor-out.log"
TAIL_LINES = 5  # env_config.collect_executor_outlog_tail(tail_line_count=5)
TAIL_READ_BYTES = 256 * 1024

_IN_PATH = re.compile(r"(?<![\w./-])/in(?![\w.-])")
_EROFS = re.compile(r"read-only file system|\bEROFS\b|\[Errno 30\]", re.IGNORECASE)
_GPU_WORDS = re.compile(r"cuda|gpu|nvidia|nccl|cudnn", re.IGNORECASE)
_ERROR_WORDS = re.compile(
    r"error|exception|traceback|fail|fatal|abort|errno|killed|not found|no such|invalid|cannot|can't|unable|"
    r"denied|refused|out of memory|\boom\b|missing|\b3000\d\d\b|\b3001\d\d\b|\b300[23]0\d\b",
    re.IGNORECASE)


def log_tail(outcome: RunOutcome, n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` lines of the executor log as the platform takes them (``readlines()[-n:]``), read
    through the guarded door (a link or FIFO gives one line saying why it was not read)."""
    return guard.tail_lines(outcome.out_dir, "ymir-executor-out.log", n, TAIL_READ_BYTES)


def _render_tail(lines: list[str]) -> str:
    if not lines:
        return "(the log is empty)"
    return " | ".join(short(ln, 200)[1:-1] if ln else "<blank>" for ln in lines)


def _final_monitor(view: RunView) -> Snapshot | None:
    art = view.monitor
    return snapshot(art.text, None) if art.ok else None


# --------------------------------------------------------------------------------------------------------
# V1: exit code
# --------------------------------------------------------------------------------------------------------

FIX_EXIT = (
    f"Make {START_COMMAND} (its default CMD/ENTRYPOINT, run with no arguments) finish the task and exit 0. Any non-zero exit fails the task; the task message "
    "is only the last 5 lines of /out/ymir-executor-out.log, so print the decisive error last. The error found in the log and its "
    "last lines are shown with this failure."
)


FIX_NEVER_EXITS = (
    f"Make {START_COMMAND} return once the results are written: do not end with `sleep infinity`, `tail -f`, "
    "`wait` on a background server (TensorBoard, a web UI), or leave non-daemon threads and child processes "
    "running (close and join multiprocessing pools and DataLoader workers, stop TensorBoard writers); then exit "
    "0. If a library thread keeps Python alive, flush and call os._exit(0) at the end of main."
)


def _never_exited(o: RunOutcome) -> Violation:
    files = ", ".join(f"/out/{f}" for f in o.shape.result_files)
    grace = f"{o.exit_grace_s:g} s" if o.exit_grace_s is not None else "the exit grace period"
    done = f"{o.done_s:.1f} s after start" if o.done_s is not None else "during the run"
    return Violation(
        "V1", f"the container never exits: it finished its work ({done} monitor.txt said 100% and {files} "
        f"existed) but was still running {grace} later, so the suite stopped it. The platform waits for the "
        "container to exit (a plain docker run, no timeout) before it reads /out: this task would stay RUNNING "
        "forever, holding its GPUs, and its results would never be imported. (Its outputs are still judged "
        "below.)", file=MONITOR_PATH, where="line 1", found=f"still running {grace} after the results were done",
        expected="the container exits 0 right after writing its results", fix=FIX_NEVER_EXITS)


def _limit_note(o: RunOutcome) -> str:
    """Why a run stopped short when the suite's limits stopped it: the limit rule (LC-11/LC-12) names the cause."""
    notes = []
    if o.oom_killed:
        notes.append(f"the kernel's OOM killer killed a process at the suite's memory limit of "
                     f"{o.limits.get('memory') or '?'} (LC-12 names the cause)")
    if o.hit_pids_limit:
        notes.append(f"forks were refused at the suite's pids limit of {o.limits.get('pids') or '?'} (LC-11 names "
                     "the cause)")
    if o.flood_stopped:
        notes.append("the suite stopped an endless flood of stdout/stderr output (LC-13 names the cause)")
    if o.disk_stopped:
        notes.append(f"the suite stopped it for filling the disk (LC-15 names the cause)")
    return f" after {' and '.join(notes)}" if notes else ""


def _decisive_error(o: RunOutcome) -> str:
    """' The error in its log: ValueError: ... (N lines before its end).' when the log shows one, else ''."""
    from ..excerpt import read_excerpt

    ex = read_excerpt(o.out_dir)
    if not ex.error:
        return ""
    tb, _ = ex.primary()
    where = f" ({ex.before_end(tb.end)} lines before its end)" if tb is not None and tb.end >= 0 else ""
    return f" The error in its log: {printable(ex.error, 300)}{where}."


@check("V1", "the container exits 0", area=Area.LIFECYCLE, level=Level.MUST, needs_success=False)
def v1_exit_code(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.never_exited:
        yield _never_exited(o)
        return
    if o.succeeded:
        return
    if o.timed_out and o.budget_total_s is not None:
        return  # the suite stopped it at the total budget: BUD-01 reports that (the exit code is unknown)
    tail = log_tail(o)
    final = _final_monitor(view)
    code_note = ""
    if final is not None and final.record is not None and final.record.state == 4 and final.record.code:
        code_note = f"; the platform (>= 2.3) reports code {final.record.code} from monitor.txt column 5"
    elif not o.timed_out:
        code_note = "; the platform reports the generic code 160004 RC_CMD_CONTAINER_ERROR"
    if o.timed_out:
        msg = (f"the run timed out: the suite stopped the container after {o.duration_s:.0f} s "
               f"(budget {o.budget_total_s or '-'} s); the platform has no timeout, but an image that never "
               f"finishes blocks its GPUs forever. Last {TAIL_LINES} log lines: {_render_tail(tail)}")
        found = f"timed out after {o.duration_s:.0f} s"
    elif o.exit_code is None:
        msg = (f"the container did not run to completion (no exit code). Last {TAIL_LINES} log lines: "
               f"{_render_tail(tail)}")
        found = "no exit code"
    else:
        msg = (f"the container exited {o.exit_code}{_limit_note(o)}{code_note}.{_decisive_error(o)} Last "
               f"{TAIL_LINES} log lines (the task message the user sees): {_render_tail(tail)}")
        found = f"exit code {o.exit_code}"
    yield Violation("V1", msg, file=LOG_PATH, where=f"last {TAIL_LINES} lines", found=found,
                    expected="exit code 0", fix=FIX_EXIT)


# --------------------------------------------------------------------------------------------------------
# LC-03: read-only /in
# --------------------------------------------------------------------------------------------------------

FIX_RO_IN = (
    "Never write under /in: the platform mounts it read-only (-v <work>/in:/in:ro). Write results, caches and "
    "converted datasets under /out or /tmp (e.g. set HOME=/tmp, TORCH_HOME=/tmp/torch, "
    "YOLO_CONFIG_DIR=/tmp, write label caches and .cache files next to a copy of the index under /tmp), and "
    "read every path from /in/env.yaml."
)


@check("LC-03", "no writes to /in", area=Area.LIFECYCLE, levels={"1.1": Level.SHOULD, "2.0+": Level.MUST},
       needs_success=False)
def lc_03(view: RunView) -> Iterator[Violation]:
    bad = [
        Violation("LC-03", "the image tried to write under /in, which the platform mounts read-only",
                  file=LOG_PATH, where=f"line {i}", found=short(line, 200), expected="writes only under /out or /tmp",
                  fix=FIX_RO_IN)
        for i, line in enumerate(view.log_lines, start=1)
        if _EROFS.search(line) and _IN_PATH.search(line)
    ]
    yield from cap(bad)
    o = view.outcome
    if o.in_dir_digest_before and o.in_dir_digest_after and o.in_dir_digest_before != o.in_dir_digest_after:
        yield Violation("LC-03", "the content of /in changed during the run (the suite mounted it writable "
                        "for this check or the image changed files through a writable sub-mount)", file="/in",
                        found=f"digest {o.in_dir_digest_before[:12]} -> {o.in_dir_digest_after[:12]}",
                        expected="/in unchanged", fix=FIX_RO_IN)


# --------------------------------------------------------------------------------------------------------
# LC-05: the shared asset cache is left alone
# --------------------------------------------------------------------------------------------------------


@check("LC-05", "nothing under the asset cache (/in/assets, mounted read-write) is modified", area=Area.LIFECYCLE,
       levels={"2.0+": Level.SHOULD}, needs_success=False)
def lc_05(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.asset_cache_digest_before and o.asset_cache_digest_after != o.asset_cache_digest_before:
        yield Violation(
            "LC-05", "the run changed the asset cache behind /in/assets: on the platform that folder is every task "
            "of the user's shared cache, mounted read-write only so that the link resolves, so the change "
            "corrupts other tasks' images", file="/in/assets",
            found=f"digest {o.asset_cache_digest_before[:12]} -> {o.asset_cache_digest_after[:12]}",
            expected="the cache unchanged",
            fix="Treat /in/assets as read-only: write converted or resized images under /out or /tmp, never next to "
                "the originals.")


# --------------------------------------------------------------------------------------------------------
# LC-14: the executor log stays a regular file
# --------------------------------------------------------------------------------------------------------


@check("LC-14", "/out/ymir-executor-out.log stays a regular file (not a link, FIFO or device)", area=Area.LIFECYCLE,
       level=Level.MUST, needs_success=False)
def lc_14(view: RunView) -> Iterator[Violation]:
    problem = view.log_problem
    if problem:
        yield Violation(
            "LC-14", f"{LOG_PATH} {problem}: the platform appends the container's output to this file and, when "
            "the task fails, reads its last 5 lines into the task's error message (env_config."
            "collect_executor_outlog_tail) following links: a link shows a file of the platform's host to the "
            "user, a FIFO hangs the platform's task", file=LOG_PATH, found=problem, expected="a regular file",
            fix="Never delete, replace or link /out/ymir-executor-out.log: the platform creates it before the "
                "container starts and collects stdout/stderr into it. Print to stdout/stderr, or append to the "
                "file with open(path, 'a').")


# --------------------------------------------------------------------------------------------------------
# LC-07, LC-09, LC-10: deployments
# --------------------------------------------------------------------------------------------------------


def _monitor_code(text: str) -> str | None:
    """Column 5 of line 1 when line 1 says state 4 (ERROR), else None."""
    fields = text.split("\n", 1)[0].split("\t")
    if len(fields) >= 5 and fields[3].strip() == "4":
        return fields[4].strip()
    return None


@check("LC-07", "CPU mode (gpu_id '') runs on CPU or fails cleanly with 300102", area=Area.LIFECYCLE,
       level=Level.SHOULD, needs_success=False)
def lc_07(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if not o.cpu_mode or o.succeeded or o.timed_out or o.exit_code is None:
        return
    art = view.monitor
    mon_text = art.text if art.ok else ""
    if "300102" in mon_text or any("300102" in ln for ln in view.log_lines[-50:]):
        return
    if o.needs_gpu_id:  # diagnosed by a rerun with gpu_id '0' (diagnosis_runs.py), whatever the log says
        tail = log_tail(o, 30)
        yield Violation("LC-07", "the image fails in CPU mode (config.yaml gpu_id: '' because the user chose "
                        f"gpu_count 0): it exited {o.exit_code}, and the same run with gpu_id: '0' (still no GPU) "
                        "succeeded, so it cannot handle an empty gpu_id (e.g. int('') or gpu_id.split(',')[0] "
                        "used as a device number)", file="/in/config.yaml", where="gpu_id",
                        found=short(tail[-1], 200) if tail else "; ".join(o.diagnosis),
                        expected="run on CPU when gpu_id is '', or write monitor state 4 with code 300102 "
                                 "(RC_EXEC_NO_GPU) and exit non-zero",
                        fix="Read gpu_id from /in/config.yaml as a string and treat '' (or a missing key) as CPU "
                            "mode before converting anything: ids = [int(g) for g in str(cfg.get('gpu_id') or '')"
                            ".split(',') if g.strip()]; device = f'cuda:{ids[0]}' if ids else 'cpu'. If the model "
                            "cannot run without a GPU, fail cleanly with monitor state 4 and code 300102.")
        return
    code = _monitor_code(mon_text)
    if code is not None and code.startswith("300") and not code.startswith("3001"):
        return  # the image failed cleanly for a declared non-GPU reason (config, dataset, image, model, ...)
    tail = log_tail(o, 30)
    gpu_lines = [ln for ln in tail if _GPU_WORDS.search(ln) and _ERROR_WORDS.search(ln)]
    if not gpu_lines:
        return
    yield Violation("LC-07", "the image crashes in CPU mode (config.yaml gpu_id: '' because the user chose "
                    f"gpu_count 0): it exited {o.exit_code} with a GPU-related error and did not report 300102",
                    file=LOG_PATH, where="log tail", found=short(gpu_lines[-1], 200),
                    expected="run on CPU, or write monitor state 4 with code 300102 (RC_EXEC_NO_GPU) and exit non-zero",
                    fix="Read gpu_id from /in/config.yaml; when it is '' run on CPU (device='cpu', no .cuda() calls, "
                        "map_location='cpu' when loading weights, no NCCL/distributed launch) or, if the model "
                        "cannot run without a GPU, fail cleanly: write '<task_id>\\t<time>\\t<percent>\\t4\\t300102' "
                        "to /out/monitor.txt, print 'no GPU available (gpu_id is empty)' last and exit non-zero.")


@check("LC-09", "works as an arbitrary non-root uid:gid", area=Area.LIFECYCLE, level=Level.SHOULD,
       needs_success=False)
def lc_09(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if not o.retried_as_root:
        return
    yield Violation("LC-09", "the run failed as a non-root uid:gid and succeeded only when retried as root: it "
                    "works with the stock docker-compose deployment (backend runs as root, so --user 0:0) and with "
                    "the verifier (no --user), but breaks on every deployment or CLI use where mir runs as another "
                    "user (the platform always passes --user <uid>:<gid> of the mir process)",
                    found="; ".join(o.diagnosis) or f"user {o.user or '?'}",
                    expected="success as any uid:gid without a passwd entry",
                    fix="Make the image work as any uid:gid with no passwd entry and HOME possibly '/': write only "
                        "under /out and /tmp (set HOME=/tmp, XDG_CACHE_HOME=/tmp/.cache, TORCH_HOME, MPLCONFIGDIR), "
                        "make everything the code reads world-readable (chmod -R a+rX on the app and weight "
                        "directories at build time), and do not call getpwuid() or pip install at run time.")


FIX_NETWORK = (
    "Bake every pretrained weight, font, tokenizer and package into the image at build time (e.g. RUN wget ... && "
    "mv to /app/weights, or COPY them), point the code at those local paths, and set offline switches such as "
    "HF_HUB_OFFLINE=1 and YOLO_OFFLINE=1. If a download is optional, catch its failure and go on without it."
)


@check("LC-10", "works without network access", area=Area.LIFECYCLE, level=Level.SHOULD, needs_success=False)
def lc_10(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.needs_network:  # --ymir-diagnose=all: the rerun on an internal network worked
        yield Violation("LC-10", "the run failed without network access and succeeded when rerun on a network "
                        "(--ymir-diagnose=all, an internal network with no route anywhere): the image needs the "
                        "network at run time, which fails on air-gapped platform hosts (300301 NETWORK_ERROR). The "
                        "failed run is the judged one.", found="; ".join(o.diagnosis) or "needs network",
                        expected="no network access at run time", fix=FIX_NETWORK)
        return
    if o.succeeded or o.network or o.timed_out or o.exit_code is None or o.hit_limit:
        return  # a run that had a network (--ymir-allow-network) cannot show what the lack of one does
    ev = diagnosis.network_evidence(view.log_lines)
    if ev is None:
        return
    target = f"it tried to reach {ev.subject}" if ev.subject else "the log names no URL"
    yield Violation("LC-10", f"the run failed without network access (--network none, as on air-gapped platform "
                    f"hosts, where the task ends with 300301 NETWORK_ERROR) and its log shows "
                    f"{diagnosis.describe(ev)}: {target}. Diagnosed from the log; the suite never reruns an image "
                    "with a network.", file=LOG_PATH, found=short(ev.line, 200),
                    expected="no network access at run time", fix=FIX_NETWORK)


# --------------------------------------------------------------------------------------------------------
# LC-11, LC-12, LC-13: containment. The platform sets no limits (contract §1.3: a plain docker run), so the
# suite runs every container with its own (limits.py, --ymir-limits) and judges a run that hits them.
# --------------------------------------------------------------------------------------------------------

FIX_PIDS = (
    "Bound the processes and threads the image starts: take DataLoader num_workers from the config and cap it "
    "(e.g. min(8, os.cpu_count())), cap thread pools (OMP_NUM_THREADS, MKL_NUM_THREADS, torch.set_num_threads), "
    "never start a process or thread per image or per item outside a fixed-size pool, and join or close what "
    "you start. A training needs a few hundred tasks at most."
)
FIX_MEMORY = (
    "Bound the memory the image uses in CPU mode and on the host side of GPU mode: stream the dataset from the "
    "index files instead of loading every image at once, cap the batch size and cache sizes from the config, "
    "keep DataLoader workers few (each holds a copy of the dataset object), and free what a stage no longer "
    "needs. On out-of-memory, write monitor state 4 with 300103 and print the reason last."
)
FIX_LOG = (
    "Log per epoch or every N iterations, not per image or per batch; disable progress bars when stdout is not "
    "a terminal (tqdm(disable=not sys.stdout.isatty()) or mininterval=30); never print tensors, arrays or whole "
    "annotation files; write verbose debug output to a file under /out only when a config flag asks for it."
)
_PLATFORM_UNLIMITED = ("The platform sets no such limit (a plain docker run, contract §1.3): on its shared GPU "
                       "hosts this takes down other users' tasks and the platform's own services, and nothing "
                       "contains it, so a certificate cannot vouch for the image.")


def _peak(value: int | None, what: str) -> str:
    return f"; peak {what} seen: {value}" if value is not None else ""


def _no_limit(view: RunView, what: str) -> str:
    """'' when the run had the suite's ``what`` limit, else why LC-11/LC-12 cannot judge it."""
    if view.outcome.limits.get(what):
        return ""
    return f"the run had no {what} limit (--ymir-limits=off or {what}=off): nothing to judge"


@check("LC-11", "stays within a pids limit (the platform sets none; the suite runs with --pids-limit)",
       area=Area.LIFECYCLE, level=Level.MUST, needs_success=False, unless=lambda view: _no_limit(view, "pids"))
def lc_11(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if not o.hit_pids_limit:
        return
    limit = o.limits.get("pids") or "?"
    yield Violation(
        "LC-11", f"the container tried to run more than {limit} processes and threads at once: the suite's pids "
        f"limit (--pids-limit={limit}) refused its forks. {_PLATFORM_UNLIMITED} To watch the run without the "
        f"limit, on a machine of your own: --ymir-limits=off (or --ymir-limits=pids=N to raise it).",
        found=f"forks refused at the pids limit of {limit}{_peak(o.pids_peak, 'tasks')}",
        expected=f"at most {limit} processes + threads at once", fix=FIX_PIDS)


@check("LC-12", "stays within a memory limit (the platform sets none; the suite runs with --memory)",
       area=Area.LIFECYCLE, level=Level.MUST, needs_success=False, unless=lambda view: _no_limit(view, "memory"))
def lc_12(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if not o.oom_killed:
        return
    limit = o.limits.get("memory") or "?"
    peak = f"; peak memory seen: {guard.human(o.memory_peak_bytes)}" if o.memory_peak_bytes else ""
    yield Violation(
        "LC-12", f"the container ran out of memory: the kernel's OOM killer killed a process at the suite's memory "
        f"limit (--memory={limit}, no extra swap) on a tiny synthetic dataset. {_PLATFORM_UNLIMITED} To watch the "
        f"run without the limit, on a machine of your own: --ymir-limits=off (or --ymir-limits=memory=16g to raise "
        "it).", found=f"OOM-killed at {limit}{peak}", expected=f"at most {limit} of memory", fix=FIX_MEMORY)


@check("LC-15", "writes a bounded amount of data (the platform sets no quota; the suite watches the disk)",
       area=Area.LIFECYCLE, level=Level.MUST, needs_success=False, unless=lambda view: _no_limit(view, "disk"))
def lc_15(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if not o.disk_stopped:
        return
    limit = o.limits.get("disk") or "?"
    yield Violation(
        "LC-15", f"the container used {guard.human(o.disk_used_bytes)} of the workspace's disk on the suite's tiny "
        f"dataset (the suite's disk limit is {limit}, or the disk was nearly full), so the suite stopped it. The "
        "platform sets no quota on /out (a plain bind mount, contract §1.3): on its hosts this fills the disk that "
        "every user's tasks and the platform's own database share, and nothing contains it, so a certificate cannot "
        "vouch for the image. To watch the run without the limit, on a machine of your own: --ymir-limits=off (or "
        "--ymir-limits=disk=50g to raise it).", file="/out",
        found=f"{guard.human(o.disk_used_bytes)} written", expected=f"at most {limit}",
        fix="Write only results, the final and best model stages and TensorBoard events to /out; keep caches and "
            "intermediate checkpoints under /tmp and delete what you no longer need (the SDK keeps at most 11 "
            "stages).")


LC16_MIN_PERIODS = 50  # CFS periods (100 ms each by default) with work: a run of a few seconds is not judged
LC16_MIN_SHARE = 0.5  # throttled in more than this share of them: "for most of its life"


@check("LC-16", "is not held back by the suite's CPU limit for most of its run (--cpus)", area=Area.LIFECYCLE,
       level=Level.SHOULD, needs_success=False, unless=lambda view: _no_limit(view, "cpus"))
def lc_16(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.cpu_periods < LC16_MIN_PERIODS or o.cpu_throttled <= LC16_MIN_SHARE * o.cpu_periods:
        return
    cpus = o.limits.get("cpus")
    limit = f"{float(cpus):g}" if isinstance(cpus, (int, float)) else "?"
    share = o.cpu_throttled / o.cpu_periods
    used = f", {o.cpu_usage_s:.0f} s of CPU time in {o.duration_s:.0f} s" if o.cpu_usage_s is not None else ""
    yield Violation(
        "LC-16", f"the container wanted more than the suite's CPU limit of {limit} cores (--cpus={limit}) for most "
        f"of its run: the kernel throttled it in {o.cpu_throttled} of its {o.cpu_periods} scheduling periods "
        f"({share:.0%}{used}). The suite limits CPUs so that the host (and the suite) stay responsive; this run "
        "took longer here than it would with every core, and its time budgets were judged on that. On the "
        "platform it shares the host's cores with other users' tasks, which is where it starts more threads than "
        "it is given. To let it use more here: --ymir-limits=cpus=N (at most this host's cores) or "
        "--ymir-limits=cpus=off.", found=f"throttled in {share:.0%} of {o.cpu_periods} CPU periods at {limit} cores",
        expected=f"threads sized to the CPUs the container is given ({limit} here)",
        fix="Size thread pools and DataLoader workers from the CPUs the container may use, not from the host's "
            "core count: read the cgroup quota (/sys/fs/cgroup/cpu.max, or cpu.cfs_quota_us / cpu.cfs_period_us) or "
            "len(os.sched_getaffinity(0)), and set torch.set_num_threads, OMP_NUM_THREADS and num_workers from it "
            "(or from a config key).")


@check("LC-13", "writes a bounded amount of log output (the platform keeps every byte)", area=Area.LIFECYCLE,
       level=Level.SHOULD, needs_success=False)
def lc_13(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.log_bytes_dropped <= 0:
        return
    cap_ = o.log_cap_bytes or 0
    total = o.log_bytes or (cap_ + o.log_bytes_dropped)
    yield Violation(
        "LC-13", f"the container wrote {guard.human(total)} to stdout/stderr on the suite's tiny dataset, over the "
        f"{guard.human(cap_)} the suite keeps ({guard.human(o.log_bytes_dropped)} were counted but not written to "
        f"{LOG_PATH}). The platform sets no limit on the log (a plain docker run, contract §1.3): it appends every "
        "byte to ymir-executor-out.log on its host disk for every task, so a real dataset fills the platform's "
        "disk. The volume is counted in full with or without --ymir-limits.", file=LOG_PATH,
        found=f"{total} bytes of output", expected=f"at most {guard.human(cap_)} on the suite's datasets",
        fix=FIX_LOG)


# --------------------------------------------------------------------------------------------------------
# MON-08: the decisive error is in the last 5 log lines
# --------------------------------------------------------------------------------------------------------

FIX_TAIL = (
    "On failure print the decisive error as the very last lines of stdout/stderr (e.g. catch the exception at "
    "the top of start.py, log the traceback, then log one summary line such as 'ERROR 300002: validation set "
    "is empty' and exit non-zero). The platform shows only the last 5 lines of /out/ymir-executor-out.log as "
    "the task's message; progress bars, blank lines or cleanup messages after the error hide it."
)


@check("MON-08", "on failure the decisive error is in the last 5 log lines", area=Area.LIFECYCLE,
       level=Level.SHOULD, needs_success=False)
def mon_08(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.succeeded or o.timed_out or o.exit_code is None:
        return
    tail = log_tail(o)
    if not any(ln.strip() for ln in tail):
        yield Violation("MON-08", f"the container exited {o.exit_code} but the last {TAIL_LINES} lines of the "
                        "executor log are empty or blank, so the user sees no reason for the failure",
                        file=LOG_PATH, where=f"last {TAIL_LINES} lines", found=_render_tail(tail),
                        expected="the error message", fix=FIX_TAIL)
        return
    joined = "\n".join(tail)
    final = _final_monitor(view)
    message = ""
    if final is not None and final.record is not None and final.record.state == 4:
        message = final.record.message or next((ln.strip() for ln in final.record.extra_lines if ln.strip()), "")
    if message and message[:60] in joined:
        return
    if _ERROR_WORDS.search(joined):
        return
    if o.exit_code is not None and o.exit_code >= 128 and not message:
        return  # killed by a signal (e.g. the OOM killer): the image had no chance to print anything
    why = f" (monitor.txt says {short(message)})" if message else ""
    yield Violation("MON-08", f"the container exited {o.exit_code} but the last {TAIL_LINES} log lines do not "
                    f"show the error{why}", file=LOG_PATH, where=f"last {TAIL_LINES} lines",
                    found=_render_tail(tail), expected="the decisive error message or exception last",
                    fix=FIX_TAIL)


# --------------------------------------------------------------------------------------------------------
# BUD-01..03: timing budgets of the suite's profile
# --------------------------------------------------------------------------------------------------------

FIX_BUDGET = (
    "Keep the test run within the profile's total budget: honour small hyper-parameters from the template "
    "(epochs, iterations, image size) so the smoke run is short, exit once the results and monitor.txt at 100% are "
    "written, and claim GPU memory within 3 minutes of start (the platform's GPU lock expires after 3 min). A "
    "run this far over the budget cannot be told apart from a hang; raise --ymir-budget-total if your smoke run "
    "really takes that long."
)
FIX_PROGRESS = (
    "Write /out/monitor.txt soon after start (e.g. 0.01 once the config is read) and then per batch or per N "
    "images, not only once per epoch: the platform sets no deadline (contract §1.11, §7), but its users see "
    "nothing but this percent while a training runs for hours, and a task that says nothing for long looks hung "
    "(a SHOULD: the gap depends on the host's speed and load, so it never fails the certificate; set "
    "--ymir-budget-first-progress / --ymir-budget-heartbeat to your own cadence)."
)


def _updates(view: RunView) -> list[float]:
    """Seconds after start at which the image changed line 1 of monitor.txt (the platform's PENDING excluded)."""
    snaps = snapshots(view.outcome, None)
    times: list[float] = []
    last: str | None = None
    for snap in snaps:
        if snap.seen_s is None or snap.empty:
            continue
        line = snap.first_line.strip()
        if snap.record is not None and snap.record.is_platform_pending and not times:
            last = line
            continue
        if line != last:
            times.append(snap.seen_s)
            last = line
    return times


def _over_budget(rule: str, message: str, file: str, found: str, budget: float, option: str) -> Violation:
    """A run over one of its time budgets: every BUD rule expects '<= budget s (option)' and gives FIX_BUDGET."""
    return Violation(rule, message, file=file, found=found, expected=f"<= {budget:g} s ({option})", fix=FIX_BUDGET)


HARD_LIMIT_FACTOR = 1.5  # the runner stops a run at this multiple of its total budget (session.TIMEOUT_FACTOR)


@check("BUD-01", "the run ends before the suite's hard limit (1.5x the total time budget)", area=Area.LIFECYCLE,
       level=Level.MUST, needs_success=False)
def bud_01(view: RunView) -> Iterator[Violation]:
    """A hang: the suite had to stop the run. A run that finishes late but finishes is BUD-04 (SHOULD): how late
    a run finishes depends on the host's speed and load, whether it finishes at all does not."""
    o = view.outcome
    if o.budget_total_s is None or not o.timed_out:
        return
    limit = o.budget_total_s * HARD_LIMIT_FACTOR
    yield _over_budget("BUD-01", f"the run did not end: the suite stopped it after {o.work_s:.1f} s, at its hard "
                       f"limit of {limit:g} s (1.5x the total budget of {o.budget_total_s:g} s), so nothing it would "
                       f"have written can be judged. Last {TAIL_LINES} log lines: {_render_tail(log_tail(o))}",
                       LOG_PATH, f"stopped after {o.work_s:.1f} s", limit, "1.5 x budget_total_s")


@check("BUD-04", "the run finishes within the total time budget", area=Area.LIFECYCLE, level=Level.SHOULD,
       needs_success=False)
def bud_04(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    if o.budget_total_s is None or o.timed_out:
        return  # stopped at the hard limit: BUD-01
    work = o.work_s  # a run that never exited is judged up to when it was done: the exit grace is V1's
    if work > o.budget_total_s:
        how = "was done" if o.never_exited else "ran"
        yield _over_budget("BUD-04", f"the run {how} for {work:.1f} s, over the total budget of "
                           f"{o.budget_total_s:g} s (it finished, so this is a SHOULD: the time depends on the "
                           "host's speed and load; the suite stops a run only at 1.5x the budget, BUD-01)", "",
                           f"{work:.1f} s", o.budget_total_s, "budget_total_s")


def _s(seconds: float) -> str:
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


def cadence(times: list[float], end_s: float, from_start: bool = True) -> str:
    """How often the image wrote progress, e.g. '12 progress records in 640 s, one every 53 s on average; longest
    gap 340 s (120 s to 460 s)'. ``times``: when each record was seen (seconds after start, not empty); ``end_s``:
    when the run exited (or was done); gaps run from the start (``from_start``) or from the first record."""
    end_s = max(end_s, times[-1])
    n = len(times)
    points = ([0.0] if from_start else []) + [*times, end_s]
    gap, start = max(((b - a, a) for a, b in zip(points, points[1:])), default=(0.0, 0.0), key=lambda g: g[0])
    stop = "the end" if start == times[-1] else f"{_s(start + gap)} s"
    return (f"{n} progress record{'s' if n != 1 else ''} in {_s(end_s)} s, one every {_s(end_s / n)} s on "
            f"average; longest gap {_s(gap)} s ({_s(start)} s to {stop})")


def _slow_progress(rule: str, message: str, found: str, budget: float, option: str) -> Violation:
    return Violation(rule, message, file=MONITOR_PATH, found=found, expected=f"<= {budget:g} s ({option})",
                     fix=FIX_PROGRESS)


@check("BUD-02", "the first progress update comes within its budget", area=Area.LIFECYCLE, level=Level.SHOULD,
       needs_success=False)
def bud_02(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    budget = o.budget_first_progress_s
    if budget is None:
        return
    times = _updates(view)
    if times:
        if times[0] > budget:
            yield _slow_progress("BUD-02", f"the first progress update came {times[0]:.1f} s after start, over the "
                                 f"first-progress budget of {budget:g} s; in all, the image wrote "
                                 f"{cadence(times, o.work_s)}", f"{times[0]:.1f} s", budget,
                                 "budget_first_progress_s")
    elif o.duration_s > budget:
        yield _slow_progress("BUD-02", f"the image wrote no progress record during the whole run "
                             f"({o.duration_s:.1f} s), over the first-progress budget of {budget:g} s",
                             "no update", budget, "budget_first_progress_s")


@check("BUD-03", "progress updates come at least every heartbeat budget", area=Area.LIFECYCLE, level=Level.SHOULD,
       needs_success=False)
def bud_03(view: RunView) -> Iterator[Violation]:
    o = view.outcome
    budget = o.budget_heartbeat_s
    if budget is None:
        return
    times = _updates(view)
    if not times:
        return  # BUD-02 reports a run without any update
    end = max(o.work_s, times[-1])  # not the exit grace of a run that never exited
    points = times + [end]  # from the first record: the wait for it is BUD-02's
    gap = max((b - a for a, b in zip(points, points[1:])), default=0.0)
    if gap > budget:
        yield _slow_progress("BUD-03", f"the image wrote {cadence(times, end, from_start=False)}, over the "
                             f"heartbeat budget of {budget:g} s", f"{gap:.1f} s", budget, "budget_heartbeat_s")
