"""Inspecting an image the way the platform registers it (contract §1.1, §2) and judging what it declares.

Every ``/img-man`` file is read with a plain ``docker run --rm IMG cat <path>`` (no user, no mounts, no GPU),
stdout parsed with ``yaml.safe_load``; anything but a mapping counts as absent. We also read the true file
bytes from the image's filesystem (``get_archive``, no process started) so that IM-01 can tell a banner or an
argument-swallowing ENTRYPOINT from a genuinely different file.
"""
from __future__ import annotations

import contextlib
import io
import tarfile
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.utils
import requests.exceptions
import yaml

from . import guard
from .errors import UnsafeOutput

from .contracts.base import Area, Check, Finding, Level, Status, Violation, short
from .limits import DEFAULT_LIMITS, Limits
from .model import ObjectType, Task
from .platform import LATEST, Release, ReleaseRange
from .runner import cat_file, ensure_image, inspect_labels, remove_quietly

IMG_MAN = "/img-man"
MAX_IMG_MAN_BYTES = 1024 * 1024  # a template is a few hundred bytes; anything over this is refused
TOO_LARGE = b"\0ymir-conformance: too large\0"  # sentinel from read_image_file


def _rule(rule: str, title: str, levels: dict[str, Level]) -> Check:
    return Check(rule=rule, title=title, area=Area.IMAGE,
                 levels=tuple((ReleaseRange.parse(k), v) for k, v in levels.items()), func=lambda view: ())


IMAGE_CHECKS: dict[str, Check] = {c.rule: c for c in (
    _rule("IM-01", "`docker run --rm IMG cat /img-man/<file>` prints exactly that file", {"all": Level.MUST}),
    _rule("IM-02", "at least one task template parses as a YAML mapping", {"all": Level.MUST}),
    _rule("IM-03", "every template present is a YAML mapping", {"all": Level.MUST}),
    _rule("IM-04", "templates are flat `key: scalar` maps the web form can edit", {"all": Level.SHOULD}),
    _rule("V14", "manifest.yaml is a mapping whose object_type is valid for the release", {"2.1+": Level.MUST}),
    _rule("LC-02", "the image's default CMD/ENTRYPOINT starts the task (the platform passes no command)",
          {"all": Level.MUST}),
)}


@dataclass
class ImageInfo:
    """What the platform learns about an image at registration, plus our judgement of it."""

    image: str
    image_id: str
    cmd: list[str]
    entrypoint: list[str]
    manifest: dict[str, Any] | None
    object_types: list[ObjectType]
    templates: dict[tuple[ObjectType, Task], dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    files_read: dict[str, str] = field(default_factory=dict)  # container path -> what happened
    repo_digests: list[str] = field(default_factory=list)  # the engine's RepoDigests (empty for a local build)
    size_bytes: int | None = None  # the engine's Size of the image

    def declared_tasks(self, object_type: ObjectType) -> list[Task]:
        return [t for t in Task if (object_type, t) in self.templates]

    def template(self, object_type: ObjectType, task: Task) -> dict[str, Any] | None:
        return self.templates.get((object_type, task))

    def findings(self, release: Release = LATEST) -> list[Finding]:
        out = []
        for rule, chk in IMAGE_CHECKS.items():
            level = chk.level_on(release)
            if level is None:
                out.append(Finding(chk, Status.NOT_APPLICABLE, None, reason=f"rule not in platform {release}"))
                continue
            vs = [Violation(**{**v.__dict__, "level": level}) for v in self.violations if v.rule == rule]
            if rule == "V14" and isinstance((self.manifest or {}).get("object_type"), list) and release < Release(2, 4):
                vs.append(Violation("V14", f"a list-valued manifest object_type crashes registration on platform "
                                    f"{release} (it calls int() on it); lists are supported from 2.4",
                                    file=f"{IMG_MAN}/manifest.yaml", where="object_type",
                                    found=short(self.manifest.get("object_type") if self.manifest else None),
                                    expected="a single int on 2.1-2.3", level=level,
                                    fix="publish a separate image per object type for platforms before 2.4."))
            out.append(Finding(chk, Status.FAILED if vs else Status.PASSED, level, vs))
        return out

    @property
    def short_id(self) -> str:
        return self.image_id.removeprefix("sha256:")[:12]


GO_MODE_DIR = 1 << 31  # Go's os.FileMode bits, as the engine reports them in X-Docker-Container-Path-Stat
GO_MODE_SYMLINK = 1 << 27
GO_MODE_NOT_REGULAR = GO_MODE_DIR | GO_MODE_SYMLINK | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
LINKED = b"\0ymir-conformance: a link\0"  # sentinel: the file is a link; its true bytes are not compared
TAR_SLACK = 64 * 1024  # tar headers and padding around one member


def read_image_file(cl: docker.DockerClient, image: str, path: str) -> bytes | None:
    """The true bytes of ``path`` in the image's filesystem (no process is started), or None if absent.

    Returns :data:`TOO_LARGE` for a file over :data:`MAX_IMG_MAN_BYTES` and :data:`LINKED` for a symlink.
    The archive stream is read through :func:`guard.drain` with a cap and its connection is always closed,
    so a huge file neither fills memory nor leaves a half-read response that blocks the engine client.
    """
    container: Any = None
    try:
        container = cl.containers.create(image=image, command=["cat"], network_mode="none", labels=inspect_labels())
        # docker-py's get_archive() returns a generator whose response cannot be closed early; use the same
        # request with a response we own.
        api: Any = cl.api
        res = api._get(api._url("/containers/{0}/archive", container.id), params={"path": path}, stream=True)
        with contextlib.closing(res):
            if res.status_code == 404:
                return None
            api._raise_for_status(res)
            header = res.headers.get("x-docker-container-path-stat")
            st = docker.utils.decode_json_header(header) if header else {}
            mode, size = int(st.get("mode", 0)), int(st.get("size", 0))
            if mode & GO_MODE_SYMLINK:
                return LINKED
            if mode & GO_MODE_NOT_REGULAR:
                return None
            if size > MAX_IMG_MAN_BYTES:  # never pull a huge file into memory
                return TOO_LARGE
            data, dropped = guard.drain(res.iter_content(64 * 1024), MAX_IMG_MAN_BYTES + TAR_SLACK, stop=True)
        if dropped:
            return TOO_LARGE
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None or not member.isfile() or member.size > MAX_IMG_MAN_BYTES:
                return None
            f = tar.extractfile(member)
            return f.read() if f else None
    except (docker.errors.NotFound, tarfile.TarError):
        return None
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return None
    finally:
        if container is not None:
            remove_quietly(container)


def _load(data: bytes) -> Any:
    """A /img-man file parsed with the bounded loader; the exception instead when it does not parse."""
    try:
        return guard.load_yaml(data.decode("utf-8", errors="replace"))
    except (yaml.YAMLError, UnsafeOutput) as exc:
        return exc


Fetched = tuple[bytes | None, tuple[int | None, bytes, bytes] | None]  # (true bytes, the `cat`'s code/out/err)


def fetch_one(cl: docker.DockerClient, image: str, path: str, limits: Limits = DEFAULT_LIMITS) -> Fetched:
    """The engine work of inspecting one /img-man file (judged by :func:`_inspect_one`): its true bytes, and
    ``docker run --rm IMG cat <path>`` when the file is there and not too large. Safe to run concurrently."""
    truth = read_image_file(cl, image, path)
    if truth is None or truth is TOO_LARGE:
        return truth, None
    return truth, cat_file(cl, image, path, limits=limits)


def _inspect_one(cl: docker.DockerClient, image: str, path: str, info: ImageInfo,
                 limits: Limits = DEFAULT_LIMITS, fetched: Fetched | None = None) -> dict[str, Any] | None:
    """cat one /img-man file like the platform; record IM-01 when stdout is not the file. ``fetched``: what
    :func:`fetch_one` already got (the file's findings are still recorded here, in a fixed order)."""
    truth, cat = fetched if fetched is not None else fetch_one(cl, image, path, limits)
    if truth is None:
        info.files_read[path] = "absent"
        return None
    if truth is TOO_LARGE:
        info.files_read[path] = "too large"
        info.violations.append(Violation(
            "V14" if path.endswith("manifest.yaml") else "IM-03", f"{path} is over {MAX_IMG_MAN_BYTES} bytes",
            file=path, expected="a small flat YAML mapping", fix="keep /img-man files to a few key: value lines."))
        return None
    code, out, err = cat if cat is not None else cat_file(cl, image, path, limits=limits)
    if code != 0 or (truth is not LINKED and out != truth):
        head = out.decode("utf-8", "replace").splitlines()[:3]
        why = (("`cat` did not finish" if code is None else f"`cat` exited {code}")
               + (f" ({err.decode('utf-8', 'replace').strip()[:200]})" if err else "")
               if code != 0 else f"stdout differs from the file; stdout starts with {short(chr(10).join(head), 200)}")
        info.violations.append(Violation(
            "IM-01", f"`docker run --rm {image} cat {path}` does not print the file",
            file=path, found=why, expected="stdout byte-identical to the file",
            fix="the platform reads /img-man files by running `cat` through your ENTRYPOINT: make the ENTRYPOINT "
                "exec its arguments unchanged and print nothing of its own on stdout (send banners to stderr), "
                "and keep a `cat` binary in the image. Otherwise registration fails with 'does not match any "
                "configuration'."))
        info.files_read[path] = "cat failed; read from the image filesystem instead"
        # The platform would not register the image; we still judge the tasks (with the file's true content)
        # so that the author learns everything that is wrong in one run.
        true_value = _load(truth) if truth is not LINKED else None
        return true_value if isinstance(true_value, dict) else None
    value = _load(out)
    info.files_read[path] = "read"
    if not isinstance(value, dict):
        if isinstance(value, UnsafeOutput):
            what = f"refused by this suite: it {value.problem}"
        elif isinstance(value, yaml.YAMLError):
            what = f"not valid YAML ({' '.join(str(value).split())[:200]})"
        else:
            what = f"a {type(value).__name__}, not a mapping"
        rule = "V14" if path.endswith("manifest.yaml") else "IM-03"
        info.violations.append(Violation(
            rule, f"{path} is {what}; the platform treats it as absent", file=path, found=short(value),
            expected="a YAML mapping of key: value",
            fix="write the file as a flat YAML mapping (`key: value` per line)."))
        return None
    return value


PLATFORM_KEYS = frozenset({"task_id", "class_names", "gpu_id", "gpu_count", "openpai_enable",
                           "pretrained_model_params", "model_params_path", "run_infer", "run_mining"})
"""Template keys the platform overwrites or deletes in config.yaml on every release (contract §2 "keys reserved
or overwritten", §3.3; the UI hides gpu_count and always sends gpu_count and openpai_enable): the form never
edits them, so their template values may be nested. ``object_type`` is overwritten only from 2.4, so not here."""


def _check_flat(path: str, template: dict[str, Any], info: ImageInfo) -> None:
    nested = [k for k, v in template.items() if isinstance(v, (dict, list)) and k not in PLATFORM_KEYS]
    if nested:
        info.violations.append(Violation(
            "IM-04", f"{path} has nested values the web form cannot edit: {', '.join(map(str, nested[:5]))}",
            file=path, where=str(nested[0]), found=short(template[nested[0]]), expected="a scalar",
            fix="flatten the template: one `key: scalar` per line (the UI renders each key as one input; "
                "encode lists as comma-separated strings and parse them leniently)."))


def _object_types(manifest: dict[str, Any] | None, info: ImageInfo) -> tuple[list[ObjectType], bool]:
    """(object types, whether per-type template dirs are used), recording V14 problems."""
    if manifest is None:
        return [ObjectType.DETECTION], False
    raw = manifest.get("object_type", 2)
    valid = {int(t) for t in ObjectType}
    if isinstance(raw, list):
        bad = [v for v in raw if not isinstance(v, int) or v not in valid]
        if bad or not raw:
            info.violations.append(Violation(
                "V14", f"manifest object_type list has invalid entries {short(bad)}", file=f"{IMG_MAN}/manifest.yaml",
                where="object_type", found=short(raw), expected="a list of 2, 3, 4 (or 50 on 2.5)",
                fix="list only detection (2), semantic segmentation (3), instance segmentation (4)."))
        return [ObjectType(v) for v in raw if isinstance(v, int) and v in valid] or [ObjectType.DETECTION], True
    if isinstance(raw, bool) or not isinstance(raw, int) or raw not in valid:
        info.violations.append(Violation(
            "V14", f"manifest object_type {short(raw)} is not a valid object type", file=f"{IMG_MAN}/manifest.yaml",
            where="object_type", found=short(raw), expected="2, 3, 4 (or a list of them on 2.4+)",
            fix="set object_type: 2 (detection), 3 (semantic segmentation) or 4 (instance segmentation)."))
        return [ObjectType.DETECTION], False
    return [ObjectType(raw)], False


def inspect_image(cl: docker.DockerClient, image: str, limits: Limits = DEFAULT_LIMITS,
                  fetch_pool: Executor | None = None) -> ImageInfo:
    """Inspect ``image`` as the platform registers it. With ``fetch_pool`` the /img-man files are fetched (read
    and `cat`) concurrently, each still its own `docker run --rm IMG cat`: the manifest together with the flat
    template paths, then (a per-type manifest) the per-type paths; the findings come out in the same order as
    when fetched one by one."""
    img = ensure_image(cl, image)
    # path -> (its true bytes, its `cat`): both started at once (the `cat` runs even when the read finds no file,
    # as the platform's would; its result is then unused)
    fetches: dict[str, tuple[Future[bytes | None], Future[tuple[int | None, bytes, bytes]]]] = {}

    def prefetch(paths: list[str]) -> None:
        if fetch_pool is not None:
            for path in paths:
                if path not in fetches:
                    fetches[path] = (fetch_pool.submit(read_image_file, cl, image, path),
                                     fetch_pool.submit(cat_file, cl, image, path, limits=limits))

    def fetched(path: str) -> Fetched | None:
        if path not in fetches:
            return None
        truth = fetches[path][0].result()
        return truth, (None if truth is None or truth is TOO_LARGE else fetches[path][1].result())

    prefetch([f"{IMG_MAN}/manifest.yaml"] + [f"{IMG_MAN}/{task.value}-template.yaml" for task in Task])
    cfg = img.attrs.get("Config") or {}
    info = ImageInfo(image=image, image_id=img.id, cmd=list(cfg.get("Cmd") or []),
                     entrypoint=list(cfg.get("Entrypoint") or []), manifest=None, object_types=[], templates={},
                     repo_digests=[str(d) for d in img.attrs.get("RepoDigests") or []],
                     size_bytes=int(img.attrs["Size"]) if isinstance(img.attrs.get("Size"), int) else None)
    if not info.cmd and not info.entrypoint:
        info.violations.append(Violation(
            "LC-02", "the image has neither CMD nor ENTRYPOINT, so the platform's `docker run IMG` (no command) "
            "cannot start it", found="Cmd: null, Entrypoint: null", expected='CMD ["bash", "/usr/bin/start.sh"]',
            fix="add `CMD bash /usr/bin/start.sh` to the Dockerfile (and keep /usr/bin/start.sh runnable with "
                "no arguments)."))
    info.manifest = _inspect_one(cl, image, f"{IMG_MAN}/manifest.yaml", info, limits,
                                 fetched(f"{IMG_MAN}/manifest.yaml"))
    info.object_types, per_type_dirs = _object_types(info.manifest, info)
    wanted = [(ot, task, f"{IMG_MAN}/{ot.dir_name + '/' if per_type_dirs else ''}{task.value}-template.yaml")
              for ot in info.object_types for task in Task]
    prefetch([path for _, _, path in wanted])
    for ot, task, path in wanted:
        tpl = _inspect_one(cl, image, path, info, limits, fetched(path))
        if tpl is not None:
            info.templates[(ot, task)] = tpl
            _check_flat(path, tpl, info)
    if not info.templates and not any(v.rule == "IM-01" for v in info.violations):  # IM-01 owns a broken `cat`
        info.violations.append(Violation(
            "IM-02", "no task template could be read as a YAML mapping, so registration fails with 'does not "
                     "match any configuration' (DOCKER_IMAGE_ERROR 130401)",
            file=f"{IMG_MAN}/", found=", ".join(f"{k}: {v}" for k, v in info.files_read.items()),
            expected="at least one of training-template.yaml, mining-template.yaml, infer-template.yaml",
            fix="ship /img-man/training-template.yaml (and mining-/infer- for the tasks you support) as YAML "
                "mappings; with a list-valued manifest object_type, put them under /img-man/<det|semantic-seg|"
                "instance-seg>/."))
    return info
