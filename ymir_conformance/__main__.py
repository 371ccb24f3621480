"""``python -m ymir_conformance`` (also the ``ymir-conformance`` command).

* ``judge --in DIR --out DIR``: judge an existing /in + /out pair from your own run, no Docker needed.
* ``rules [--json]``, ``rules explain ID``: the catalogue; one rule with its levels, what the platform does, the fix.
* ``init DIR``: a minimal conformant executor skeleton; ``workspace DIR``: the /in and /out a run would mount.
* To run an image: ``pytest --image=IMG [--ymir-keep]`` (keeps the workspaces).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from typing import Any

import yaml

from . import guard
from .contracts import REGISTRY, load_all
from .contracts.base import Finding, Level, Status, judge
from .errors import UnsafeOutput
from .model import ObjectType, RunOutcome, TaskShape
from .platform import LATEST, Release


def _in_yaml(in_dir: Path, name: str) -> dict[str, Any]:
    """env.yaml / config.yaml of a run's /in, through the guarded reader (they may come from anywhere)."""
    try:
        value = guard.load_yaml(guard.read_text(in_dir, name, guard.CAPS["result-yaml"]))
    except FileNotFoundError:
        raise SystemExit(f"{in_dir / name} does not exist: give the /in directory of the run (--in)") from None
    except (OSError, UnsafeOutput, yaml.YAMLError) as exc:
        raise SystemExit(f"{in_dir / name} cannot be used: {getattr(exc, 'problem', exc)}") from None
    return value if isinstance(value, dict) else {}


def outcome_from_dirs(in_dir: Path, out_dir: Path, exit_code: int, object_type: int | None) -> RunOutcome:
    """Reconstruct what a run was asked to do from its /in (env.yaml flags, config.yaml object_type)."""
    env, cfg = (_in_yaml(in_dir, name) for name in ("env.yaml", "config.yaml"))
    from .model import Task

    tasks = [t for t, flag in ((Task.TRAINING, "run_training"), (Task.MINING, "run_mining"), (Task.INFER, "run_infer"))
             if env.get(flag)]
    ot = ObjectType(object_type or int(cfg.get("object_type", 2)))
    return RunOutcome(image="(external run)", shape=TaskShape.of(*tasks), object_type=ot, in_dir=in_dir,
                      out_dir=out_dir, exit_code=exit_code, timed_out=False, duration_s=0.0, user="?",
                      label="external", asset_cache=_platform_link(in_dir / "assets"),
                      tensorboard_dir=_platform_link(out_dir / "tensorboard"))


def _platform_link(path: Path) -> Path | None:
    """The folder a platform-made link (/in/assets, /out/tensorboard) points to, when it stays inside the run's
    own directory (as in a workspace kept with --ymir-keep); None otherwise: links elsewhere are not followed."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    run_root = path.parent.parent.resolve()
    return target if target.is_relative_to(run_root) and target.is_dir() else None


def print_findings(findings: list[Finding], release: Release) -> int:
    failed = [f for f in findings if f.status is Status.FAILED]
    for f in failed:
        for v in f.violations:
            print(v.render())
    must = [f for f in failed if f.level is Level.MUST]
    passed = sum(f.status is Status.PASSED for f in findings)
    print(f"\nplatform {release}: {passed} rule(s) passed, {len(must)} MUST and {len(failed) - len(must)} SHOULD "
          f"rule(s) broken, {sum(f.status is Status.NOT_EVALUATED for f in findings)} not evaluated")
    return 1 if must else 0


def _rules(args: argparse.Namespace) -> int:
    from .image import IMAGE_CHECKS
    from .onramp import explain, explain_text

    load_all()
    checks = {c.rule: c for c in [*IMAGE_CHECKS.values(), *REGISTRY.values()]}
    for rule in negative_rules():  # judged by the plugin's negative-input test, outside the registry
        checks.setdefault(rule, _negative_check(rule))
    if args.action == "explain":
        rule_id = (args.rule_id or "").upper()
        chk = checks.get(rule_id)
        if chk is None:
            print(f"no rule {args.rule_id!r}; `rules` lists them", file=sys.stderr)
            return 2
        info = explain(chk)
        print(json.dumps(info, indent=2) if args.json else explain_text(info))
        return 0
    if args.json:
        print(json.dumps([{k: v for k, v in explain(c).items() if k not in ("platform", "fix")}
                          for c in checks.values()], indent=2))
        return 0
    from .contracts.basis import BASIS_WORDS

    for chk in checks.values():
        print(f"{chk.rule:<7} {chk.area:<10} {chk.basis:<10} {chk.describe_levels():<28} {chk.title}")
    print("\nbasis: " + "; ".join(f"{b} = {w}" for b, w in BASIS_WORDS.items()))
    return 0


def negative_rules() -> list[str]:
    from .session import NEGATIVE_INPUTS

    return list(dict.fromkeys(r for r, _, _ in NEGATIVE_INPUTS.values()))


def _negative_check(rule: str) -> Any:
    """The Check of a negative-input rule (IN-07, IN-10: judged by the plugin, SHOULD on every release)."""
    from .contracts.base import Area, Check
    from .platform import ReleaseRange
    from .session import NEGATIVE_INPUTS

    what = "; ".join(w for r, w, _ in NEGATIVE_INPUTS.values() if r == rule)
    return Check(rule=rule, title=f"copes with odd input or fails cleanly ({what})", area=Area.LIFECYCLE,
                 levels=((ReleaseRange.parse("all"), Level.SHOULD),), func=lambda view: ())
def _fuzz_workspace(root: Path, case_file: Path) -> int:
    """``workspace DIR --fuzz-case case.json``: the fuzz input's workspace, its docker command and /in digest."""
    import shlex

    from .fuzz import render
    from .onramp import docker_command

    try:
        recipe = json.loads(case_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{case_file}: not a fuzz case file: {exc}", file=sys.stderr)
        return 2
    model = recipe.get("model")
    model_dir = None if model is None else (Path(model) if Path(model).is_absolute() else case_file.parent / model)
    try:
        ws = render.build_workspace(root, recipe, model_dir)
    except (KeyError, TypeError, ValueError) as exc:
        print(f"{case_file}: cannot rebuild the workspace: {exc}", file=sys.stderr)
        return 2
    from .fuzz.case import FuzzCase

    docker = " ".join(shlex.quote(a) for a in docker_command(ws, str(recipe.get("image", "IMAGE"))))
    text = (f"The {recipe.get('kind')} input of a fuzz failure, rebuilt from {case_file}:\n  "
            f"{FuzzCase.from_json(recipe['case']).describe()}\n\nRun the image on it:\n  {docker}\n\n/in digest "
            f"{render.in_digest(ws.in_dir)}\n")
    (root / "README.txt").write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ymir_conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("judge", help="judge an existing /in + /out pair without Docker")
    j.add_argument("--in", dest="in_dir", type=Path, required=True)
    j.add_argument("--out", dest="out_dir", type=Path, required=True)
    j.add_argument("--exit-code", type=int, default=0, help="the container's exit code (default 0)")
    j.add_argument("--object-type", type=int, default=None, help="2, 3 or 4 (default: config.yaml or 2)")
    j.add_argument("--platform", default=str(LATEST), help="release to judge against (default %(default)s)")
    j.add_argument("--json", action="store_true", help="print findings as JSON")
    r = sub.add_parser("rules", help="list the rule catalogue; `rules explain ID` explains one rule")
    r.add_argument("action", nargs="?", choices=["explain"], help="explain one rule")
    r.add_argument("rule_id", nargs="?", metavar="ID", help="the rule to explain, e.g. TR-02")
    r.add_argument("--json", action="store_true", help="print the catalogue (or the explanation) as JSON")
    i = sub.add_parser("init", help="write a minimal conformant executor skeleton (Dockerfile, /img-man, start.py)")
    i.add_argument("dir", type=Path)
    i.add_argument("--base", default=None, help="the Dockerfile's FROM image (default python:3.11-slim)")
    i.add_argument("--force", action="store_true", help="overwrite existing files")
    w = sub.add_parser("workspace", help="write the /in and /out a task run would mount, to develop against")
    w.add_argument("dir", type=Path)
    w.add_argument("--task", choices=["training", "mining", "infer", "mining+infer"], default="training")
    w.add_argument("--format", dest="export_format", default="det-voc", help="export format (training)")
    w.add_argument("--release", default=str(LATEST), help="platform release (default %(default)s)")
    w.add_argument("--object-type", type=int, default=2, help="2, 3 or 4 (default 2)")
    w.add_argument("--template", type=Path, default=None, help="a task template YAML (default: the init skeleton's)")
    w.add_argument("--model-from", type=Path, default=None,
                   help="infer/mining: the /out of your own training run to pack as the model (default: a stub)")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--gpus", default="", help="gpu_id for config.yaml, e.g. 0 (default: '' = CPU mode)")
    w.add_argument("--fuzz-case", type=Path, default=None, metavar="CASE_JSON",
                   help="rebuild, byte for byte, the /in of a fuzz input from the case.json a --ymir-fuzz failure kept "
                        "(under <report-dir>/fuzz/<image>/<search>/); every other option is then taken from it")
    args = p.parse_args(argv)
    if args.cmd == "rules":
        return _rules(args)
    if args.cmd == "init":
        from .scaffold import DEFAULT_BASE, write_skeleton

        try:
            written = write_skeleton(args.dir, base=args.base or DEFAULT_BASE, force=args.force)
        except FileExistsError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"wrote {len(written)} files under {args.dir}; next:\n  docker build -t my/executor:dev {args.dir}\n"
              f"  pytest --image=my/executor:dev")
        return 0
    if args.cmd == "workspace" and args.fuzz_case is not None:
        return _fuzz_workspace(args.dir, args.fuzz_case)
    if args.cmd == "workspace":
        from .onramp import build_workspace, load_templates, workspace_readme

        release = Release.parse(args.release)
        ws = build_workspace(args.dir, task=args.task, export_format=args.export_format, release=release,
                             object_type=ObjectType(args.object_type), templates=load_templates(args.template),
                             seed=args.seed, model_from=args.model_from,
                             gpu_ids=tuple(g for g in args.gpus.split(",") if g))
        readme = workspace_readme(ws, args.task, release)
        (args.dir / "README.txt").write_text(readme)
        print(readme)
        return 0
    release = Release.parse(args.platform)
    outcome = outcome_from_dirs(args.in_dir, args.out_dir, args.exit_code, args.object_type)
    findings = judge(outcome, release)
    if args.json:
        print(json.dumps([f.to_json() for f in findings], indent=2))
        return 1 if any(f.status is Status.FAILED and f.level is Level.MUST for f in findings) else 0
    return print_findings(findings, release)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main", "outcome_from_dirs"]
