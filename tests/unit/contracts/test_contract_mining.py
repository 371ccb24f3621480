"""MIN-01..MIN-05 on /out/result.tsv, with the silent-loss counts."""
from __future__ import annotations

from contract_kit import KitFactory
from ymir_conformance.contracts import Level, Status


def test_min01_missing(make: KitFactory) -> None:
    kit = make("mining")
    (kit.out_dir / "result.tsv").unlink()
    assert kit.failed() == {"MIN-01"}
    assert "160011" in kit.violations("MIN-01")[0].message


def test_min01_not_for_infer_only(make: KitFactory) -> None:
    kit = make("infer")
    assert kit.finding("MIN-01").status == Status.NOT_APPLICABLE


def test_min02_space_separator_selects_nothing(make: KitFactory) -> None:
    kit = make("mining")
    kit.mining_tsv("".join(f"{c} {0.9 - i / 10:.3f}\n" for i, c in enumerate(kit.candidates)))
    assert kit.failed() == {"MIN-02"}
    (v,) = kit.violations("MIN-02")
    assert v.lost == 3 and "NOTHING" in v.message and v.level == Level.MUST


def test_min02_combined_run_mentions_predictions(make: KitFactory) -> None:
    kit = make("mining+infer")
    kit.mining_tsv("".join(f"{c} 0.5\n" for c in kit.candidates))
    assert "prediction" in kit.violations("MIN-02")[0].message


def test_min03_unsorted(make: KitFactory) -> None:
    kit = make("mining")
    kit.mining_tsv("".join(f"{c}\t{0.1 + i / 10:.3f}\n" for i, c in enumerate(kit.candidates)))
    assert kit.failed() == {"MIN-03"}
    assert "wrong images" in kit.violations("MIN-03")[0].message


def test_non_float_score_is_min07_should_not_min03(make: KitFactory) -> None:
    """The platform never reads the score (mining._get_topk_asset_ids): a word there loses nothing (SHOULD)."""
    kit = make("mining")
    kit.mining_tsv("".join(f"{c}\thigh\n" for c in kit.candidates))
    assert kit.failed() == {"MIN-07"}
    assert kit.finding("MIN-07").level == Level.SHOULD
    assert "not a number" in kit.violations("MIN-07")[0].message


def test_tensor_scores_still_order_the_lines(make: KitFactory) -> None:
    kit = make("mining")
    kit.mining_tsv("".join(f"{c}\ttensor({0.9 - i / 10:.4f})\n" for i, c in enumerate(kit.candidates)))
    assert kit.failed() == {"MIN-07"}
    (v,) = kit.violations("MIN-07")
    assert v.level == Level.SHOULD and "tensor(0.9000)" in v.found and "constructor" in v.message
    kit.mining_tsv("".join(f"{c}\ttensor({0.1 + i / 10:.4f})\n" for i, c in enumerate(kit.candidates)))
    assert kit.failed() == {"MIN-03", "MIN-07"}  # the wrapped numbers still show the order is wrong


def test_nan_and_inf_scores_are_should(make: KitFactory) -> None:
    kit = make("mining")
    c = kit.candidates
    kit.mining_tsv(f"{c[0]}\tinf\n{c[1]}\tnan\n{c[2]}\t0.5\n")
    assert kit.failed() == {"MIN-07"}
    assert {v.message.split(":")[0] for v in kit.violations("MIN-07")} == {
        "1 line(s) have a score that is infinite", "1 line(s) have a score that is nan"}


def test_integer_string_scores_are_fine(make: KitFactory) -> None:
    kit = make("mining")
    kit.mining_tsv("".join(f"{c}\t{len(kit.candidates) - i}\n" for i, c in enumerate(kit.candidates)))
    assert kit.failed() == set()


def test_min04_duplicates_foreign_missing(make: KitFactory) -> None:
    kit = make("mining")
    c = kit.candidates
    kit.mining_tsv(f"{c[0]}\t0.9\n{c[0]}\t0.8\n/in/assets/zz/foreign.jpg\t0.7\n")
    assert kit.failed() == {"MIN-04"}
    vs = kit.violations("MIN-04")
    assert [v.lost for v in vs] == [1, 1, None]
    assert "2 of 3" in vs[2].message
    kit.mining_tsv("")
    assert kit.failed() == {"MIN-04"}


def test_min05_bare_names_work_but_should_be_paths(make: KitFactory) -> None:
    kit = make("mining")
    kit.mining_tsv("".join(f"{b}\t{0.9 - i / 10:.3f}\n" for i, b in enumerate(kit.basenames)))
    assert kit.failed() == {"MIN-05"}
    assert kit.finding("MIN-05").level == Level.SHOULD
