"""The docker engine as an ordinary process of the test's own: its own state, socket and no network.

Debian's `docker.io` brings `dockerd`. Started by hand with its own data root, exec
root, pid file, socket and daemon config, with vfs storage and without iptables, a
bridge or IP forwarding, it touches nothing of the machine's (no /var/lib/docker, no
/etc/docker/daemon.json, no firewall rules or sysctls). It starts containerd as a child
of its own under the exec root; `running_dockerd` stops both and removes every file.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .conftest import log_tail

STARTUP_TIMEOUT = 60
STOP_TIMEOUT = 30
# A unix socket's path holds at most 107 bytes, and containerd's lives two levels
# below the exec root: keep the whole tree short, whatever TMPDIR says.
SHORT_TMP = "/tmp"


class DockerdDidNotStart(Exception):
    """dockerd exited, or did not answer /_ping, in time; the message ends with its log."""


@dataclass
class Dockerd:
    directory: Path
    process: subprocess.Popen
    log: Path

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def host(self) -> str:
        """The value for DOCKER_HOST."""
        return f"unix://{self.socket}"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def answers_ping(socket_path: Path) -> bool:
    """True once the engine's API answers `GET /_ping` with OK."""
    connection = _UnixHTTPConnection(str(socket_path), timeout=2)
    try:
        connection.request("GET", "/_ping")
        response = connection.getresponse()
        return response.status == 200 and response.read() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def dockerd_argv(binary: str, directory: Path) -> list[str]:
    config = directory / "daemon.json"
    # An empty config of our own, so the machine's /etc/docker/daemon.json is not read.
    config.write_text("{}\n")
    return [
        binary,
        "--config-file", str(config),
        "--data-root", str(directory / "root"),
        "--exec-root", str(directory / "exec"),
        "--pidfile", str(directory / "docker.pid"),
        "-H", f"unix://{directory / 'docker.sock'}",
        "--storage-driver", "vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
    ]  # fmt: skip


def containerd_pid(directory: Path) -> int | None:
    """The pid of the containerd this dockerd started (it writes it under its exec root)."""
    try:
        return int((directory / "exec" / "containerd" / "containerd.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def is_ours(pid: int, directory: Path) -> bool:
    """Whether `pid` is still a process started with our directory on its command line
    (not a process that has since been given the same number).
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(directory).encode() in cmdline


def stop_process(pid: int, directory: Path) -> None:
    """SIGTERM `pid`, SIGKILL it when it outlives STOP_TIMEOUT; only while it is ours."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not is_ours(pid, directory):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while is_ours(pid, directory) and time.monotonic() < deadline:
            time.sleep(0.1)


def unmount_under(directory: Path) -> None:
    """Unmount whatever the engine left mounted below `directory`, deepest first, so the
    tree can be removed (vfs mounts nothing, but the engine may bind its own dirs).
    """
    prefix = str(directory) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def stop_dockerd(engine: Dockerd) -> None:
    """Stop dockerd, then its containerd if it outlived it, then remove their files."""
    child = containerd_pid(engine.directory)
    process = engine.process
    if process.poll() is None:
        # SIGTERM: dockerd stops its containerd itself on the way out.
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    if child is not None:
        stop_process(child, engine.directory)
    unmount_under(engine.directory)
    shutil.rmtree(engine.directory, ignore_errors=True)


@contextlib.contextmanager
def running_dockerd(binary: str, log_path: Path):
    """dockerd (the `binary`) on a socket of its own in a new short temporary directory,
    logging to `log_path` (which stays); yields a Dockerd, stopped and its directory
    removed afterwards. Raises DockerdDidNotStart when its API does not answer.
    """
    directory = Path(tempfile.mkdtemp(prefix="e2e-dockerd-", dir=SHORT_TMP))
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            dockerd_argv(binary, directory),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = Dockerd(directory, process, log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not answers_ping(engine.socket):
            if process.poll() is not None:
                raise DockerdDidNotStart(
                    f"dockerd exited with code {process.returncode}; its log:\n{log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise DockerdDidNotStart(
                    f"dockerd did not answer /_ping within {STARTUP_TIMEOUT} s; its log:\n"
                    f"{log_tail(log_path)}"
                )
            time.sleep(0.1)
        yield engine
    finally:
        stop_dockerd(engine)
