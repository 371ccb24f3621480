"""What a failing image prints, measured the way an author sees it: a plain `python -m pytest --image=...` in an
empty directory, on real containers (issue 16 items 2 and 8).

* broken-wrapped-crash: a start.py wrapper prints 200 lines, runs the training in a subprocess that raises
  ValueError, then logs its CalledProcessError traceback and 30 coloured cleanup lines. The failure message, the
  JUnit failure and report.json must show the ValueError line (the real error), and name the full log.
* broken-monitor-spaces: one author mistake (monitor.txt fields separated by spaces) in all four runs of the quick
  profile; with -q it must print at most 40 lines, with -v everything.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from test_plugin_e2e import assert_valid_junit, assert_valid_report  # same directory: prepend import mode

WRAPPED_ERROR = ("ValueError: Expected more than 1 value per channel when training, got input size "
                 "torch.Size([1, 256, 1, 1])")
REPO = Path(__file__).resolve().parents[2]


def plain_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pytest ARGS` in ``cwd`` (an empty directory), the plugin imported from this tree."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", ""))
                                                       if p)}
    return subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


def test_the_wrapped_processs_exception_is_in_the_failure_message_junit_and_report(tmp_path: Path,
                                                                                   fixture_image: Any) -> None:
    image = fixture_image("broken-wrapped-crash")
    proc = plain_pytest(tmp_path, f"--image={image}", "--ymir-tasks=training", "-q", "--junitxml=reports/junit.xml",
                        "--ymir-report-dir=reports")
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "\x1b" not in out  # the cleanup lines' colours are stripped
    # the excerpt comes first, the real error (not the wrapper's CalledProcessError) on its first line, then the
    # last lines, then where the whole log is
    head = next(line for line in out.splitlines() if line.startswith("error in the log ("))
    assert head.endswith(f"): {WRAPPED_ERROR}"), head
    assert f"  {WRAPPED_ERROR}" in out.splitlines()  # the traceback's own exception line
    assert "  followed by the wrapper's subprocess.CalledProcessError: Command '['bash', '/usr/bin/start.sh']' " \
           "returned non-zero exit status 1." in out
    assert out.index("error in the log (") < out.index("last 5 lines of /out/ymir-executor-out.log:") \
        < out.rindex("[cleanup] released the cached tensors of data worker 29")
    log = "reports/logs/ymir-conformance_broken-wrapped-crash_latest/det-voc.log"
    assert f"log: {log} (its last MiB, kept)" in out
    assert WRAPPED_ERROR in (tmp_path / log).read_text()
    assert out.count("error in the log (") == 1  # once per run, whatever else failed in it

    junit = tmp_path / "reports" / "junit.xml"
    assert_valid_junit(junit)
    failures = [f for f in ET.parse(junit).getroot().iter("failure")]
    assert failures and (failures[0].get("message") or "").startswith("[V1 MUST] the container exited 1")
    assert any(WRAPPED_ERROR in (f.text or "") for f in failures)

    data = assert_valid_report(tmp_path / "reports" / "report.json")
    training = next(r for r in data["runs"] if r["id"] == "det-voc")
    excerpt = training["error_excerpt"]
    assert excerpt["error"] == excerpt["exception"] == WRAPPED_ERROR
    assert excerpt["followed_by"][0].startswith("subprocess.CalledProcessError: Command")
    assert training["argv"][:3] == ["docker", "run", "--rm"] and training["argv"][-1] == image  # the full command
    assert WRAPPED_ERROR in (tmp_path / "reports" / "certificate.html").read_text()


def test_one_mistake_in_every_run_prints_at_most_40_lines_quiet_and_everything_verbose(tmp_path: Path,
                                                                                      fixture_image: Any) -> None:
    image = fixture_image("broken-monitor-spaces")
    quiet = plain_pytest(tmp_path, f"--image={image}", "-q")
    out = quiet.stdout
    assert quiet.returncode == 1, out + quiet.stderr
    lines = out.splitlines()
    assert len(lines) <= 40, f"{len(lines)} lines:\n{out}"
    assert "4 failed, 10 passed, 1 skipped" in lines[-1]
    # the first violation in full once, the fix once and wrapped, the others counted with their locations
    assert out.count("    found: ") == 1 and out.count("    fix: Write line 1 of /out/monitor.txt") == 1
    assert all(len(line) <= 100 for line in lines if line.startswith(("    fix: ", "      ")))
    assert sum("found, expected and fix: as in test_monitor[training-det-voc] above" in line for line in lines) == 3
    assert any(line.startswith("[MON-01 MUST] and ") and " more in this run at /out/monitor.txt: line 1" in line
               for line in lines)
    # each run's exit and log named once, one shortened docker command, the others point to it
    for run in ("training run det-voc", "infer run infer-det-voc", "mining run mining-det-voc",
                "mining+infer run mining+infer-det-voc"):
        assert sum(line.startswith(f"{run}, platform 2.5: exit 0 after ") for line in lines) == 1, run
    docker = [line for line in lines if line.startswith("  docker run ")]
    assert len(docker) == 1 and re.fullmatch(r"  docker run -v …:/in:ro -v …:/out \(\+2 mounts\) --user 12345:12345 "
                                             rf"--network none \(\+\d+ flags\) {re.escape(image)}", docker[0]), docker
    assert out.count("docker command like test_monitor[training-det-voc]'s above") == 3
    assert "no error in its log .ymir-work/" in out and "(not kept: --ymir-report-dir keeps logs)" in out
    # the summary: one line for the rule across the four runs
    findings = [line for line in lines if line.startswith("  [MON-01 MUST] ")]
    assert len(findings) == 1 and findings[0].startswith(
        "  [MON-01 MUST] det-voc, infer-det-voc, mining+infer-det-voc, mining-det-voc: line 1 of /out/monitor.txt")

    verbose = plain_pytest(tmp_path, f"--image={image}", "-v")
    vout = verbose.stdout
    assert verbose.returncode == 1, vout + verbose.stderr
    assert vout.count("docker command: docker run --rm -v") == 4  # the full command of every run
    assert vout.count("    fix: Write line 1 of /out/monitor.txt") == 4
    assert vout.count("    found: ") >= 4 * 6  # every violation (up to the checks' own cap) in full
    assert "violation(s) of MON-01 on platform 2.5, by training run det-voc" in vout
    assert len(re.findall(r"^last \d+ lines of /out/ymir-executor-out.log:$", vout, re.M)) == 4
