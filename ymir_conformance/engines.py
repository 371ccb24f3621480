"""Where container runs happen: one engine or many (``--ymir-engines``), each with its transfer (transfer.py),
and which GPUs an xdist worker may use (``--ymir-gpus`` with ``-n``).

Design (docs/scale-out.md):

* **xdist workers bind to engines.** Worker ``gwK`` of ``N`` uses engine ``K mod E`` of the ``E`` listed, and
  only that one: with ``--dist loadgroup`` (the plugin's default under xdist) every run that shares a training
  lands on one worker, so a model package never has to travel between engines.
* **Without xdist**, the conductor assigns each *training group* (a training and every run that uses its model)
  to the engines round-robin, in the order the groups are first needed. Runs are sequential then: this spreads
  load and proves every engine, it does not speed anything up.
* **GPUs.** ``--ymir-gpus`` names host GPU ids on *each* engine. The workers that share one engine take
  disjoint, equal, contiguous slices of them (``--ymir-gpus=0,1,2,3 -n 2``: gw0 gets 0,1 and gw1 gets 2,3), so
  no two runs ever hold one GPU; ids left over by an uneven split stay unused. Fewer GPUs than workers on an
  engine is a usage error (a worker without GPUs would silently run CPU mode).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SettingsError

if TYPE_CHECKING:  # the client is imported where a session connects (runner.client), not by option parsing
    import docker


def default_url() -> str:
    """The engine ``docker.from_env`` reaches: DOCKER_HOST, else the default unix socket."""
    return os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"


def parse_engines(value: str | list[str] | None, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    urls = tuple(p.strip() for item in items for p in str(item).split(",") if p.strip())
    bad = [u for u in urls if not u.startswith(("unix://", "tcp://", "ssh://", "http://", "https://", "npipe://"))]
    if bad:
        raise SettingsError(f"{where}: {', '.join(bad)} is not an engine URL (unix:///path.sock, tcp://host:2376, "
                            "ssh://user@host)")
    if len(set(urls)) != len(urls):
        raise SettingsError(f"{where}: an engine is listed twice")
    return urls


TRANSFER_MODES = ("auto", "bind", "archive")  # --ymir-transfer (transfer.py)


def parse_transfer(value: str | None, where: str) -> str:
    v = (value or "auto").strip().lower()
    if v not in TRANSFER_MODES:
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(TRANSFER_MODES)}")
    return v


def worker_index(workerinput: dict[str, Any] | None) -> tuple[int, int] | None:
    """(this xdist worker's index, the number of workers), or None outside an xdist worker."""
    if not workerinput:
        return None
    wid = str(workerinput.get("workerid", ""))
    count = int(workerinput.get("workercount") or 0)
    if not wid.startswith("gw") or not wid[2:].isdigit() or count <= 0:
        return None
    return int(wid[2:]) % count, count


def worker_share(workerinput: dict[str, Any] | None, engines: tuple[str, ...],
                 gpu_ids: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the engines, the GPU ids) this process may use: everything outside xdist; on worker K of N, engine
    ``K mod E`` and a disjoint slice of ``gpu_ids`` among the workers bound to that engine."""
    place = worker_index(workerinput)
    if place is None:
        return engines, gpu_ids
    k, n = place
    e = max(1, len(engines))
    mine = (engines[k % e],) if engines else ()
    if not gpu_ids:
        return mine, ()
    sharing = len(range(k % e, n, e))  # workers bound to the same engine
    size = len(gpu_ids) // sharing
    if size == 0:
        raise SettingsError(check_gpu_split(len(gpu_ids), n, len(engines)) or "too few GPUs for the workers")
    local = k // e
    return mine, gpu_ids[local * size:(local + 1) * size]


def check_gpu_split(gpus: int, workers: int, engines: int) -> str | None:
    """Why ``gpus`` GPU ids cannot be split among ``workers`` xdist workers on ``engines`` engines, or None."""
    per_engine = -(-workers // max(1, engines))  # the most workers one engine gets
    if gpus and per_engine > gpus:
        return (f"--ymir-gpus names {gpus} GPU(s) but up to {per_engine} xdist worker(s) share an engine: each "
                "worker needs a GPU of its own (two runs never share one). Use fewer workers (-n), more GPU ids, "
                "or more engines (--ymir-engines)")
    return None


@dataclass
class Engine:
    url: str
    cl: docker.DockerClient
    transfer: str | None = None  # resolved: "bind" or "archive"
    why_archive: str = ""


@dataclass
class EnginePool:
    """The engines of this process and the training group -> engine assignment."""

    engines: list[Engine]
    mode: str = "auto"  # --ymir-transfer
    assigned: dict[Any, Engine] = field(default_factory=dict)

    @classmethod
    def connect(cls, urls: tuple[str, ...], primary: docker.DockerClient, mode: str) -> EnginePool:
        """One engine per URL (the primary client serves the first); none given: the primary's engine alone."""
        from .runner import client

        if not urls:
            return cls([Engine(default_url(), primary)], mode)
        engines = [Engine(urls[0], primary)] + [Engine(u, client(base_url=u)) for u in urls[1:]]
        return cls(engines, mode)

    def clients(self) -> list[docker.DockerClient]:
        return [e.cl for e in self.engines]

    def for_group(self, key: Any) -> Engine:
        """The engine of a training group: round-robin in first-use order, then always the same one."""
        if key not in self.assigned:
            self.assigned[key] = self.engines[len(self.assigned) % len(self.engines)]
        return self.assigned[key]

    def resolve(self, engine: Engine, image: str, probe_root: Path, limits_kwargs: dict[str, Any],
                labels: dict[str, str]) -> str:
        """The transfer ``engine`` needs (probed once; raises transfer.TransferError when bind is forced on an
        engine that cannot see ``probe_root``)."""
        from .transfer import bind_problem, choose

        if engine.transfer is None:
            why: list[str] = []

            def problem() -> str | None:
                p = bind_problem(engine.cl, image, probe_root, limits_kwargs, labels)
                if p:
                    why.append(p)
                return p

            engine.transfer = choose(self.mode, engine.url, problem)
            engine.why_archive = why[0] if why else ("forced (--ymir-transfer=archive)" if self.mode == "archive"
                                                     else "a remote engine" if engine.transfer == "archive" else "")
        return engine.transfer


__all__ = ["Engine", "EnginePool", "check_gpu_split", "default_url", "parse_engines", "parse_transfer",
           "worker_index", "worker_share"]
