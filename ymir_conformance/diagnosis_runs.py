"""The diagnosis retries (a room of the conductor, conductor.py), the execution of the policy in diagnosis.py: a
failed run's log decides the retries (``--ymir-diagnose``), each under exactly the first run's containment: as
root (LC-09: a root retry that works is the judged run), with gpu_id '0' (LC-07) or on an internal network
(``all``, LC-10), both of which leave the failed run judged (the platform fails the task, V1). The internal
diagnosis networks: one per engine, no route out, removed at cleanup, reaped when their session is gone.
"""
from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
import yaml

from . import diagnosis, guard
from .errors import UnsafeOutput
from .model import RunOutcome
from .options import Settings
from .platform import Release
from .rmtree import remove_tree_or_raise
from .runner import LABEL_PREFIX, LABEL_SESSION, run_labels
from .session import RunRecord, RunSpec
from .workspace import Workspace, prepare_out

if TYPE_CHECKING:
    from .engines import EnginePool


class DiagnosisRuns:
    """``_run_diagnosed``: a run and the retries its failure earns; ``remove_networks`` at cleanup."""

    settings: Settings
    session_id: str
    pool: EnginePool
    _lock: threading.RLock
    _closing: bool
    _network_lock: threading.Lock
    _networks: dict[str, str]
    _network_clients: dict[str, docker.DockerClient]

    if TYPE_CHECKING:  # run execution (execution.py)
        def _run_once(self, spec: RunSpec, ws: Workspace, out_dir: Path, user: str, network: bool,
                      record: RunRecord, tensorboard: Path | None, network_name: str = "") -> RunOutcome: ...

    def _run_diagnosed(self, spec: RunSpec, ws: Workspace, record: RunRecord) -> RunOutcome:
        """Run ``spec`` once and execute the diagnosis policy (:mod:`ymir_conformance.diagnosis`) on a failure:
        the retries it decides, each under exactly the first run's containment. A retry as root that works is the
        judged run (LC-09); a gpu_id '0' retry (LC-07) or a network retry (``all``: an internal network, LC-10)
        that works leaves the failed run judged (the platform fails the task, V1)."""
        s = self.settings
        first = self._run_once(spec, ws, ws.out_dir, s.user, s.allow_network, record, ws.tensorboard_host)
        if s.allow_network:
            first.network_name = "bridge"  # --ymir-allow-network: the judged run had the default bridge
        if first.succeeded or self._closing:
            return first  # a session that is stopping (its containers killed or reaped) starts no retry
        decision = diagnosis.decide(
            s.diagnose, exit_code=first.exit_code, timed_out=first.timed_out, hit_limit=first.hit_limit,
            duration_s=first.duration_s, log_lines=guard.tail_lines(first.out_dir, "ymir-executor-out.log",
                                                                    diagnosis.SCAN_LINES, guard.CAPS["log-scan"]),
            user_is_root=s.user == "0:0", cpu_mode=not s.gpu_ids, had_network=s.allow_network,
            clean_no_gpu=_failed_with_no_gpu(first))
        record.diagnose = {"mode": s.diagnose, "not_retried": decision.not_retried,
                           "evidence": [{"cause": str(ev.cause), "rule": ev.cause.rule, "line": ev.line,
                                         "subject": ev.subject} for ev in decision.evidence[-8:]]}
        if decision.network is not None and s.diagnose != "all":
            first.diagnosis.append(f"not retried with a network: the log shows {diagnosis.describe(decision.network)} "
                                   "(LC-10)")
        elif decision.not_retried and decision.evidence and s.diagnose == "auto":
            first.diagnosis.append(f"not retried: {decision.not_retried}")
        for retry in decision.retries:
            if self._closing:
                break
            if retry.kind is diagnosis.RetryKind.ROOT:
                out = self._retry(spec, ws, record, retry, user="0:0")
                if out.succeeded:
                    out.retried_as_root = True
                    out.diagnosis.append(f"retried as root: {retry.reason}; failed as --user {s.user} (exit "
                                         f"{first.exit_code}), succeeded as root")
                    return out
            elif retry.kind is diagnosis.RetryKind.NETWORK:
                try:
                    network = self._internal_network(spec)
                except docker.errors.APIError as exc:  # e.g. the engine's address pools are used up
                    first.diagnosis.append(f"not retried on an internal network: the engine refused to create one "
                                           f"({diagnosis.printable(str(exc), 200)})")
                    continue
                out = self._retry(spec, ws, record, retry, network_name=network)
                if out.succeeded:  # never the judged run: the failed one stays (V1), LC-10 names the cause
                    first.needs_network = True
                    first.diagnosis.append(f"retried on an internal network (no route anywhere): {retry.reason}; "
                                           f"failed with --network none (exit {first.exit_code}), succeeded with a "
                                           "network: the judged run is the failed one")
                    return first
            elif self._works_with_gpu_id(spec, ws, record, retry):
                # the platform fails the task in CPU mode: the failed run stays the judged one (V1), diagnosed LC-07
                first.needs_gpu_id = True
                first.diagnosis.append(f"retried with gpu_id '0': {retry.reason}; failed in CPU mode with gpu_id "
                                       f"'' (exit {first.exit_code}), succeeded when rerun with gpu_id '0' in "
                                       "config.yaml and still no GPU: the image does not treat an empty gpu_id as "
                                       "CPU mode")
                return first
        ran = [r for r in record.retries if not r.get("succeeded")]
        if ran:
            first.diagnosis.append("retried " + ", ".join(f"{r['kind']} (exit {r['exit_code']})" for r in ran)
                                   + ": no retry worked, the first run is judged")
        return first  # nothing explains the failure: judge the run as the platform would have made it

    def _retry_out(self, spec: RunSpec, ws: Workspace, record: RunRecord) -> tuple[Path, Path | None]:
        """A fresh /out (and TensorBoard folder) for the next retry, as the platform would prepare it."""
        diag_out = ws.root / f"out-retry-{len(record.attempts)}"
        remove_tree_or_raise(diag_out)
        tensorboard = ws.retry_tensorboard(len(record.attempts))
        prepare_out(diag_out, ws.task_id, tensorboard, chmod=spec.release >= Release(2, 0),
                    model_dirs=spec.release >= Release(2, 0) or spec.shape.run_training)
        return diag_out, tensorboard

    def _retry(self, spec: RunSpec, ws: Workspace, record: RunRecord, retry: diagnosis.Retry, user: str | None = None,
               network_name: str = "") -> RunOutcome:
        """One retry with the first run's settings except ``user`` or the network; recorded in ``record.retries``."""
        s = self.settings
        diag_out, tensorboard = self._retry_out(spec, ws, record)
        out = self._run_once(spec, ws, diag_out, user or s.user, bool(network_name) or s.allow_network, record,
                             tensorboard, network_name=network_name)
        out.network_name = network_name or ("bridge" if s.allow_network else "")
        self._note_retry(record, retry, out)
        return out

    @staticmethod
    def _note_retry(record: RunRecord, retry: diagnosis.Retry, out: RunOutcome) -> None:
        record.retries.append({"kind": str(retry.kind), "rule": retry.rule, "reason": retry.reason,
                               "exit_code": out.exit_code, "succeeded": out.succeeded,
                               "duration_s": round(out.duration_s, 3), "container": out.container_name,
                               **({"network": out.network_name} if out.network_name else {})})

    def _works_with_gpu_id(self, spec: RunSpec, ws: Workspace, record: RunRecord, retry: diagnosis.Retry) -> bool:
        """Rerun a failed CPU-mode run with config.yaml gpu_id '0' (no device request: still CPU) and say whether
        it succeeds. /in/config.yaml is rewritten for the rerun only and restored byte for byte afterwards."""
        s = self.settings
        config = ws.in_dir / "config.yaml"
        try:
            original = config.read_bytes()
            cfg = yaml.safe_load(original)
        except (OSError, yaml.YAMLError):
            return False
        if not isinstance(cfg, dict):
            return False
        diag_out, tensorboard = self._retry_out(spec, ws, record)
        try:
            config.write_text(yaml.safe_dump({**cfg, "gpu_id": "0"}, allow_unicode=True, sort_keys=True))
            out = self._run_once(spec, ws, diag_out, s.user, s.allow_network, record, tensorboard)
        finally:
            config.write_bytes(original)
        record.attempts[-1]["gpu_id"] = "0"
        self._note_retry(record, retry, out)
        return out.succeeded

    # -- the diagnosis network (--ymir-diagnose=all): internal, no address on the host, one per engine ----------
    def _internal_network(self, spec: RunSpec) -> str:
        """The name of this session's internal Docker network on ``spec``'s engine, created on first use:
        ``--internal`` (no route out) and no IPv4 address on the host's bridge (``inhibit_ipv4``), so a container
        on it reaches neither the Internet nor the host nor the default bridge. Removed by :meth:`cleanup`."""
        with self._lock:
            engine = self.pool.for_group(spec.training_spec())
        with self._network_lock:
            name = self._networks.get(engine.url)
            if name is not None:
                return name
            _reap_stale_networks(engine.cl)
            name = f"ymir-diag-{self.session_id[:24]}-{uuid.uuid4().hex[:8]}"  # xdist workers share the session id
            engine.cl.networks.create(name, driver="bridge", internal=True, check_duplicate=True,
                                      options={"com.docker.network.bridge.inhibit_ipv4": "true"},
                                      labels={**run_labels(self.session_id, "diagnosis-network"),
                                              LABEL_NETWORK: "1"})
            self._networks[engine.url] = name
            self._network_clients[engine.url] = engine.cl
            return name

    def remove_networks(self) -> None:
        """Remove the networks :meth:`_internal_network` created (a network a kept container still uses stays)."""
        with self._network_lock:
            for url, name in list(self._networks.items()):
                try:
                    self._network_clients[url].networks.get(name).remove()
                except Exception:  # gone already, in use by a kept container, or the engine went away
                    continue
                del self._networks[url]


LABEL_NETWORK = f"{LABEL_PREFIX}.diagnosis-network"


def _reap_stale_networks(cl: docker.DockerClient) -> None:
    """Remove diagnosis networks whose session is certainly gone (a SIGKILLed session could not remove its own:
    each holds one of the engine's few address pools)."""
    from .owner import Owner, Probe, engine_time, gone

    try:
        found = cl.networks.list(filters={"label": LABEL_NETWORK})
    except Exception:
        return
    probe = Probe()
    for net in found:
        labels = dict(net.attrs.get("Labels") or {})
        owner = Owner.from_labels(labels, LABEL_PREFIX, LABEL_SESSION)
        if gone(owner, engine_time(str(net.attrs.get("Created", ""))), probe) is None:
            continue
        try:
            net.remove()
        except Exception:  # in use (a kept container) or gone already
            pass


def _failed_with_no_gpu(o: RunOutcome) -> bool:
    """The run failed cleanly for want of a GPU (monitor state 4 with 300102 RC_EXEC_NO_GPU), as LC-07 allows."""
    try:
        line = guard.read_text(o.out_dir, "monitor.txt", guard.CAPS["monitor"]).split("\n", 1)[0].split("\t")
    except (OSError, UnsafeOutput):
        return False
    return len(line) >= 5 and line[3].strip() == "4" and line[4].strip() == "300102"


__all__ = ["DiagnosisRuns", "LABEL_NETWORK"]
