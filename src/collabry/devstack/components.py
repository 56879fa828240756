"""Start Redis, PostgreSQL with DocumentDB, FerretDB v2, nginx and Collabry processes as children on loopback ports.

The same classes back `collabry dev up` and the test fixtures, so the tests exercise exactly the
commands and configuration a developer runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NGINX_DIR = Path(__file__).resolve().parents[3] / "nginx"


def web_root() -> Path:
    """The built web front end nginx serves at / (scripts/build-frontend.sh; COLLABRY_WEB_ROOT overrides)."""
    explicit = os.environ.get("COLLABRY_WEB_ROOT")
    return Path(explicit) if explicit else NGINX_DIR.parent / "frontend" / "dist"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "collabry"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, env_var: str, extra: Sequence[Path] = ()) -> str:
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    found = shutil.which(name)
    if found:
        return found
    for candidate in [*extra, cache_dir() / "bin" / name, Path("/usr/sbin") / name]:
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} not found: install it (scripts/bootstrap.sh) or set {env_var}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL built here
            return 200 <= int(resp.status) < 300
    except OSError:
        return False


@dataclass
class Process:
    """A child process with a readiness probe; stdout/stderr go to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    ready: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        # Logs hold user ids, addresses and request paths: readable by their owner only, and so is
        # every file a child creates (uploads, indexes, database and Redis files).
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        log = os.fdopen(fd, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C in a terminal reaches the supervisor only
            umask=0o077,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 30.0) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n{self.tail()}"
                )
            if self.ready():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 35.0, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()


def redis(port: int, data_dir: Path, *, appendonly: bool = False) -> Process:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_binary("redis-server", "COLLABRY_REDIS_SERVER_BIN"),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--daemonize",
        "no",
        "--maxmemory-policy",
        "noeviction",
    ]
    return Process("redis", argv, data_dir / "redis.log", lambda: port_open("127.0.0.1", port))


PG_BIN = Path(os.environ.get("COLLABRY_PG_BINDIR") or "/usr/lib/postgresql/15/bin")
# The server settings hosts use too (deploy/collabry-postgresql-setup appends the same file).
PG_CONF = Path(__file__).resolve().parents[3] / "deploy" / "postgresql.conf"


def _unprivileged(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the distribution's `postgres` user."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class Postgres:
    """A PostgreSQL cluster with DocumentDB, owned by an unprivileged user, listening on a unix
    socket inside its own data directory (mode 0700) and nowhere else."""

    data_dir: Path
    port: int = 5432  # names the socket file only: no TCP listener

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    @property
    def url(self) -> str:
        return f"postgres://postgres@/postgres?host={self.socket_dir}&port={self.port}"

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        _chown_postgres(self.data_dir)
        initdb = [
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",  # reachable only through the 0700 socket directory
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        ]
        done = subprocess.run(_unprivileged(initdb), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\n" + PG_CONF.read_text())
            fh.write("listen_addresses = ''\n")  # the unix socket only
            fh.write(f"unix_socket_directories = '{self.socket_dir}'\n")
            fh.write("unix_socket_permissions = 0700\n")
            # DocumentDB connects back to itself for some commands (createIndexes on a non-empty
            # collection); by default it tries TCP localhost, where nothing listens.
            fh.write(f"documentdb.localhost_connection_string = 'host={self.socket_dir}'\n")

    def process(self) -> Process:
        self.init()
        argv = _unprivileged([str(PG_BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)])
        return Process("postgresql", argv, self.data_dir.parent / "postgresql.log", self.accepting)

    def accepting(self) -> bool:
        done = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres"],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def psql(self, sql: str) -> str:
        done = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
             "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def ensure_documentdb(self) -> None:
        # Pulls documentdb_core, pg_cron, tsm_system_rows, vector, postgis and rum.
        self.psql("CREATE EXTENSION IF NOT EXISTS documentdb CASCADE")


def postgres(data_dir: Path) -> tuple[Postgres, Process]:
    cluster = Postgres(data_dir)
    return cluster, cluster.process()


def ferretdb(port: int, data_dir: Path, postgresql_url: str) -> Process:
    """FerretDB v2: the MongoDB wire protocol in front of PostgreSQL + DocumentDB."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_binary("ferretdb2", "COLLABRY_FERRETDB_BIN"),
        f"--postgresql-url={postgresql_url}",
        f"--listen-addr=127.0.0.1:{port}",
        "--log-level=warn",
        "--telemetry=disable",
        f"--state-dir={data_dir}",
        "--debug-addr=-",
        "--no-auth",  # loopback only; the database itself is reachable only through its socket
    ]
    return Process("ferretdb", argv, data_dir / "ferretdb.log", lambda: port_open("127.0.0.1", port))


@dataclass
class Database:
    """PostgreSQL with DocumentDB and FerretDB v2 in front: what the appliance calls its database."""

    cluster: Postgres
    postgres: Process
    ferretdb: Process
    ferretdb_port: int
    ferretdb_dir: Path

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb_port}/"

    def start_postgres(self, timeout: float = 60.0) -> Process:
        self.postgres = self.cluster.process().start().wait_ready(timeout)
        return self.postgres

    def start_ferretdb(self, timeout: float = 30.0) -> Process:
        self.ferretdb = ferretdb(self.ferretdb_port, self.ferretdb_dir, self.cluster.url).start().wait_ready(timeout)
        return self.ferretdb

    def stop(self) -> None:
        self.ferretdb.stop()
        self.postgres.stop(sig=signal.SIGINT)  # PostgreSQL's fast shutdown: ends sessions, checkpoints


def start_database(root: Path, ferretdb_port: int) -> Database:
    """Start (initialising on first use) the database under ``root``: ``root/postgresql`` holds the
    cluster, ``root/ferretdb`` FerretDB's state. ``root`` must be enterable by the PostgreSQL user."""
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        root.chmod(root.stat().st_mode | 0o011)  # let the postgres user pass through, not list
        entered = subprocess.run(_unprivileged(["test", "-x", str(root)]), capture_output=True, check=False)
        if entered.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL runs as the postgres user, who cannot enter {root} (a parent folder is closed to "
                "other users): choose a state directory under an open path (COLLABRY_STATE_DIR)"
            )
    cluster = Postgres(root / "postgresql")
    pg = cluster.process().start()
    pg.wait_ready(60)
    cluster.ensure_documentdb()
    db = Database(cluster, pg, pg, ferretdb_port, root / "ferretdb")
    try:
        db.start_ferretdb()
    except BaseException:
        pg.stop(sig=signal.SIGINT)
        raise
    return db


def _nginx_worker_user() -> str:
    """Started as root, nginx drops its workers to `nobody`, who cannot read a checkout or a state
    directory under a closed folder (/root, a 0700 mktemp): the pages would answer 500. The development
    stack's own processes already run as the invoking user, so its nginx workers do too."""
    return "user root;\n" if os.geteuid() == 0 else ""


def render_nginx(prefix: Path, *, listen: str, gateway_ports: Sequence[int], client_max_body: str = "26m") -> Path:
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    # max_fails=0: a replica refusing connections for the second of its restart must not be marked
    # down for fail_timeout, or a rolling restart of the next one leaves nginx with no live upstream.
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in gateway_ports)
    text = (NGINX_DIR / "dev.conf.in").read_text()
    for key, value in {
        "@PREFIX@": str(prefix),
        "@NGINX_DIR@": str(NGINX_DIR),
        "@LISTEN@": listen,
        "@API_SERVERS@": servers,
        "@SOCKETIO_SERVERS@": servers,
        "@CLIENT_MAX_BODY@": client_max_body,
        "@WEB_ROOT@": str(web_root()),
        "@WORKER_USER@": _nginx_worker_user(),
    }.items():
        text = text.replace(key, value)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx(prefix: Path, port: int, gateway_ports: Sequence[int], *, host: str = "127.0.0.1") -> Process:
    conf = render_nginx(prefix, listen=f"{host}:{port}", gateway_ports=gateway_ports)
    binary = find_binary("nginx", "COLLABRY_NGINX_BIN")
    check = subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs/error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs/error.log")]
    return Process("nginx", argv, prefix / "logs/stdout.log", lambda: port_open(host, port))


def collabry(
    name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path, *, port: int | None = None
) -> Process:
    argv = [sys.executable, "-m", "collabry.cli", *args]
    ready = (lambda: http_ok(f"http://127.0.0.1:{port}/health")) if port else (lambda: True)
    return Process(name, argv, log_dir / f"{name}.log", ready, env=dict(env))
