"""The suite survives images from strangers (issue 10): the hostile gallery, run the way a release pipeline does.

For each entry of fixtures/executors/hostile/gallery.yaml this runs a plain ``python -m pytest --image=...`` as a
subprocess of its own (as root, from an empty directory, with ``YMIR_CONFORMANCE_TAG`` set so its containers
can be counted) while a host canary is planted at /var/lib/ymir-conformance-canary/secret.txt, and asserts that
the run

* ends within the entry's wall-time budget, with the declared exit code (1: the image is not conformant);
* prints every rule of ``expect.must`` as ``[RULE MUST]`` and every rule of ``expect.should`` at either level,
  and no ``INTERNALERROR`` / ``Traceback``;
* peaks under 200 MiB of resident memory (the ru_maxrss of the pytest process, from ``os.wait4``);
* never shows the canary token: not on stdout/stderr, not in any file left under the reports or the workdir
  (model cache included; files are read as bytes, symlinks are not followed);
* creates no host file outside its workspace (the entry's ``no_host_files`` globs, and new names containing
  "ymir-hostile" at the top of / and /tmp);
* leaves no container behind (by the tag label, and by the image as ancestor);
* sends nothing to the Docker host: a session-wide listener bound only to the default bridge's gateway address
  (``docker network inspect bridge``), on TCP and UDP, must receive no connection and no datagram while any
  hostile image runs (the exfil-on-retry images try exactly that whenever they get a network).
* lets no terminal control reach a reader: no ESC, C1 control (U+0080-U+009F, or a raw byte of that range that is
  not UTF-8) or bidi override in the captured stdout/stderr, the JUnit XML, report.json's finding texts (message,
  file, where, found, expected, fix) or the certificate: what the image chose is shown escaped (``\\x1b``);
* with ``expect.max_disk_mib``: the host's disk use (statvfs of the workdir's filesystem, sampled every 0.1 s
  during the run, less the value before it) stays under that many MiB. (Nothing walks the workspace meanwhile:
  listing it would show up in the suite's input audit as the image listing /in/assets.)

Options the plugin does not know yet (``pytest --help`` does not list them) are dropped from the run and reported
as a failure of their own, so one run shows both what is missing and how the suite behaves without it.

The child runs under RLIMIT_AS 4 GiB and is stopped (SIGTERM, then SIGKILL of its process group) at
budget + 60 s, so a suite that reads /dev/zero or expands an alias bomb cannot take the host down with it;
containers it leaves are counted first, then removed by this test.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import resource
import secrets
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import docker
import pytest

from ymir_conformance.fixture_images import HOSTILE_GALLERY_FILES, image_tag, load_gallery
from tests.tags import new_tag

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "executors"
CANARY_DIR = Path("/var/lib/ymir-conformance-canary")
CANARY = CANARY_DIR / "secret.txt"
MAX_RSS_MIB = 200
CHILD_ADDRESS_SPACE = 4 * 1024 ** 3  # guard for this machine, not an assertion: the RSS check is
KILL_MARGIN_S = 60  # past the entry's budget the run is stopped (and has failed the budget anyway)
LABEL_TAG = "org.ymir-conformance.tag"
WATCHED_DIRS = (Path("/"), Path("/tmp"))
EXFIL_PORTS = range(47913, 47921)  # YMIR_HOSTILE_EXFIL_PORTS of the exfil-on-retry gallery images
LISTENER_MAX_S = 4 * 3600  # the listener stops by itself after this long, whatever happens to the session


def gallery() -> list[Any]:
    params = []
    for rel in HOSTILE_GALLERY_FILES:
        prefix = rel.split("/")[0]
        for entry in load_gallery(ROOT, rel):
            params.append(pytest.param(entry, id=f"{prefix}-{entry['name']}"))
    return params


@pytest.fixture(scope="session")
def canary() -> Iterator[bytes]:
    """/var/lib/ymir-conformance-canary/ (0700 root) holding secret.txt (0600): a fresh token per session."""
    if os.geteuid() != 0:
        pytest.skip("the hostile gallery plants a root-only host canary: run as root (as release pipelines do)")
    CANARY_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(CANARY_DIR, 0o700)
    token = f"ymir-canary-{secrets.token_hex(16)}".encode()
    fd = os.open(CANARY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, token + b"\n")
    finally:
        os.close(fd)
    os.chmod(CANARY, 0o600)
    yield token
    try:
        if CANARY.read_bytes().strip() == token:
            CANARY.unlink()
            CANARY_DIR.rmdir()
    except OSError:
        pass


def bridge_gateway(cl: docker.DockerClient) -> str:
    """The default bridge's gateway address, from ``docker network inspect bridge``: IPAM's Gateway, else (Docker
    20.10 leaves it out) the first host address of its Subnet, which the engine gives the bridge."""
    ipam = (cl.networks.get("bridge").attrs.get("IPAM") or {}).get("Config") or []
    for cfg in ipam:
        if cfg.get("Gateway") and ":" not in cfg["Gateway"]:
            return str(cfg["Gateway"]).split("/")[0]
    for cfg in ipam:
        subnet = ipaddress.ip_network(cfg.get("Subnet", ""), strict=False)
        if subnet.version == 4:
            return str(next(subnet.hosts()))
    raise RuntimeError(f"docker network inspect bridge names no IPv4 gateway or subnet: {ipam}")


@dataclass
class Listener:
    """TCP and UDP sockets bound only to the bridge gateway address, on the first free port of EXFIL_PORTS; a
    thread records every connection and datagram (at most 4 KiB each, 2 s per connection) until stopped or
    LISTENER_MAX_S passed."""

    address: str
    port: int = 0
    received: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _socks: list[socket.socket] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for port in EXFIL_PORTS:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                tcp.bind((self.address, port))
                udp.bind((self.address, port))
            except OSError:
                tcp.close()
                udp.close()
                continue
            tcp.listen(16)
            self.port, self._socks = port, [tcp, udp]
            break
        else:
            raise RuntimeError(f"no free port in {EXFIL_PORTS} on {self.address} for the exfiltration listener")
        self._thread = threading.Thread(target=self._serve, daemon=True, name="exfil-listener")
        self._thread.start()

    def _serve(self) -> None:
        tcp, udp = self._socks
        deadline = time.monotonic() + LISTENER_MAX_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([tcp, udp], [], [], 0.5)
            for sock in ready:
                if sock is udp:
                    data, peer = udp.recvfrom(4096)
                    self.received.append(f"udp from {peer[0]}:{peer[1]}: {data[:80]!r}")
                    continue
                conn, peer = tcp.accept()
                conn.settimeout(2)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                finally:
                    conn.close()
                self.received.append(f"tcp from {peer[0]}:{peer[1]}: {data[:80]!r}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for sock in self._socks:
            sock.close()


@pytest.fixture(scope="session")
def host_listener(docker_client: docker.DockerClient) -> Iterator[Listener]:
    """The listener on the bridge gateway for the whole session: nothing may reach it."""
    listener = Listener(bridge_gateway(docker_client))
    try:
        listener.start()
    except (OSError, RuntimeError) as exc:
        pytest.fail(f"cannot listen on the Docker host's bridge address: {exc}", pytrace=False)
    yield listener
    listener.stop()
    assert not listener.received, f"the Docker host's bridge address {listener.address}:{listener.port} received " \
                                  f"data from a hostile image: {listener.received[:5]}"


def test_the_listener_hears_a_container_on_the_bridge(docker_client: docker.DockerClient, host_listener: Listener,
                                                      fixture_image: Any) -> None:
    """The listener is not deaf: a plain container on the default bridge reaches it (this container is the
    test's own, not a hostile image's, and its message is taken out again)."""
    before = len(host_listener.received)
    image = fixture_image("reference-det")
    docker_client.containers.run(
        image, ["python3", "-c", f"import socket; socket.create_connection(('{host_listener.address}', "
                                 f"{host_listener.port}), timeout=5).sendall(b'ping')"],
        remove=True, network_mode="bridge", labels={LABEL_TAG: os.environ.get("YMIR_CONFORMANCE_TAG", "-")})
    deadline = time.monotonic() + 10
    while len(host_listener.received) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    heard = host_listener.received[before:]
    del host_listener.received[before:]
    assert heard and "b'ping'" in heard[0], heard


@lru_cache(maxsize=1)
def plugin_flags() -> frozenset[str]:
    """The --ymir-* flags the plugin registers: from `pytest --help`, else (when --help itself breaks) from the
    option table."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], capture_output=True,
                          text=True, timeout=120, cwd="/")
    flags = set(re.findall(r"(?<![\w-])(--ymir-[a-z0-9-]+)", proc.stdout)) if proc.returncode == 0 else set()
    if not flags:
        from ymir_conformance import options
        flags = {flag for flag, *_ in options.OPTIONS}
    return frozenset(flags)


def known_option(arg: str) -> bool:
    flag = arg.split("=", 1)[0]
    return not flag.startswith("--ymir-") or flag in plugin_flags()


@dataclass
class Run:
    argv: list[str]
    exit_code: int | None  # None: killed by this test
    wall_s: float
    max_rss_mib: float
    output: bytes
    killed: str = ""
    dropped_options: list[str] = field(default_factory=list)
    disk_peak_mib: float = 0.0  # statvfs: the filesystem's used space, peak less the value before the run


def fs_used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize



def _limit_child() -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


def run_suite(entry: dict[str, Any], tmp: Path, tag: str) -> Run:
    image = image_tag(f"hostile-{entry['name']}")
    options = [str(o) for o in entry.get("options") or []]
    dropped = [o for o in options if not known_option(o)]
    argv = [sys.executable, "-m", "pytest", f"--image={image}", f"--ymir-tasks={','.join(entry['tasks'])}",
            "-p", "no:cacheprovider", f"--ymir-workdir={tmp / 'work'}", f"--ymir-report-dir={tmp / 'reports'}",
            f"--junitxml={tmp / 'reports' / 'junit.xml'}", *[o for o in options if o not in dropped]]
    cwd = tmp / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "YMIR_"))}
    env["YMIR_CONFORMANCE_TAG"] = tag
    out_path = tmp / "pytest-output.txt"
    budget = float(entry.get("budget_s", 120))
    watch_disk = bool((entry.get("expect") or {}).get("max_disk_mib"))
    disk_before = fs_used(tmp)
    with open(out_path, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_limit_child)
        killed = ""
        deadline = start + budget + KILL_MARGIN_S
        status = rusage = None
        disk_peak = 0
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if watch_disk:
                disk_peak = max(disk_peak, fs_used(tmp) - disk_before)
            if now > deadline and not killed:
                killed = f"SIGTERM at {now - start:.0f} s"
                os.killpg(proc.pid, signal.SIGTERM)
                deadline = now + 20
            elif now > deadline:
                killed += f", SIGKILL at {now - start:.0f} s"
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    try:  # whatever the child started in its process group (it should have started nothing that outlives it)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = proc.returncode if not killed else None
    return Run(argv, code, wall, rusage.ru_maxrss / 1024, out_path.read_bytes(), killed, dropped,
               disk_peak / 2 ** 20)


# What a terminal obeys: ESC, the C1 controls (U+0080-U+009F; a raw byte 0x80-0x9F that is not UTF-8 decodes to
# U+DC80-U+DC9F here) and the bidi overrides/isolates that reorder what a reader sees.
CONTROL = re.compile("[\x1b\x80-\x9f\udc80-\udc9f\u202a-\u202e\u2066-\u2069]")
FINDING_TEXTS = ("message", "file", "where", "found", "expected", "fix")


def controls_in(data: bytes) -> list[str]:
    """Each terminal control in ``data`` (UTF-8), with a little context, as repr."""
    text = data.decode("utf-8", "surrogateescape")
    return [repr(text[max(0, m.start() - 30):m.end() + 10]) for m in CONTROL.finditer(text)]


def control_leaks(run: Run, reports: Path) -> list[str]:
    """Where a terminal control reached a reader: the output, the JUnit XML, report.json's finding texts, the
    certificate."""
    leaks = []
    places: list[tuple[str, bytes]] = [("the pytest output", run.output)]
    for name in ("junit.xml", "certificate.html"):
        if (reports / name).is_file():
            places.append((name, (reports / name).read_bytes()))
    if (reports / "report.json").is_file():
        import json

        data = json.loads((reports / "report.json").read_bytes())
        places.append(("report.json (raw bytes)", (reports / "report.json").read_bytes()))
        texts = [str(f.get(k, "")) for f in data.get("findings", []) for k in FINDING_TEXTS]
        places.append(("report.json findings", "\n".join(texts).encode("utf-8", "surrogatepass")))
    for where, data in places:
        found = controls_in(data)
        if found:
            leaks.append(f"{len(found)} terminal control(s) in {where}, e.g. {found[:3]}")
    return leaks


def walk(root: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root, followlinks=False)`` without recursion (os.walk recurses on Python < 3.12, and a tree the
    suite failed to remove may be thousands of levels deep); what cannot be listed (paths over PATH_MAX) is
    skipped."""
    stack = [str(root)]
    while stack:
        top = stack.pop()
        dirs, files = [], []
        try:
            with os.scandir(top) as entries:
                for e in entries:
                    (dirs if e.is_dir(follow_symlinks=False) else files).append(e.name)
        except OSError:
            continue
        yield top, dirs, files
        stack += [os.path.join(top, d) for d in dirs]


def files_containing(root: Path, needle: bytes) -> list[str]:
    """Every regular file under ``root`` (symlinks not followed) whose bytes contain ``needle``."""
    hits = []
    for dirpath, dirnames, filenames in walk(root):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if needle in name.encode(errors="surrogateescape"):
                hits.append(p + " (in its name)")
            if not stat.S_ISREG(st.st_mode):
                continue
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                tail = b""
                while chunk := f.read(1 << 20):
                    if needle in tail + chunk:
                        hits.append(p)
                        break
                    tail = chunk[-len(needle):]
    return hits


def containers_of(cl: docker.DockerClient, tag: str, image: str) -> list[Any]:
    found = {c.id: c for c in cl.containers.list(all=True, filters={"label": f"{LABEL_TAG}={tag}"})}
    found.update({c.id: c for c in cl.containers.list(all=True, filters={"ancestor": image})})
    return list(found.values())


def host_names() -> set[str]:
    names = set()
    for d in WATCHED_DIRS:
        try:
            names |= {str(d / n) for n in os.listdir(d) if "ymir-hostile" in n}
        except OSError:
            pass
    return names


def cleanup_problems(tmp: Path, run: Run) -> list[str]:
    """The session cleaned up after itself whatever the image left in /out (issue 17 item 5): its exit status is
    report.json's, nothing but the shared model cache is left in the workdir, and no device node anywhere under
    the test's directory."""
    import json

    problems = []
    report = tmp / "reports" / "report.json"
    if run.exit_code is not None and report.is_file():
        try:
            status = json.loads(report.read_text()).get("exit_status")
        except ValueError:
            status = "unreadable"
        if status != run.exit_code:
            problems.append(f"exit status {run.exit_code} but report.json says exit_status {status}")
    work = tmp / "work"
    left = sorted(p.name for p in work.iterdir() if p.name != "model-cache") if work.is_dir() else []
    if left:
        problems.append(f"left in the workdir: {left}")
        from ymir_conformance.rmtree import remove_tree

        for name in left:  # so that pytest's own tmp_path cleanup (shutil.rmtree) does not die on them later
            remove_tree(work / name)
    for dirpath, dirnames, filenames in walk(tmp):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
                problems.append(f"a device node was left at {os.path.join(dirpath, name)}")
    return problems


@pytest.mark.parametrize("entry", gallery())
def test_hostile_image_is_refused_without_harm(docker_client: docker.DockerClient, fixture_image: Any, canary: bytes,
                                               host_listener: Listener, tmp_path: Path, entry: dict[str, Any]) -> None:
    name = entry["name"]
    image = fixture_image(f"hostile-{name}")
    expect = entry.get("expect") or {}
    globs = [str(g) for g in expect.get("no_host_files") or []]
    for stale in containers_of(docker_client, "-", image):  # from an earlier, killed session of this test
        stale.remove(force=True)
    before = host_names()
    for g in globs:  # left by an earlier session of this test (the suite wrote them as root): not ours to judge
        for p in Path("/").glob(g.lstrip("/")):
            subprocess.run(["rm", "-rf", "--one-file-system", str(p)], check=False)
    before = host_names()
    tag = new_tag("hostile-")
    heard_before = len(host_listener.received)

    run = run_suite(entry, tmp_path, tag)

    leftovers = containers_of(docker_client, tag, image)
    for c in leftovers:
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass
    text = run.output.decode("utf-8", "replace")
    problems: list[str] = []
    budget = float(entry.get("budget_s", 120))
    if run.dropped_options:
        problems.append(f"the plugin does not know option(s) {run.dropped_options} yet: ran without them")
    if run.killed:
        problems.append(f"the run did not end: killed by this test ({run.killed})")
    elif run.wall_s > budget:
        problems.append(f"wall time {run.wall_s:.1f} s over the budget {budget:.0f} s")
    want_code = int(expect.get("exit_code", 1))
    if run.exit_code != want_code:
        problems.append(f"exit code {run.exit_code}, expected {want_code}")
    missing = [r for r in expect.get("must") or [] if f"[{r} MUST]" not in text]
    if missing:
        problems.append(f"rule(s) not reported at MUST level: {missing}")
    unseen = [r for r in expect.get("should") or [] if f"[{r} SHOULD]" not in text and f"[{r} MUST]" not in text]
    if unseen:
        problems.append(f"rule(s) not reported (SHOULD or MUST): {unseen}")
    for bad in ("INTERNALERROR", "Traceback"):
        if bad in text:
            line = next(ln for ln in text.splitlines() if bad in ln)
            problems.append(f"{bad} in the output: {line.strip()[:200]!r}")
    if run.max_rss_mib > MAX_RSS_MIB:
        problems.append(f"peak RSS {run.max_rss_mib:.0f} MiB over {MAX_RSS_MIB} MiB")
    if canary in run.output:
        problems.append("the canary token is in the pytest output")
    leaks = [p for p in files_containing(tmp_path, canary) if not p.endswith("pytest-output.txt")]
    if leaks:
        problems.append(f"the canary token is in {len(leaks)} file(s): {[os.path.relpath(p, tmp_path) for p in leaks[:6]]}")
    created = sorted({str(p) for g in globs for p in Path("/").glob(g.lstrip("/"))} | (host_names() - before))
    if created:
        problems.append(f"host files created outside the workspace: {created}")
    if leftovers:
        problems.append(f"{len(leftovers)} container(s) left behind: {[c.name for c in leftovers]}")
    heard = host_listener.received[heard_before:]
    if heard:
        problems.append(f"the Docker host's bridge address {host_listener.address}:{host_listener.port} received "
                        f"{len(heard)} connection(s)/datagram(s): {heard[:3]}")
    problems += control_leaks(run, tmp_path / "reports")
    max_disk = expect.get("max_disk_mib")
    if max_disk and run.disk_peak_mib > float(max_disk):
        problems.append(f"host disk use peaked {run.disk_peak_mib:.0f} MiB above its value before the run (statvfs "
                        f"of the workdir's filesystem), over {max_disk} MiB")
    problems += cleanup_problems(tmp_path, run)
    rules = sorted(set(re.findall(r"\[([A-Z]+-?\d+) (?:MUST|SHOULD)\]", text)))
    disk = f", host disk peak +{run.disk_peak_mib:.0f} MiB" if max_disk else ""
    summary = (f"hostile-{name}: exit {run.exit_code}, {run.wall_s:.1f} s, peak RSS {run.max_rss_mib:.0f} MiB, "
               f"rules printed {rules}{disk}")
    print(summary)
    print("HOSTILE-SUMMARY " + repr({"name": name, "exit": run.exit_code, "wall_s": round(run.wall_s, 1),
                                      "rss_mib": round(run.max_rss_mib), "rules": rules, "killed": run.killed,
                                      "dropped": run.dropped_options, "problems": problems,
                                      **({"disk_peak_mib": round(run.disk_peak_mib)} if max_disk else {})}))
    tail = "\n".join(text.splitlines()[-40:])
    assert not problems, summary + "\n  - " + "\n  - ".join(problems) + f"\n--- last lines of the run ---\n{tail}"
