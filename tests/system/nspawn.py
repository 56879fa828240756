"""A booted Debian container under systemd-nspawn, driven like a NixOS test machine.

``Machine`` offers the subset of the NixOS test driver's machine API that ``scenarios.py`` uses
(``succeed``, ``fail``, ``execute``, ``wait_until_succeeds``, ``wait_for_unit``,
``wait_for_open_port``, ``systemctl``, ``start``, ``shutdown``), so the same scenario functions
run here against a real systemd and in a NixOS ``testScript``.

Layout of one machine (all under ``workdir``): ``lower`` is the cached root filesystem (read
only), ``upper``/``work`` an overlay that keeps every change of this session (so a restart of
the container keeps its data), ``root`` the merged tree that nspawn boots. The container gets its
own network namespace with only loopback: nothing in it can reach or be reached from outside.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class MachineError(AssertionError):
    pass


def _run(cmd: Sequence[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise MachineError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


class Machine:
    """One container. ``binds`` maps host paths to read-only paths inside it."""

    def __init__(self, name: str, rootfs: Path, workdir: Path, binds: dict[str, str] | None = None) -> None:
        self.name = name
        self.rootfs = rootfs
        self.workdir = workdir
        self.binds = dict(binds or {})
        self.root = workdir / "root"
        self.netns = name
        self.console_log = workdir / "console.log"
        self._nspawn: subprocess.Popen[bytes] | None = None
        self._leader: int | None = None
        self._mounted = False

    # --- file system -----------------------------------------------------------------------------
    def mount(self) -> None:
        if self._mounted:
            return
        for sub in ("upper", "work", "root"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        _run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={self.rootfs},upperdir={self.workdir / 'upper'},workdir={self.workdir / 'work'}",
                str(self.root),
            ]
        )
        self._mounted = True

    def run_offline(
        self,
        command: Sequence[str],
        *,
        timeout: float = 900,
        network: bool = False,
        binds_rw: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run a command in the (not booted) container, e.g. the installer; returns its output.
        Without ``network`` it has no network at all; with it, it shares the host's."""
        self.mount()
        args = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "-D",
            str(self.root),
            "--setenv=PATH=" + CONTAINER_PATH,
        ]
        if not network:
            args.append("--private-network")
        args += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        args += [f"--bind={host}:{inside}" for host, inside in (binds_rw or {}).items()]
        args += [f"--setenv={k}={v}" for k, v in (env or {}).items()]
        proc = subprocess.run([*args, "--", *command], capture_output=True, text=True, timeout=timeout, check=False)
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise MachineError(f"{shlex.join(command)} exited {proc.returncode} in {self.name}:\n{out}")
        return out

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        """Write a file into the container's tree (works booted or not)."""
        self.mount()
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def booted(self) -> bool:
        return self._nspawn is not None and self._nspawn.poll() is None

    def start(self, timeout: float = 60) -> None:
        if self.booted:
            return
        self.mount()
        if not Path(f"/run/netns/{self.netns}").exists():
            _run(["ip", "netns", "add", self.netns])
            _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        args = [
            "systemd-nspawn",
            "--quiet",
            "-b",
            "-D",
            str(self.root),
            "--register=no",
            "--keep-unit",
            f"--network-namespace-path=/run/netns/{self.netns}",
            f"--machine={self.name}",
            "--hostname=" + self.name,
        ]
        args += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        log = open(self.console_log, "ab")  # nspawn inherits the descriptor
        self._nspawn = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise MachineError(f"systemd-nspawn exited {self._nspawn.returncode}; see {self.console_log}")
            leader = self._find_leader()
            if leader is not None:
                self._leader = leader
                # systemd answers on its private socket once it is up.
                _, state = self.execute(
                    "systemctl is-system-running --wait", timeout=max(1, deadline - time.monotonic())
                )
                if state.strip() in ("running", "degraded"):  # boot finished
                    return
            time.sleep(0.2)
        raise MachineError(f"{self.name} did not boot within {timeout}s; see {self.console_log}")

    def _find_leader(self) -> int | None:
        assert self._nspawn is not None
        try:
            children = Path(f"/proc/{self._nspawn.pid}/task/{self._nspawn.pid}/children").read_text().split()
        except OSError:
            return None
        for child in children:
            try:
                comm = Path(f"/proc/{child}/comm").read_text().strip()
            except OSError:
                continue
            if comm == "systemd":
                return int(child)
        return None

    def shutdown(self, timeout: float = 60) -> None:
        """Power the container off (SIGTERM to nspawn = clean shutdown of its systemd). The journal
        of the boot is appended to ``workdir/journal.log`` first (it lives in /run only)."""
        if self._nspawn is None:
            return
        if self._nspawn.poll() is None:
            with open(self.workdir / "journal.log", "a") as log:
                log.write(self.journal(lines=20000))
            self._nspawn.send_signal(signal.SIGTERM)
            try:
                self._nspawn.wait(timeout)
            except subprocess.TimeoutExpired:
                self._nspawn.kill()
                self._nspawn.wait(10)
        self._nspawn = None
        self._leader = None

    def crash(self) -> None:
        """Kill the container at once, as a power cut would."""
        if self._nspawn is not None and self._nspawn.poll() is None:
            self._nspawn.kill()
            self._nspawn.wait(30)
        self._nspawn = None
        self._leader = None

    def cleanup(self, keep_logs: Path | None = None) -> None:
        """Shut down, unmount and delete the session's tree; ``keep_logs``: copy the journal and
        console logs there first."""
        self.shutdown()
        if keep_logs is not None:
            for log in (self.console_log, self.workdir / "journal.log"):
                if log.exists():
                    shutil.copy2(log, keep_logs / log.name)
        if self._mounted:
            _run(["umount", str(self.root)], check=False)
            self._mounted = False
        if Path(f"/run/netns/{self.netns}").exists():
            _run(["ip", "netns", "del", self.netns], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- the NixOS-driver-like API ----------------------------------------------------------------
    def execute(self, command: str, timeout: float | None = 120) -> tuple[int, str]:
        """Run ``command`` with /bin/sh inside the booted container; returns (status, stdout)."""
        if not self.booted or self._leader is None:
            raise MachineError(f"{self.name} is not running")
        args = [
            "nsenter",
            "-t",
            str(self._leader),
            "-a",
            "--",
            "/usr/bin/env",
            "-i",
            f"PATH={CONTAINER_PATH}",
            "HOME=/root",
            "LANG=C.UTF-8",
            "TERM=dumb",
            "SYSTEMD_PAGER=",
            "SYSTEMD_COLORS=0",
            "/bin/sh",
            "-c",
            command,
        ]
        try:
            proc = subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise MachineError(f"timed out after {timeout}s: {command}") from exc
        return proc.returncode, proc.stdout + (proc.stderr if proc.returncode else "")

    def succeed(self, *commands: str, timeout: float | None = 120) -> str:
        output = ""
        for command in commands:
            status, out = self.execute(command, timeout=timeout)
            if status != 0:
                raise MachineError(f"command failed ({status}): {command}\n{out}")
            output += out
        return output

    def fail(self, *commands: str, timeout: float | None = 120) -> str:
        output = ""
        for command in commands:
            status, out = self.execute(command, timeout=timeout)
            if status == 0:
                raise MachineError(f"command succeeded unexpectedly: {command}\n{out}")
            output += out
        return output

    def wait_until_succeeds(self, command: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            status, last = self.execute(command, timeout=max(5, timeout))
            if status == 0:
                return last
            if time.monotonic() > deadline:
                raise MachineError(f"did not succeed within {timeout}s: {command}\n{last}")
            time.sleep(0.5)

    def wait_until_fails(self, command: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status, out = self.execute(command, timeout=max(5, timeout))
            if status != 0:
                return out
            if time.monotonic() > deadline:
                raise MachineError(f"did not fail within {timeout}s: {command}")
            time.sleep(0.5)

    def systemctl(self, q: str) -> tuple[int, str]:
        return self.execute(f"systemctl {q}")

    def wait_for_unit(self, unit: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            _, state = self.execute(f"systemctl show -p ActiveState --value {shlex.quote(unit)}")
            state = state.strip()
            if state == "active":
                return
            if state == "failed":
                _, status = self.execute(f"systemctl status --no-pager -n 30 {shlex.quote(unit)}")
                raise MachineError(f"unit {unit} failed:\n{status}")
            if time.monotonic() > deadline:
                _, status = self.execute(f"systemctl status --no-pager -n 30 {shlex.quote(unit)}")
                raise MachineError(f"unit {unit} not active within {timeout}s (state {state}):\n{status}")
            time.sleep(0.5)

    def wait_for_open_port(self, port: int, addr: str = "127.0.0.1", timeout: float = 60) -> None:
        self.wait_until_succeeds(f"ss -Htln 'sport = :{port}' | grep -q .", timeout=timeout)

    def journal(self, *units: str, lines: int = 200) -> str:
        selector = " ".join(f"-u {shlex.quote(u)}" for u in units)
        _, out = self.execute(f"journalctl -b --no-pager -o short-precise -n {lines} {selector}")
        return out


def require_host_tools() -> list[str]:
    """Return what this host lacks to run the system tests (empty when all is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("systemd-nspawn", "debootstrap", "ip", "nsenter", "mount"):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing
