"""LC-11/12/13 (the suite's containment: the platform sets no limits) and V1 for a run that never exits."""
from __future__ import annotations

from contract_kit import KitFactory, T0, rec
from ymir_conformance.contracts import Level, Status
from ymir_conformance.model import ProgressSample

LIMITS = {"pids": 4096, "memory": "256m", "log": "16m", "no_new_privileges": True}
MiB = 1024 * 1024


def test_conformant_run_within_limits_passes_them(make: KitFactory) -> None:
    kit = make("training")
    assert kit.failed(limits=LIMITS, pids_peak=40, memory_peak_bytes=100 * MiB, log_bytes=2000,
                      log_cap_bytes=64 * MiB) == set()
    for rule in ("LC-11", "LC-12", "LC-13"):
        assert kit.finding(rule, limits=LIMITS).status == Status.PASSED


def test_levels_on_every_release(make: KitFactory) -> None:
    kit = make("training")
    for release in ("1.1", "2.0", "2.3", "2.5"):
        assert kit.finding("LC-11", release).level == Level.MUST
        assert kit.finding("LC-12", release).level == Level.MUST
        assert kit.finding("LC-13", release).level == Level.SHOULD


def test_lc11_fork_bomb_fails_even_when_the_run_failed(make: KitFactory) -> None:
    kit = make("training")
    kit.log("spawning workers\nRuntimeError: can't start new thread\n")
    bombed = dict(limits=LIMITS, hit_pids_limit=True, pids_peak=4096, exit_code=1)
    findings = [f for f in kit.judge(**bombed) if f.status == Status.FAILED]
    assert [f.check.rule for f in findings][:2] == ["LC-11", "V1"]  # the limit rule is named first
    (v,) = kit.violations("LC-11", **bombed)
    assert "4096" in v.message and "--ymir-limits=off" in v.message
    assert "sets no such limit" in v.message and "4096" in v.found
    (v1,) = kit.violations("V1", **bombed)
    assert "pids limit of 4096" in v1.message and "LC-11" in v1.message
    assert kit.finding("LC-11").check.title.startswith("stays within a pids limit")
    assert "platform sets none" in kit.finding("LC-11").check.title


def test_lc12_oom_kill_names_the_limit_and_how_to_reproduce(make: KitFactory) -> None:
    kit = make("training")
    kit.log("loading dataset\n")
    oom = dict(limits=LIMITS, oom_killed=True, memory_peak_bytes=256 * MiB, exit_code=137)
    assert kit.failed(**oom) == {"LC-12", "V1"}  # no MON-08: a signal kill leaves the image no chance to print
    (v,) = kit.violations("LC-12", **oom)
    assert "--memory=256m" in v.message and "--ymir-limits=off" in v.message and "256 MiB" in v.found
    (v1,) = kit.violations("V1", **oom)
    assert "memory limit of 256m" in v1.message and "LC-12" in v1.message
    # an OOM kill of a child process the image survived: outputs judged, LC-12 still fails
    assert kit.failed(limits=LIMITS, oom_killed=True, exit_code=0) == {"LC-12"}


def test_lc13_log_flood_is_a_should(make: KitFactory) -> None:
    kit = make("training")
    flood = dict(log_bytes=200 * MiB, log_bytes_dropped=136 * MiB, log_cap_bytes=64 * MiB)
    assert kit.failed(**flood) == {"LC-13"}
    (v,) = kit.violations("LC-13", **flood)
    assert v.level == Level.SHOULD
    assert "200 MiB" in v.message and "64 MiB" in v.message and "136 MiB" in v.message
    assert "every byte" in v.message and "sets no limit" in v.message
    assert kit.failed(log_bytes=64 * MiB, log_bytes_dropped=0, log_cap_bytes=64 * MiB) == set()


def test_no_limits_no_findings(make: KitFactory) -> None:
    """--ymir-limits=off: nothing measured against a limit, the rules have nothing to report."""
    kit = make("training")
    assert kit.failed(limits={}) == set()


def test_v1_never_exited_is_reported_and_outputs_are_still_judged(make: KitFactory) -> None:
    kit = make("training")
    hung = dict(never_exited=True, exit_code=137, done_s=9.0, duration_s=39.5, exit_grace_s=30.0,
                budget_total_s=20.0, budget_heartbeat_s=15.0)
    assert kit.failed(**hung) == {"V1"}  # not BUD-01 (done at 9 s of a 20 s budget), not BUD-03 (grace)
    (v,) = kit.violations("V1", **hung)
    assert "never exits" in v.message and "RUNNING forever" in v.message
    assert "platform waits for the container to exit" in v.message
    assert "/out/models/result.yaml" in v.message and "30 s" in v.message
    # its outputs are judged like a finished run's: a broken result.yaml is still found
    assert kit.finding("TR-01", **hung).status != Status.NOT_EVALUATED
    kit.result_yaml("not: [valid")
    assert "V1" in kit.failed(**hung) and len(kit.failed(**hung)) > 1


def test_never_exited_but_over_budget_before_done_is_bud04(make: KitFactory) -> None:
    kit = make("training")
    slow = dict(never_exited=True, exit_code=137, done_s=25.0, duration_s=55.0, exit_grace_s=30.0,
                budget_total_s=20.0)
    assert kit.failed(**slow) == {"V1", "BUD-04"}
    (b,) = kit.violations("BUD-04", **slow)
    assert "25.0" in b.message and "done" in b.message


def test_never_exited_mining_infer_names_both_files(make: KitFactory) -> None:
    kit = make("mining+infer")
    kit.monitor(rec(1.0, state=3, ts=T0 + 9))
    progress = [ProgressSample(2.0, rec(0.5, ts=T0 + 2)), ProgressSample(9.0, rec(1.0, state=3, ts=T0 + 9))]
    (v,) = kit.violations("V1", never_exited=True, exit_code=137, done_s=9.2, exit_grace_s=3.0, progress=progress)
    assert "/out/result.tsv" in v.message and "/out/infer-result.json" in v.message


def test_lc16_throttled_most_of_its_life_is_a_should_naming_the_limit(make: KitFactory) -> None:
    kit = make("training")
    cpu = {**LIMITS, "cpus": 1.0}
    assert kit.finding("LC-16", "2.5").level == Level.SHOULD
    assert kit.failed(limits=cpu, cpu_periods=400, cpu_throttled=150, cpu_usage_s=39.0) == set()  # 38 %: fine
    assert kit.failed(limits=cpu, cpu_periods=30, cpu_throttled=30) == set()  # 3 s of work: too short to judge
    throttled = dict(limits=cpu, cpu_periods=400, cpu_throttled=350, cpu_usage_s=40.0)
    assert kit.failed(**throttled) == {"LC-16"}
    (v,) = kit.violations("LC-16", **throttled)
    assert "(--cpus=1)" in v.message and "1 cores" in v.found and "350 of its 400" in v.message and "88%" in v.message
    assert "--ymir-limits=cpus=N" in v.message and "sched_getaffinity" in v.fix
    # no CPU limit (--ymir-limits=off or cpus=off): nothing to judge
    assert kit.finding("LC-16", limits=LIMITS, cpu_periods=400, cpu_throttled=400).status != Status.FAILED
