"""Getting ``/in`` to an engine that cannot see the suite's files, and ``/out`` back (``--ymir-transfer``).

With a bind mount (the platform's way, ``--ymir-transfer=bind``) the engine must see the host's workspace
directories. An engine on another host (``DOCKER_HOST=tcp://...`` or ``ssh://...``, a docker context for a remote
machine) or in another mount namespace does not: its bind mounts show empty directories, and the image fails
for want of its inputs. ``--ymir-transfer=archive`` ships the workspace instead:

* one named volume per mount (``/in``, ``/out``, and each link target the platform mounts at its own host path:
  the asset cache behind ``/in/assets``, the TensorBoard folder behind ``/out/tensorboard``), filled with
  ``put_archive`` through a *helper* container that is created (never started) from the image under test with
  the volumes mounted; links in the workspace travel as links and resolve inside the container exactly as with
  bind mounts, since each target volume is mounted at the target's own path;
* the task container mounts ``/in`` read-only and the rest read-write;
* ``/out/monitor.txt`` is sampled over the API while the container runs (``get_archive`` through the helper
  every :data:`MONITOR_INTERVAL_S`, capped at ``guard.CAPS['monitor']``);
* after the run, ``/out`` (and the TensorBoard folder) come back with ``get_archive`` through
  :func:`extract_archive`, a guarded extractor: member by member, names checked with
  :func:`guard.plain_relpath`, every directory opened one component at a time with ``O_NOFOLLOW`` (nothing is
  ever written through a link), regular files written with ``O_NOFOLLOW`` and a size cap, a cap on the number
  of members and on the total; links and FIFOs the image made are recreated *inert* in the host copy (never
  followed: the guarded reader refuses them exactly as it refuses them in a bind-mounted ``/out``, so the
  verdict is the same), hard links and device nodes are refused and reported;
* the volumes and the helper are removed in every case.

``--ymir-transfer=auto`` (default) picks per engine: archive when the engine is not reached over a local unix
socket, else a probe: a file written under the session's workdir must be visible through a bind mount
(:func:`bind_problem`). ``bind`` with an engine that fails the probe stops the session with a message that
names ``--ymir-transfer=archive``.

What archive transfer cannot do: the input audit (inotify on the host's ``/in``) sees nothing, so those runs are
"not audited"; the container's cgroup is not sampled by pid (a remote pid means nothing here).
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from . import guard
from .engines import TRANSFER_MODES as MODES
from .errors import ConformanceError, UnsafeOutput
from .model import ProgressSample

MONITOR_INTERVAL_S = 0.5
MONITOR_MAX_SAMPLES = 20_000
FETCH_FILE_CAP = guard.CAPS["model-file"]  # one file of /out
FETCH_TOTAL_CAP = 2 * guard.CAPS["model-package"]  # all of /out together
FETCH_MAX_MEMBERS = guard.MAX_WALK_ENTRIES
# Go's os.FileMode type bits, as the engine reports them in X-Docker-Container-Path-Stat
_GO_TYPE_BITS = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
API_ERRORS = (docker.errors.APIError, requests.exceptions.RequestException)


class TransferError(ConformanceError):
    """Shipping /in to the engine or fetching /out back failed (the engine, not the image)."""


# --------------------------------------------------------------------------------------------------------
# Which transfer an engine needs
# --------------------------------------------------------------------------------------------------------


def is_local_url(url: str) -> bool:
    """Whether ``url`` reaches an engine over a local socket (unix:// or a Windows named pipe)."""
    u = url.strip()
    return u == "" or u.startswith(("unix://", "npipe://", "/"))


def bind_problem(cl: docker.DockerClient, image: str, probe_root: Path, limits_kwargs: dict[str, Any],
                 labels: dict[str, str]) -> str | None:
    """None when a file under ``probe_root`` is visible in a container through a bind mount, else why not.

    One short container from ``image`` (``cat`` of a random token, ``--network none``), always removed.
    """
    token = uuid.uuid4().hex
    probe = probe_root / f".bind-probe-{token[:8]}"
    probe.mkdir(parents=True, exist_ok=True)
    try:
        (probe / "token").write_text(token)
        os.chmod(probe, 0o755)
        os.chmod(probe / "token", 0o644)
        container: Any = None
        try:
            container = cl.containers.create(image=image, command=["cat", "/ymir-bind-probe/token"],
                                             network_mode="none", labels=labels, detach=True,
                                             volumes={str(probe): {"bind": "/ymir-bind-probe", "mode": "ro"}},
                                             **limits_kwargs)
            container.start()
            status = container.wait(timeout=60)
            out = container.logs(stdout=True, stderr=False)[:4096].decode("utf-8", "replace")
        except API_ERRORS as exc:
            return f"a probe container with a bind mount of {probe} could not run ({exc})"
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except API_ERRORS:
                    pass
        if out.strip() == token:
            return None
        return (f"a file the suite wrote under {probe_root} is not visible through a bind mount "
                f"(exit {status.get('StatusCode')}, read {out.strip()[:80]!r}): the engine runs on another host "
                "or in another mount namespace")
    finally:
        for p in (probe / "token", probe):
            try:
                p.rmdir() if p.is_dir() else p.unlink()
            except OSError:
                pass


def choose(mode: str, url: str, problem: Any) -> str:
    """The transfer an engine gets: ``mode`` is the option; ``problem()`` runs the bind probe (lazily).

    Raises :class:`TransferError` when ``bind`` is forced on an engine that fails the probe.
    """
    if mode == "archive":
        return "archive"
    if mode == "auto" and not is_local_url(url):
        return "archive"
    why = problem()
    if why is None:
        return "bind"
    if mode == "bind":
        raise TransferError(
            f"--ymir-transfer=bind, but the engine at {url or 'the default socket'} cannot see the suite's files: "
            f"{why}. Bind mounts would give the image an empty /in. Use --ymir-transfer=archive (or auto) to ship "
            "/in into volumes and fetch /out back over the Docker API.")
    return "archive"


# --------------------------------------------------------------------------------------------------------
# The guarded extractor
# --------------------------------------------------------------------------------------------------------


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (what ``get_archive`` streams)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


@dataclass
class Extracted:
    """What :func:`extract_archive` wrote, and what it refused (each refusal: '<path> <problem>')."""

    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0
    refused: list[str] = field(default_factory=list)


def _write_member(fd_dir: int, name: str, data: IO[bytes], size: int, mode: int, cap: int,
                  owner: tuple[int, int] | None) -> int:
    try:
        st = os.lstat(name, dir_fd=fd_dir)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeOutput(f"would replace {guard.what_is(st.st_mode)} in the copy")
    except FileNotFoundError:
        pass
    if size > cap:
        raise UnsafeOutput(f"is {guard.human(size)}, over the {guard.human(cap)} this suite fetches of one file")
    try:
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=fd_dir)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeOutput("would be written through a link") from None
        raise
    try:
        written = guard.pour(data.read, out, cap, "fetches of one file")
        os.fchmod(out, mode & 0o7777 & ~0o6000)  # never setuid/setgid on the host
        if owner is not None and os.geteuid() == 0:
            os.fchown(out, *owner)
        return written
    finally:
        os.close(out)


def extract_archive(chunks: Iterable[bytes], dest: Path, strip: str = "", *, file_cap: int = FETCH_FILE_CAP,
                    total_cap: int = FETCH_TOTAL_CAP, max_members: int = FETCH_MAX_MEMBERS,
                    appends: dict[str, int] | None = None, append_cap: int = 64 * guard.MiB,
                    keep_existing_links: bool = True) -> Extracted:
    """Extract a tar stream (``get_archive``) into the existing directory ``dest``, member by member, refusing
    anything that could write outside it.

    ``strip``: the top-level name the engine puts first (``out`` for ``/out``); members outside it are refused.
    Regular files and directories are written (modes kept, setuid/setgid dropped, owners kept when root); a
    symlink or FIFO is recreated inert when nothing is at its place yet (the guarded reader never follows or
    opens one); hard links and devices are refused. Every directory is reached with O_NOFOLLOW one component at
    a time, so a link (in the archive or already in ``dest``) is never written through. ``appends`` maps a
    relative path to an fd the member's bytes are appended to instead (the executor log, which the suite writes
    itself while the container runs). Raises :class:`TransferError` only when the stream itself is unreadable.
    """
    done = Extracted()
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    members = 0
    try:
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks), 1 << 20), mode="r|") as tar:
            for m in tar:
                members += 1
                if members > max_members:
                    done.refused.append(f"(the rest) not fetched: more than {max_members} entries")
                    break
                name = m.name.lstrip("./") if not strip else m.name
                if strip:
                    head, _, rest = m.name.partition("/")
                    if head != strip:
                        done.refused.append(f"{m.name[:200]!r} lies outside {strip}/")
                        continue
                    name = rest
                if name.strip("/") in ("", "."):
                    continue  # the root itself
                parts = guard.plain_relpath(name)
                shown = f"{strip}/{name}" if strip else name
                if parts is None:
                    done.refused.append(f"{shown[:200]!r} is not a plain relative path (.., control characters, "
                                        f"over {guard.MAX_PATH_DEPTH} levels or {guard.MAX_NAME_BYTES}-byte names)")
                    continue
                try:
                    if m.isdir():
                        os.close(guard.open_dirs(root_fd, parts, create=True))
                        done.dirs += 1
                        continue
                    parent = guard.open_dirs(root_fd, parts[:-1], create=True)
                    try:
                        leaf = parts[-1]
                        rel = "/".join(parts)
                        if m.isreg() and appends is not None and rel in appends:
                            logsrc = tar.extractfile(m)
                            if logsrc is not None:
                                data, _ = guard.drain(iter(lambda: logsrc.read(1 << 20), b""), append_cap)
                                os.write(appends[rel], data)
                                done.bytes += len(data)
                        elif m.isreg():
                            if done.bytes + m.size > total_cap:
                                raise UnsafeOutput(f"would take the fetched /out past {guard.human(total_cap)}")
                            src = tar.extractfile(m)
                            if src is None:
                                raise UnsafeOutput("has no data in the archive")
                            done.bytes += _write_member(parent, leaf, src, m.size, m.mode, file_cap,
                                                        (m.uid, m.gid))
                            done.files += 1
                        elif m.issym() or m.isfifo():
                            try:
                                os.lstat(leaf, dir_fd=parent)
                                exists = True
                            except FileNotFoundError:
                                exists = False
                            if exists and not keep_existing_links:
                                raise UnsafeOutput("would replace an entry the suite made")
                            if not exists:
                                if m.issym():
                                    os.symlink(m.linkname, leaf, dir_fd=parent)
                                else:
                                    os.mkfifo(leaf, 0o644, dir_fd=parent)
                                done.links += 1
                        elif m.islnk():
                            raise UnsafeOutput(f"is a hard link (to {m.linkname[:120]!r}); not fetched")
                        else:
                            raise UnsafeOutput("is a device node; not fetched")
                    finally:
                        os.close(parent)
                except UnsafeOutput as exc:
                    done.refused.append(f"{shown[:200]} {exc.problem}")
                except OSError as exc:
                    done.refused.append(f"{shown[:200]} could not be written: {exc.strerror or exc}")
    except (tarfile.TarError, *API_ERRORS) as exc:
        raise TransferError(f"the archive of {strip or dest} from the engine is unreadable: {exc}") from None
    finally:
        os.close(root_fd)
    return done


def read_single(chunks: Iterable[bytes], cap: int) -> bytes | None:
    """The bytes of the one regular file in a ``get_archive`` stream of a file (at most ``cap``), else None."""
    try:
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks), 1 << 16), mode="r|") as tar:
            for m in tar:
                if not m.isreg():
                    return None
                src = tar.extractfile(m)
                return None if src is None else src.read(cap)
    except (tarfile.TarError, *API_ERRORS):
        return None
    return None


def archive_digest(chunks: Iterable[bytes]) -> str:
    """A digest of the names, modes, sizes and mtimes in a tar stream (the contents are skipped)."""
    h = hashlib.sha1()
    try:
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks), 1 << 20), mode="r|") as tar:
            for m in tar:
                h.update(f"{m.name}:{m.mode:o}:{m.type!r}:{m.size}:{m.mtime}:{m.linkname}\n"
                         .encode("utf-8", "surrogateescape"))  # tarfile decodes non-UTF-8 names so
    except (tarfile.TarError, *API_ERRORS):
        h.update(b"unreadable")
    return h.hexdigest()


def _tar_of(directory: Path) -> IO[bytes]:
    """A tar (in a spooled temp file) of the contents of ``directory``: links stay links, owners and modes kept."""
    buf = tempfile.SpooledTemporaryFile(max_size=64 * guard.MiB)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(directory)):
            tar.add(str(directory / entry), arcname=entry, recursive=True)  # dereference=False: links as links
    buf.seek(0)
    return buf


# --------------------------------------------------------------------------------------------------------
# One run's volumes
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeMount:
    host: Path  # the host directory it stands for
    target: str  # where the task container mounts it
    read_only: bool
    volume: str  # the named volume
    fetch: bool  # copied back after the run (/out, the TensorBoard folder)
    ship_mode: int | None = None  # mode of the mount point's root (the platform's chmod 777 of /out)


def volume_mounts(name: str, in_dir: Path, out_dir: Path,
                  extra: tuple[tuple[Path, str, str], ...]) -> list[VolumeMount]:
    """The volumes of the run called ``name``: /in (read-only), /out, and each extra mount (host path = target)."""
    mounts = [VolumeMount(in_dir, "/in", True, f"{name}-in", False),
              VolumeMount(out_dir, "/out", False, f"{name}-out", True)]
    for i, (host, target, mode) in enumerate(extra):
        # the asset cache is input (not fetched back: its digest before and after is compared remotely);
        # the TensorBoard folder is output
        mounts.append(VolumeMount(host, target, mode == "ro", f"{name}-m{i}", "tensorboard" in host.name))
    return mounts


def docker_mounts(mounts: list[VolumeMount]) -> list[docker.types.Mount]:
    return [docker.types.Mount(target=m.target, source=m.volume, type="volume", read_only=m.read_only)
            for m in mounts]


class ArchiveTransfer:
    """The volumes, the helper container and the copies of one task run (see the module docstring)."""

    def __init__(self, cl: docker.DockerClient, image: str, name: str, mounts: list[VolumeMount],
                 labels: dict[str, str]) -> None:
        self.cl = cl
        self.image = image
        self.name = name
        self.mounts = mounts
        self.labels = labels
        self.helper: Any = None
        self.volumes: list[Any] = []
        self.notes: list[str] = []
        self.asset_digests: tuple[str, str] | None = None  # the asset cache volume before/after the run
        self.shipped_bytes = 0
        self.fetched: Extracted | None = None
        self.timings: dict[str, float] = {}

    # -- before the run --------------------------------------------------------------------------------------
    def ship(self) -> None:
        t0 = time.monotonic()
        try:
            for m in self.mounts:
                self.volumes.append(self.cl.volumes.create(name=m.volume, labels=self.labels))
            self.helper = self.cl.containers.create(
                image=self.image, command=["true"], entrypoint=[], name=f"{self.name}-transfer", labels=self.labels,
                network_mode="none", detach=True,
                mounts=[docker.types.Mount(target=m.target, source=m.volume, type="volume") for m in self.mounts])
            for m in self.mounts:
                tar = _tar_of(m.host)
                try:
                    size = tar.seek(0, os.SEEK_END)
                    tar.seek(0)
                    self.shipped_bytes += size
                    if not self.helper.put_archive(m.target, tar):
                        raise TransferError(f"the engine refused the archive of {m.host} for {m.target}")
                finally:
                    tar.close()
            self._fix_roots()
            asset = self._asset_mount()
            if asset is not None:
                self.asset_digests = (archive_digest(self._get(asset.target)), "")
        except API_ERRORS as exc:
            raise TransferError(f"could not ship the workspace to the engine: {exc}") from None
        self.timings["ship_s"] = round(time.monotonic() - t0, 3)

    def _fix_roots(self) -> None:
        """Give each output volume's root the mode and owner of its host directory (the platform's ``chmod 777``
        of /out; 1.1's /out owned by the run's uid): a tar cannot change the directory it is extracted into, so
        one short root container from the image does it (``sh``, ``chmod``, ``chown``)."""
        script = []
        fixed = []
        for m in self.mounts:
            st = os.lstat(m.host)
            if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 0, 0):
                continue  # what a fresh volume's root is already
            fixed.append(m)
            script.append(f"chmod {stat.S_IMODE(st.st_mode):o} '{m.target}'")
            if (st.st_uid, st.st_gid) != (0, 0):
                script.append(f"chown {st.st_uid}:{st.st_gid} '{m.target}'")
        if not script:
            return
        try:
            self.cl.containers.run(image=self.image, entrypoint=["sh", "-c", " && ".join(script)], user="0:0",
                                   network_mode="none", labels=self.labels, remove=True,
                                   mounts=[docker.types.Mount(target=m.target, source=m.volume, type="volume")
                                           for m in fixed])
        except (docker.errors.ContainerError, *API_ERRORS) as exc:
            self.notes.append(f"the mode of /out could not be set to the platform's ({exc}); a non-root image may "
                              "not be able to write there")

    def _volume_for(self, target: str) -> str:
        return next(m.volume for m in self.mounts if m.target == target)

    def _asset_mount(self) -> VolumeMount | None:
        return next((m for m in self.mounts if m.target not in ("/in", "/out") and not m.fetch), None)

    def _get(self, path: str) -> Iterator[bytes]:
        stream, _ = self.helper.get_archive(path)
        return iter(stream)

    # -- while it runs ---------------------------------------------------------------------------------------
    def read_monitor(self) -> bytes | None:
        try:
            stream, st = self.helper.get_archive("/out/monitor.txt")
        except API_ERRORS:
            return None
        if int(st.get("mode", 0)) & _GO_TYPE_BITS or int(st.get("size", 0)) > guard.CAPS["monitor"] * 4:
            return None  # a link, FIFO, directory...: MON-01 reports it from the fetched copy
        return read_single(stream, guard.CAPS["monitor"])

    def is_regular(self, rel: str) -> bool:
        try:
            stream, st = self.helper.get_archive(f"/out/{rel}")
        except API_ERRORS:
            return False
        ok = not (int(st.get("mode", 0)) & _GO_TYPE_BITS) and not st.get("linkTarget")
        try:
            stream.close()
        except Exception:
            pass
        return ok

    # -- after the run ---------------------------------------------------------------------------------------
    def fetch(self, log_path: Path) -> None:
        t0 = time.monotonic()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for m in self.mounts:
                if not m.fetch:
                    continue
                strip = os.path.basename(m.target.rstrip("/"))
                got = extract_archive(self._get(m.target), m.host, strip=strip,
                                      appends={"ymir-executor-out.log": log_fd} if m.target == "/out" else None)
                if m.target == "/out":
                    self.fetched = got
                self.notes += [f"{m.target}: not fetched: {r}" for r in got.refused]
            asset = self._asset_mount()
            if asset is not None and self.asset_digests is not None:
                self.asset_digests = (self.asset_digests[0], archive_digest(self._get(asset.target)))
            if self.notes:
                os.write(log_fd, "".join(f"[ymir-conformance] archive transfer: {n}\n"
                                         for n in self.notes[:50]).encode())
        except API_ERRORS as exc:
            raise TransferError(f"could not fetch /out from the engine: {exc}") from None
        finally:
            os.close(log_fd)
        self.timings["fetch_s"] = round(time.monotonic() - t0, 3)

    def cleanup(self) -> None:
        if self.helper is not None:
            try:
                self.helper.remove(force=True)
            except API_ERRORS:
                pass
        for v in self.volumes:
            try:
                v.remove(force=True)
            except API_ERRORS:
                pass


class RemoteMonitorSampler:
    """:class:`progress.MonitorSampler` over the API: polls ``/out/monitor.txt`` every ``interval_s``."""

    def __init__(self, transfer: ArchiveTransfer, interval_s: float = MONITOR_INTERVAL_S) -> None:
        self.transfer = transfer
        self.interval_s = interval_s
        self._samples: list[ProgressSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_raw: str | None = None
        self.polls = 0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._read(record=False)
        self._thread = threading.Thread(target=self._loop, name="ymir-remote-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> list[ProgressSample]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None
            self._read(record=True)
        return list(self._samples)

    @property
    def latest(self) -> str | None:
        return self._last_raw

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read(record=True)

    def _read(self, record: bool) -> None:
        self.polls += 1
        data = self.transfer.read_monitor()
        if data is None:
            return
        raw = data.decode("utf-8", errors="replace")
        if raw == self._last_raw:
            return
        self._last_raw = raw
        if record and len(self._samples) < MONITOR_MAX_SAMPLES:
            self._samples.append(ProgressSample(seen_s=time.monotonic() - self._t0, raw=raw))


__all__ = ["ArchiveTransfer", "Extracted", "MODES", "RemoteMonitorSampler", "TransferError", "bind_problem",
           "choose", "docker_mounts", "extract_archive", "is_local_url", "volume_mounts"]
