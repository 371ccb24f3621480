"""The terminal summary: per image the verdict per release, per-task timings, and what to fix first."""
from __future__ import annotations

from ..options import Settings
from ..progress import timing_summary
from ..verdict import Ledger, Verdict


def render_summary(ledger: Ledger, settings: Settings) -> list[str]:
    lines: list[str] = []
    for image, info in ledger.images.items():
        lines.append(f"{image} ({info.short_id}), profile {settings.profile}, seed {settings.seed}")
        for release, verdict, must, should in ledger.compatibility(image):
            mark = {Verdict.CONFORMANT: "PASS", Verdict.CONFORMANT_WITH_WARNINGS: "PASS",
                    Verdict.NOT_CONFORMANT: "FAIL", Verdict.INCOMPLETE: "INCOMPLETE",
                    Verdict.UNTESTED: "-"}[verdict]
            detail = ""
            if must:
                detail = "  MUST: " + ", ".join(must)
            if should:
                detail += "  SHOULD: " + ", ".join(should)
            lines.append(f"  platform {str(release):<4} {mark:<10} {verdict}{detail}")
        if len(ledger.releases) > 1:
            lines.append(f"  => {ledger.compatible_summary(image)}")
        lines.append("  task runs:")
        for rec in ledger.records.values():
            if rec.spec.image != image:
                continue
            if rec.outcome is None:
                lines.append(f"    {rec.spec.id:<32} not run: {rec.skipped}")
                continue
            o = rec.outcome
            t = timing_summary(o.progress, o.duration_s)
            first = f"{t['first_update_s']:.1f}s" if t["first_update_s"] is not None else "never"
            status = "timed out" if o.timed_out else f"exit {o.exit_code}"
            extra = f"  [{'; '.join(o.diagnosis)}]" if o.diagnosis else ""
            lines.append(f"    {rec.spec.id:<32} {status:<9} {o.duration_s:6.1f}s  progress updates "
                         f"{int(t['updates'] or 0):>4}, first {first}, longest gap {t['longest_gap_s'] or 0:.1f}s{extra}")
    lines.append(f"container runs: {ledger.container_runs}")
    return lines
