"""V1, LC-03/07/09/10, MON-08 and the timing budgets BUD-01..04."""
from __future__ import annotations

from contract_kit import KitFactory, PENDING, T0, rec
from ymir_conformance.contracts import Level, Status
from ymir_conformance.model import ProgressSample

ERROR_TAIL = "epoch 0\nepoch 1\nTraceback (most recent call last):\n  File x\nValueError: the validation set is empty\n" \
             "ERROR 300002: dataset error\n"


def clean_failure(kit) -> None:  # type: ignore[no-untyped-def]
    kit.monitor(rec(0.3, state=4, code=300002, ts=T0 + 10) + "ValueError: the validation set is empty\n")
    kit.log(ERROR_TAIL)


def test_v1_nonzero_exit_quotes_the_log_tail(make: KitFactory) -> None:
    kit = make("training")
    clean_failure(kit)
    assert kit.failed(exit_code=2) == {"V1"}
    (v,) = kit.violations("V1", exit_code=2)
    assert "exited 2" in v.message and "ERROR 300002: dataset error" in v.message
    assert "300002" in v.message  # the code the platform will report
    assert "epoch 0" not in v.message and "epoch 1" in v.message  # only the last 5 lines


def test_v1_timeout_says_so(make: KitFactory) -> None:
    kit = make("training")
    (v,) = kit.violations("V1", exit_code=None, timed_out=True, duration_s=901.0)
    assert "timed out" in v.message and "901" in v.message
    assert kit.finding("V1").status == Status.PASSED
    # stopped at the profile's total budget: BUD-01 owns it, V1 stays quiet (the exit code is unknown)
    kit.log("sleeping\n")
    assert kit.failed(exit_code=None, timed_out=True, duration_s=901.0, budget_total_s=900.0) == {"BUD-01"}
    (b,) = kit.violations("BUD-01", exit_code=None, timed_out=True, duration_s=901.0, budget_total_s=900.0)
    assert "stopped" in b.message and "sleeping" in b.message


def test_lc03_read_only_in(make: KitFactory) -> None:
    kit = make("training")
    kit.log("caching labels\nOSError: [Errno 30] Read-only file system: '/in/train-index.cache'\nfell back to /tmp\n")
    assert kit.failed() == {"LC-03"}
    assert kit.finding("LC-03").level == Level.MUST
    assert kit.finding("LC-03", "1.1").level == Level.SHOULD


def test_lc03_ignores_other_paths_and_checks_digests(make: KitFactory) -> None:
    kit = make("training")
    kit.log("OSError: [Errno 30] Read-only file system: '/bin/x' /input /init\n")
    assert kit.failed() == set()
    assert kit.failed(in_dir_digest_before="aaa", in_dir_digest_after="bbb") == {"LC-03"}
    assert kit.failed(in_dir_digest_before="aaa", in_dir_digest_after="aaa") == set()


def test_lc07_cpu_mode_crash(make: KitFactory) -> None:
    kit = make("training", gpu_id="")
    kit.monitor(rec(0.0, state=4, code=300101, ts=T0 + 10) + "cuda error\n")
    kit.log("loading\nRuntimeError: Found no NVIDIA driver on your system\n")
    assert kit.failed(exit_code=1, gpu_ids=()) == {"V1", "LC-07"}
    assert "LC-07" not in kit.failed(exit_code=1, gpu_ids=("0",))  # not CPU mode


def test_lc07_clean_300102_is_fine(make: KitFactory) -> None:
    kit = make("training", gpu_id="")
    kit.monitor(rec(0.0, state=4, code=300102, ts=T0 + 10) + "no gpu\n")
    kit.log("ERROR: no GPU available (gpu_id is empty), cuda required\n")
    assert kit.failed(exit_code=1, gpu_ids=()) == {"V1"}


def test_lc07_empty_gpu_id_diagnosed_by_rerun(make: KitFactory) -> None:
    """int('') in CPU mode: no CUDA word in the log, but the rerun with gpu_id '0' (still CPU) succeeded."""
    kit = make("training", gpu_id="")
    kit.monitor(rec(0.0, state=4, code=160004, ts=T0 + 10) + "ValueError\n")
    kit.log("loading\nValueError: invalid literal for int() with base 10: ''\n")
    assert kit.failed(exit_code=1, gpu_ids=()) == {"V1"}  # nothing in the log names the GPU
    note = "failed in CPU mode with gpu_id '' (exit 1), succeeded when rerun with gpu_id '0'"
    assert kit.failed(exit_code=1, gpu_ids=(), needs_gpu_id=True, diagnosis=[note]) == {"V1", "LC-07"}
    finding = kit.finding("LC-07", exit_code=1, gpu_ids=(), needs_gpu_id=True, diagnosis=[note])
    [v] = finding.violations
    assert finding.level == Level.SHOULD and v.where == "gpu_id" and "invalid literal for int()" in v.found
    assert "gpu_id: '0'" in v.message
    kit.monitor(rec(0.0, state=4, code=300102, ts=T0 + 10) + "no gpu\n")  # a clean 300102 is fine regardless
    assert kit.failed(exit_code=1, gpu_ids=(), needs_gpu_id=True) == {"V1"}


def test_lc09_and_lc10_retries(make: KitFactory) -> None:
    kit = make("training")
    assert kit.failed(retried_as_root=True, diagnosis=["failed as 1000:1000, passed as root"]) == {"LC-09"}
    (v,) = kit.violations("LC-09", retried_as_root=True)
    assert "deployment" in v.message and v.level == Level.SHOULD


NETWORK_LOG = ("downloading pretrained weights from https://github.com/ultralytics/assets/yolov5s.pt\n"
               "Traceback (most recent call last):\n  File \"/app/start.py\", line 3, in <module>\n"
               "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>\n")


def test_lc10_from_the_log_names_the_url(make: KitFactory) -> None:
    """Under --network none, a failed run whose log shows a network failure: LC-10, naming the URL, no retry."""
    kit = make("training")
    clean_failure(kit)
    kit.log(NETWORK_LOG)
    assert kit.failed(exit_code=1) == {"V1", "LC-10"}
    (v,) = kit.violations("LC-10", exit_code=1)
    assert v.level == Level.SHOULD and "https://github.com/ultralytics/assets/yolov5s.pt" in v.message
    assert "name-resolution" in v.message and "Temporary failure in name resolution" in v.found
    assert "LC-10" not in kit.failed(exit_code=0)  # it coped without the network
    assert "LC-10" not in kit.failed(exit_code=1, network=True)  # it had one (--ymir-allow-network)
    assert "LC-10" not in kit.failed(exit_code=1, oom_killed=True)  # the memory limit explains it (LC-12)


def test_lc10_needs_network_from_an_all_retry(make: KitFactory) -> None:
    kit = make("training")
    clean_failure(kit)
    note = "retried on an internal network (no route anywhere): --ymir-diagnose=all (exit 1)"
    assert kit.failed(exit_code=1, needs_network=True, diagnosis=[note]) == {"V1", "LC-10"}
    (v,) = kit.violations("LC-10", exit_code=1, needs_network=True, diagnosis=[note])
    assert "internal network" in v.found and "failed run is the judged one" in v.message


def test_v1_lists_consequences_of_the_same_exit_as_context(make: KitFactory) -> None:
    """One cause, one MUST: a crash that leaves monitor.txt at state 2 fails V1 only; MON-07 is listed under
    V1 as context (status consequence). With exit 0, MON-07 stays a failure of its own."""
    kit = make("training")
    kit.defaults["progress"] = [ProgressSample(0.1, PENDING), ProgressSample(2.0, rec(0.1, ts=T0 + 2))]
    kit.monitor(rec(0.4, ts=T0 + 9.5))
    kit.log("ValueError: bad config\n")
    assert kit.failed(exit_code=1) == {"V1"}
    assert kit.finding("MON-07", exit_code=1).status == Status.CONSEQUENCE
    assert "a consequence of V1 (the container exited 1)" in kit.finding("MON-07", exit_code=1).reason
    (v1,) = kit.violations("V1", exit_code=1)
    assert len(v1.context) == 1 and v1.context[0].startswith("[MON-07 MUST] the container exited 1")
    assert "consequence of the same failure" in v1.render() and v1.to_json()["context"] == list(v1.context)
    # a failed output check is not evaluated either: the same exit, not a finding
    assert kit.finding("TR-01", exit_code=1).status == Status.NOT_EVALUATED
    # the image exited 0 with a state-4 record: MON-07 is its own MUST failure, V1 passes
    kit.monitor(rec(1.0, state=4, code=300001, ts=T0 + 9.5))
    assert "MON-07" in kit.failed(exit_code=0)
    # a run whose failure is not judged (a negative input it may refuse) keeps MON-07 as a failure of its own
    from ymir_conformance.contracts import judge
    kit.monitor(rec(0.4, ts=T0 + 9.5))
    out = judge(kit.outcome(exit_code=1), with_consequences=False)
    assert {f.check.rule for f in out if f.status == Status.FAILED} == {"V1", "MON-07"}


def test_mon08_error_hidden_by_progress_lines(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(0.3, state=4, code=300002, ts=T0 + 10) + "the validation set is empty\n")
    kit.log("ValueError: boom\n" + "".join(f"saving checkpoint {i}\n" for i in range(5)))
    assert kit.failed(exit_code=1) == {"V1", "MON-08"}


def test_mon08_blank_tail(make: KitFactory) -> None:
    kit = make("training")
    clean_failure(kit)
    kit.log("ERROR 300002\n\n\n\n\n\n")
    assert kit.failed(exit_code=1) == {"V1", "MON-08"}


def test_mon08_monitor_message_in_tail_is_enough(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(0.3, state=4, code=300004, ts=T0 + 10) + "weights missing at /in/models/best.pt\n")
    kit.log("step 1\nstep 2\nweights missing at /in/models/best.pt\n")
    assert kit.failed(exit_code=1) == {"V1"}


def test_budgets(make: KitFactory) -> None:
    kit = make("training")
    assert kit.failed(budget_total_s=5.0, duration_s=10.0) == {"BUD-04"}  # finished late: not a hang
    (v,) = kit.violations("BUD-04", budget_total_s=5.0, duration_s=10.0)
    assert "5" in v.message and "10.0" in v.message
    assert kit.failed(budget_total_s=20.0) == set()
    assert kit.failed(budget_first_progress_s=1.0) == {"BUD-02"}  # first update at 2.0 s
    assert kit.failed(budget_first_progress_s=3.0) == set()
    assert kit.failed(budget_heartbeat_s=3.0) == {"BUD-03"}  # 2.0 -> 6.0 s
    assert kit.failed(budget_heartbeat_s=5.0) == set()
    assert kit.finding("BUD-04", budget_total_s=5.0, duration_s=10.0).level == Level.SHOULD  # depends on load
    assert kit.finding("BUD-01", budget_total_s=5.0, duration_s=10.0).status == Status.PASSED  # it ended
    assert kit.finding("BUD-01", budget_total_s=5.0, duration_s=7.6, timed_out=True,
                       exit_code=None).level == Level.MUST  # stopped at the hard limit: a hang stays MUST
    only_pending = [ProgressSample(0.1, PENDING)]
    assert "BUD-02" in kit.failed(budget_first_progress_s=5.0, progress=only_pending)
    assert kit.finding("BUD-01").status == Status.PASSED  # no budget: nothing to violate


def test_progress_budgets_are_should_on_every_release_and_say_how_often(make: KitFactory) -> None:
    """First progress and heartbeat depend on the host's speed and load (the platform has no deadline): SHOULD on
    every release, and the message counts the records and their cadence. Records at 2, 6 and 9 s of a 10 s run."""
    kit = make("training")
    for release in ("1.1", "2.0", "2.3", "2.5"):
        assert kit.finding("BUD-03", release=release, budget_heartbeat_s=3.0).level == Level.SHOULD
        assert kit.finding("BUD-02", release=release, budget_first_progress_s=1.0).level == Level.SHOULD
    (v,) = kit.violations("BUD-03", budget_heartbeat_s=3.0)
    assert v.message == ("the image wrote 3 progress records in 10 s, one every 3.3 s on average; longest gap "
                         "4.0 s (2.0 s to 6.0 s), over the heartbeat budget of 3 s"), v.message
    assert v.found == "4.0 s" and "once per epoch" in v.fix and "--ymir-budget-heartbeat" in v.fix
    (v,) = kit.violations("BUD-02", budget_first_progress_s=1.0)
    assert "came 2.0 s after start" in v.message and "3 progress records in 10 s" in v.message
    assert "longest gap 4.0 s" in v.message


def test_heartbeat_gap_at_the_end_names_the_end(make: KitFactory) -> None:
    kit = make("training")
    late = [ProgressSample(0.1, PENDING), ProgressSample(1.0, rec(0.1, ts=T0 + 1)),
            ProgressSample(2.0, rec(1.0, ts=T0 + 2))]
    (v,) = kit.violations("BUD-03", budget_heartbeat_s=5.0, progress=late, duration_s=30.0)
    assert "2 progress records in 30 s, one every 15 s on average; longest gap 28 s (2.0 s to the end)" in v.message
