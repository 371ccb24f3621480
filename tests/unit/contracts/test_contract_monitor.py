"""MON-01..MON-07 on the final monitor.txt and on every live sample."""
from __future__ import annotations

from contract_kit import KitFactory, PENDING, T0, TASK_ID, rec
from ymir_conformance.contracts import Level, Status
from ymir_conformance.model import ProgressSample as S


def test_mon01_space_separated_final(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(f"{TASK_ID} {T0 + 9.5} 1.00 2 0\n")
    assert kit.failed() == {"MON-01"}
    (v,) = kit.violations("MON-01")
    assert "TAB" in v.message and "150404" in v.message and v.where == "line 1" and v.fix


def test_mon01_state_not_an_int(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(f"{TASK_ID}\t{T0 + 9.5}\t1.0\tRUNNING\t0\n")
    assert kit.failed() == {"MON-01"}
    assert "state" in kit.violations("MON-01")[0].found


def test_mon01_state_out_of_range_and_bad_code(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(f"{TASK_ID}\t{T0 + 9.5}\t1.0\t7\t0\n")
    assert kit.failed() == {"MON-01"}
    kit.monitor(f"{TASK_ID}\t{T0 + 9.5}\t1.0\t2\tok\n")
    assert kit.failed() == {"MON-01"}


def test_mon01_bad_live_sample_even_when_final_is_fine(make: KitFactory) -> None:
    kit = make("training")
    progress = [S(0.1, PENDING), S(2.0, f"{TASK_ID} {T0 + 2} 0.10 2 0\n"), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=progress) == {"MON-01"}
    assert "2.0 s" in kit.violations("MON-01", progress=progress)[0].where


def test_mon01_missing_and_empty_final(make: KitFactory) -> None:
    kit = make("training")
    (kit.out_dir / "monitor.txt").unlink()
    assert "MON-01" in kit.failed()
    kit.monitor("")
    assert "MON-01" in kit.failed()


def test_empty_samples_are_fine(make: KitFactory) -> None:
    kit = make("training")
    progress = [S(0.1, PENDING), S(1.0, ""), S(2.0, rec(0.1, ts=T0 + 2)), S(3.0, ""), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=progress) == set()


def test_mon02_appending_after_the_platform_line(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(PENDING + rec(0.5, ts=T0 + 5) + rec(1.0, ts=T0 + 9.5))
    progress = [S(0.1, PENDING), S(5.0, PENDING + rec(0.5, ts=T0 + 5))]
    assert kit.failed(progress=progress) == {"MON-02"}
    (v,) = kit.violations("MON-02", progress=progress)
    assert "0 %" in v.message and "line 1" in v.message and v.level == Level.MUST


def test_mon02_appending_records(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(0.5, ts=T0 + 5) + rec(1.0, ts=T0 + 9.5))
    assert "MON-02" in kit.failed()


def test_mon02_traceback_after_state_4_is_allowed(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(0.5, state=4, code=300004, ts=T0 + 10) + "Traceback (most recent call last):\n  x\nKeyError: 1\n")
    kit.log("KeyError: 1\n")
    assert kit.failed(exit_code=1) == {"V1"}


def test_mon03_half_written_sample(make: KitFactory) -> None:
    kit = make("training")
    progress = [S(0.1, PENDING), S(2.0, rec(0.1, ts=T0 + 2)), S(4.0, f"{TASK_ID}\t{T0 + 4:.6f}\t0."),
                S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=progress) == {"MON-03"}
    assert kit.violations("MON-03", progress=progress)[0].level == Level.SHOULD


def test_mon04_progress_backwards_and_out_of_range(make: KitFactory) -> None:
    kit = make("training")
    back = [S(0.1, PENDING), S(2.0, rec(0.2, ts=T0 + 2)), S(4.0, rec(0.0, ts=T0 + 4)), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=back) == {"MON-04"}
    assert kit.finding("MON-04").level == Level.SHOULD
    pct = [S(0.1, PENDING), S(2.0, rec(35.0, ts=T0 + 2)), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=pct) == {"MON-04"}
    assert "percentage" in kit.violations("MON-04", progress=pct)[0].message


def test_mon04_must_end_at_one(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(0.6, ts=T0 + 9.5))
    progress = [S(0.1, PENDING), S(6.0, rec(0.6, ts=T0 + 9.5))]
    assert kit.failed(progress=progress) == {"MON-04"}
    kit.monitor(PENDING)
    assert kit.failed(progress=[S(0.1, PENDING)]) == {"MON-04"}  # never reported progress


def test_mon05_timestamps(make: KitFactory) -> None:
    kit = make("training")
    same = [S(0.1, PENDING), S(2.0, rec(0.1, ts=T0 + 2)), S(4.0, rec(0.5, ts=T0 + 2)), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=same) == {"MON-05"}
    back = [S(0.1, PENDING), S(2.0, rec(0.1, ts=T0 + 5)), S(4.0, rec(0.5, ts=T0 + 3)), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=back) == {"MON-05"}


def test_mon05_ignores_the_platform_line(make: KitFactory) -> None:
    kit = make("training")
    pending_late = rec(0.0, state=1, ts=T0 + 100)  # a harness clock ahead of the image's: not a violation
    progress = [S(0.1, pending_late), S(2.0, rec(0.1, ts=T0 + 2)), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=progress) == set()


def test_mon06_state_3(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(1.0, state=3, ts=T0 + 9.5))
    assert kit.failed() == {"MON-06"}


def test_mon07_state_4_but_exit_0(make: KitFactory) -> None:
    kit = make("training")
    progress = [S(0.1, PENDING), S(2.0, rec(0.1, state=4, code=1, ts=T0 + 2)), S(9.0, rec(1.0, ts=T0 + 9))]
    assert kit.failed(progress=progress) == {"MON-07"}


def test_mon07_failure_without_state_4(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(0.4, ts=T0 + 9.5))
    kit.log("ValueError: bad config\n")
    progress = [S(0.1, PENDING), S(2.0, rec(0.1, ts=T0 + 2))]
    # one cause, one MUST: MON-07 is a consequence of the same exit, listed under V1
    assert kit.failed(exit_code=1, progress=progress) == {"V1"}
    assert kit.finding("MON-07", exit_code=1, progress=progress).status == Status.CONSEQUENCE
    kit.monitor(rec(0.4, state=4, code=0, ts=T0 + 9.5))
    assert kit.finding("MON-07", exit_code=1, progress=progress).status == Status.CONSEQUENCE
    assert "column 5" in kit.violations("MON-07", exit_code=1, progress=progress)[0].message
    assert "column 5" in kit.violations("V1", exit_code=1, progress=progress)[0].context[0]
    kit.monitor(rec(0.4, state=4, code=300001, ts=T0 + 9.5))
    assert kit.failed(exit_code=1, progress=progress) == {"V1"}
