"""Renderers of the ledger: terminal summary, report.json, and a self-contained HTML certificate."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import __version__
from ..options import Settings
from ..verdict import Ledger
from .html import render_certificate


def report_data(ledger: Ledger, settings: Settings) -> dict[str, object]:
    data = ledger.to_json()
    data["tool"] = {"name": "ymir-conformance", "version": __version__}
    data["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data["settings"] = {
        "profile": settings.profile, "seed": settings.seed, "user": settings.user,
        "gpu_ids": list(settings.gpu_ids), "allow_network": settings.allow_network,
        "releases": [str(r) for r in settings.releases], "strict": settings.strict,
        "budget": settings.budget.__dict__,
    }
    return data


def write_reports(data: dict[str, object], report_dir: Path) -> list[Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "report.json"
    json_path.write_text(json.dumps(data, indent=2, default=str))
    html_path = report_dir / "certificate.html"
    html_path.write_text(render_certificate(data))
    return [json_path, html_path]
