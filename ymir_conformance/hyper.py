"""Hyper-parameters as a platform user edits them (``--ymir-set``) and dataset sizes (``--ymir-dataset-size``).

A platform user edits the template in the web form; the UI then drops empty (training) or falsy (mining/infer)
values and the platform adds its own keys (contract §3.3). ``--ymir-set KEY=VALUE`` is such an edit: applied to the
template dict *before* :func:`ymir_conformance.workspace.ui_filtered`, so an edit to ``''`` (or, for mining/infer,
``0``/``false``) removes the key exactly as the web form would. Keys the platform sets itself are refused.

Spelling: ``training.epochs=1`` (one template: training, mining or infer) or ``epochs=1`` (every template the
suite sends). The value is a YAML scalar read with the guarded loader (``1`` is an int, ``true`` a bool, ``'1'`` a
string, an empty value null); a list or a mapping is refused, since the web form edits scalars only.
"""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from . import guard
from .errors import SettingsError, UnsafeOutput
from .model import Task

SCOPES: tuple[str, ...] = tuple(t.value for t in Task)  # training, mining, infer: the template names
RESERVED: dict[str, str] = {
    "task_id": "the platform sets it to the sub-task id",
    "class_names": "the platform sets it from the selected classes (the suite's fixed class list)",
    "gpu_id": "the platform sets it from the GPUs it hands out: use --ymir-gpus",
    "gpu_count": "the platform derives it from the GPUs handed out: use --ymir-gpus",
    "pretrained_model_params": "the platform sets it from the chosen pretrained model",
    "model_params_path": "the platform sets it from the chosen model",
    "run_infer": "the platform sets it from the task kind: use --ymir-tasks",
    "run_mining": "the platform sets it from the task kind: use --ymir-tasks",
    "object_type": "the platform sets it from the dataset's object type",
    "export_format": "the suite sets it per training run: use --ymir-formats",
}


@dataclass(frozen=True)
class HyperParam:
    """One ``--ymir-set`` edit: ``scope`` None applies to every template."""

    scope: str | None
    key: str
    value: Any  # a YAML scalar: str, int, float, bool or None

    def __str__(self) -> str:
        return f"{self.scope + '.' if self.scope else ''}{self.key}={yaml_scalar(self.value)}"


def yaml_scalar(value: Any) -> str:
    """The value as config.yaml would spell it (``1``, ``'1'``, ``true``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)
    return str(text.removesuffix("\n...\n").removesuffix("\n"))


def parse_value(text: str, where: str) -> Any:
    try:
        value = guard.load_yaml(text) if text.strip() else None
    except (yaml.YAMLError, UnsafeOutput) as exc:
        raise SettingsError(f"{where}: {text!r} is not a YAML scalar ({str(exc).splitlines()[0]})") from None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return text.strip()  # the web form sends what was typed: a string
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise SettingsError(f"{where}: {text!r} is a {type(value).__name__}, not a scalar; the web form edits "
                            "single values only (quote it to pass a string)")
    return value


def parse_sets(values: str | Sequence[str] | None, where: str) -> tuple[HyperParam, ...]:
    """``--ymir-set`` values (one ``KEY=VALUE`` each; ini: one per line) in the order given."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    out: list[HyperParam] = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SettingsError(f"{where}: {item!r} is not KEY=VALUE (e.g. training.epochs=1 or epochs=1)")
        scope: str | None = None
        head, dot, rest = name.partition(".")
        if dot and head in SCOPES:
            scope, name = head, rest.strip()
        if not name or any(c.isspace() for c in name):
            raise SettingsError(f"{where}: {item!r} has no usable key (scopes: {', '.join(SCOPES)})")
        if name in RESERVED:
            raise SettingsError(f"{where}: {name!r} is a platform-reserved config.yaml key ({RESERVED[name]}); "
                                "--ymir-set edits template hyper-parameters only")
        out.append(HyperParam(scope, name, parse_value(text, f"{where} {item!r}")))
    return tuple(out)


def form_edits(params: Iterable[HyperParam], task: Task) -> dict[str, Any]:
    """The edits that apply to ``task``'s template: unscoped first, then scoped ones (which win); later wins."""
    params = list(params)
    edits = {p.key: p.value for p in params if p.scope is None}
    edits.update({p.key: p.value for p in params if p.scope == task.value})
    return edits


def reaching(params: Iterable[HyperParam], task: Task) -> tuple[HyperParam, ...]:
    """The edits that reach ``task``'s template (unscoped ones and those scoped to it), in the order given: what
    changes that task's inputs. The trained-model cache is keyed by ``reaching(params, Task.TRAINING)`` only, so
    an infer-only edit (``infer.conf_threshold=0.5``) reuses a model trained without it."""
    return tuple(p for p in params if p.scope is None or p.scope == task.value)


def edit_template(template: dict[str, Any], task: Task, params: Iterable[HyperParam]) -> dict[str, Any]:
    """The template as the user left the web form (before the UI's filtering and the platform's keys)."""
    return {**template, **form_edits(params, task)}


def describe(params: Iterable[HyperParam]) -> str:
    return ", ".join(str(p) for p in params)


# -- --ymir-dataset-size ------------------------------------------------------------------------------------

SIZE_KEYS = ("train", "val", "candidates")


@dataclass(frozen=True)
class DatasetSize:
    """Overrides of the profile's dataset sizes (None: the profile's)."""

    train: int | None = None
    val: int | None = None
    candidates: int | None = None

    def apply(self, train: int, val: int, candidates: int) -> tuple[int, int, int]:
        """(train, val, candidates) with these overrides on the profile's sizes."""
        return (train if self.train is None else self.train, val if self.val is None else self.val,
                candidates if self.candidates is None else self.candidates)

    def __str__(self) -> str:
        return ",".join(f"{k}={getattr(self, k)}" for k in SIZE_KEYS if getattr(self, k) is not None)


def parse_dataset_size(value: str | None, where: str) -> DatasetSize | None:
    """``N`` (train N; val and candidates N // 3, at least 1) or ``train=N,val=N,candidates=N`` (any subset)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()

    def count(raw: str, what: str, minimum: int) -> int:
        try:
            n = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{where}: {what} {raw.strip()!r} is not an integer") from None
        if n < minimum or n > 100_000:
            raise SettingsError(f"{where}: {what} {n} must be between {minimum} and 100000")
        return n

    if "=" not in text:
        n = count(text, "size", 1)
        return DatasetSize(train=n, val=max(1, n // 3), candidates=max(1, n // 3))
    sizes: dict[str, int] = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in SIZE_KEYS:
            raise SettingsError(f"{where}: {part.strip()!r} is not one of {', '.join(k + '=N' for k in SIZE_KEYS)}")
        sizes[key] = count(raw, key, 0 if key == "val" else 1)
    return DatasetSize(**sizes)
