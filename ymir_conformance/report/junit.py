"""The JUnit XML suite properties of a session, from the finished report data (the same answers and words as
the terminal, report.json, the certificate and the badge)."""
from __future__ import annotations

from typing import Any


def _flag(value: bool | None) -> str:
    return "untested" if value is None else str(bool(value)).lower()


def junit_properties(data: dict[str, Any], exit_status: int) -> list[tuple[str, str]]:
    """(name, value) pairs: settings, then per release ``ymir.verdict.<r>`` (the conformance verdict),
    ``ymir.platform_accepts.<r>`` (true / false / untested), ``ymir.gated.<r>`` and ``ymir.answer.<r>`` (both
    answers in words), then the same per image (``ymir.image.<image>.*``)."""
    s = data.get("settings", {})
    props: list[tuple[str, object]] = [
        ("ymir.tool", f"ymir-conformance {data.get('tool', {}).get('version', '')}"),
        ("ymir.profile", s.get("profile")), ("ymir.seed", s.get("seed")),
        ("ymir.platform", ",".join(data.get("releases", []))), ("ymir.gate", ",".join(s.get("gate", []))),
        ("ymir.strict", s.get("strict")), ("ymir.exit_status", exit_status),
    ]
    for v in data.get("verdicts", []):
        r = v["release"]
        props += [(f"ymir.verdict.{r}", v["verdict"]), (f"ymir.platform_accepts.{r}", _flag(v.get("platform_accepts"))),
                  (f"ymir.gated.{r}", _flag(v.get("gated"))), (f"ymir.answer.{r}", v.get("words", v["verdict"]))]
    for img in data.get("images", []):
        name = img["image"]
        props += [("ymir.image", name), (f"ymir.image.{name}.id", img["image_id"])]
        for row in img["compatibility"]:
            detail = "; ".join(x for x in (("MUST: " + ", ".join(row["must"])) if row["must"] else "",
                                           ("SHOULD: " + ", ".join(row["should"])) if row["should"] else "") if x)
            props += [(f"ymir.image.{name}.verdict.{row['release']}", row["verdict"] + (f" ({detail})" if detail else "")),
                      (f"ymir.image.{name}.platform_accepts.{row['release']}", _flag(row.get("platform_accepts")))]
    props.append(("ymir.container_runs", data.get("container_runs", 0)))
    return [(name, "" if value is None else str(value)) for name, value in props]


__all__ = ["junit_properties"]
