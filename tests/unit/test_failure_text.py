"""Failure text sized for a human (failure_text.py) and the one-line-per-rule findings summary."""
from __future__ import annotations

from ymir_conformance.contracts.base import Level, Violation, cap
from ymir_conformance.failure_text import Shown, headline, same_shape, short_command, violations, wrap
from ymir_conformance.report.terminal import finding_lines

FIX = ("Write line 1 of /out/monitor.txt as TAB-separated fields: task_id (from /in/env.yaml), the time as seconds "
       "since the epoch, the progress as a float in [0, 1], the state as an integer and the state code as an "
       "integer. Use '\\t' between fields, never spaces: the platform splits on TAB.")
MSG = "line 1 of /out/monitor.txt has 1 TAB-separated field(s), the platform needs at least 4; it splits on TAB"


def samples(n: int) -> list[Violation]:
    return list(cap(Violation("MON-01", MSG if i == 0 else f"{MSG} (sample {i})", file="/out/monitor.txt",
                              where="line 1" + ("" if i == 0 else f" (live sample at {i / 10:.1f} s)"),
                              found=f"'t1 {i} 0.5 2 0'", expected="<task_id>\\t<timestamp>...", fix=FIX)
                    for i in range(n)))


def test_the_first_violation_in_full_the_fix_once_and_wrapped_the_rest_counted_on_one_line() -> None:
    shown = Shown()
    text = violations(samples(120), shown, "test_monitor[training-det-voc]")
    assert text[0].startswith(f"[MON-01 MUST] {MSG}\n    at: /out/monitor.txt:line 1\n    found: 't1 0 0.5 2 0'")
    fix = [line for line in text if line.startswith(("    fix: ", "      "))]
    assert len(fix) > 1 and all(len(line) <= 100 for line in fix)
    assert " ".join(line.strip() for line in fix).removeprefix("fix: ") == FIX
    assert text[-1].startswith("[MON-01 MUST] and 119 more in this run at /out/monitor.txt: line 1 (live sample at "
                               "0.1 s), ") and text[-1].endswith("more)")
    assert len(text) == 1 + len(fix) + 1


def test_a_later_failure_with_the_same_first_violation_points_to_it() -> None:
    shown = Shown()
    violations(samples(7), shown, "test_monitor[training-det-voc]")
    text = violations(samples(12), shown, "test_monitor[infer-det-voc]")
    assert len(text) == 1
    assert text[0].startswith("[MON-01 MUST] line 1 of /out/monitor.txt has 1 TAB-separated field(s), the platform "
                              "needs at least 4 … (12 in this run: /out/monitor.txt: line 1, ")
    assert text[0].endswith("found, expected and fix: as in test_monitor[training-det-voc] above)")


def test_a_different_first_violation_is_shown_in_full_but_its_fix_only_once() -> None:
    shown = Shown()
    violations(samples(2), shown, "test_a")
    other = Violation("MON-01", "another message", file="/out/monitor.txt", where="line 1", found="x", fix=FIX)
    text = violations([other], shown, "test_b")
    assert text == [other.render(with_fix=False), "    fix: as in test_a above"]


def test_violations_of_several_rules_each_get_their_first_in_full() -> None:
    a = Violation("TR-02", "mAP = 41.41 is outside [0, 1]", file="/out/models/result.yaml", where="a", fix="divide",
                  level=Level.MUST)
    b = Violation("TR-03", "best_stage_name 'best' is not a stage", file="/out/models/result.yaml", fix="name one")
    text = violations([a, a, b], Shown(), "t")
    assert text == [a.render(with_fix=False), "    fix: divide", "[TR-02 MUST] and 1 more in this run at "
                    "/out/models/result.yaml: a", b.render(with_fix=False), "    fix: name one"]


def test_hostile_text_in_locations_and_fixes_is_escaped() -> None:
    v = Violation("TR-07", "stage key", file="/out/models/result.yaml", where="model_stages.\x1b]52;c;aGk=\x07",
                  fix="rename \u202eevil")
    text = violations([v, v], Shown(), "t")
    assert "\x1b" not in text[-1] and "\u202e" not in "".join(text[1:])


def test_wrap_keeps_short_text_on_one_line() -> None:
    assert wrap("fix: ", "do this") == ["    fix: do this"]


def test_the_docker_command_is_shortened_with_the_image_user_and_network() -> None:
    argv = ["docker", "run", "--rm", "-v/w/s/det-voc/in:/in:ro", "-v/w/s/det-voc/out:/out",
            "-v/w/s/det-voc/asset-cache:/w/s/det-voc/asset-cache:rw", "--user", "12345:12345",
            "--gpus", '"device=0"', "--shm-size=16G", "--network", "none", "--pids-limit=4096", "--memory=8g",
            "--name", "ymir-conformance-det-voc-1234", "my/det:1.0"]
    short = short_command(argv)
    assert short == ('docker run -v …:/in:ro -v …:/out (+1 mount) --user 12345:12345 --gpus "device=0" '
                     "--network none (+3 flags) my/det:1.0")
    infer = [a for a in argv if "asset-cache" not in a]
    assert same_shape(short_command(infer)) == same_shape(short)
    archive = ["docker", "run", "--rm", "--mount=type=volume,src=v1,dst=/in,readonly",
               "--mount=type=volume,src=v2,dst=/out", "--name", "n", "img"]
    assert short_command(archive) == "docker run -v …:/in:ro -v …:/out img"


def test_headline_cuts_at_the_first_clause() -> None:
    assert headline(MSG) == "line 1 of /out/monitor.txt has 1 TAB-separated field(s), the platform needs at least 4 …"
    assert headline("short; x") == "short; x"


def finding(run: str, message: str, releases: tuple[str, ...] = ("2.5",), rule: str = "MON-01", level: str = "MUST") -> dict[str, object]:
    return {"rule": rule, "level": level, "image": "img", "run": run, "releases": list(releases),
            "message": message}


def test_one_findings_line_per_rule_across_runs() -> None:
    data = {"releases": ["2.5"], "images": [{"image": "img"}], "findings": [
        finding("det-voc", "spaces"), finding("det-voc", "... and 100 more like the above"),
        finding("infer-det-voc", "spaces"), finding("mining-det-voc", "spaces"),
        finding("det-voc", "late", rule="MON-06", level="SHOULD")]}
    assert finding_lines(data) == [
        "findings:", "  [MON-01 MUST] det-voc, infer-det-voc, mining-det-voc: spaces (+102 more)",
        "  [MON-06 SHOULD] det-voc: late"]


def test_findings_on_different_releases_stay_apart() -> None:
    data = {"releases": ["2.3", "2.5"], "images": [{"image": "img"}], "settings": {"gate": ["2.5"]},
            "findings": [finding("a@2.3", "old", ("2.3",), rule="TR-12"), finding("a", "new", rule="TR-12")]}
    assert finding_lines(data) == ["findings:", "  [TR-12 MUST] a@2.3: old [platform 2.3] (not gating)",
                                   "  [TR-12 MUST] a: new [platform 2.5]"]
