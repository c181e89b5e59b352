"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl from Debian's packages, on loopback.

`.ci/run` installs the server packages; tests start their own cluster (or use
`KAMIYO_TEST_POSTGRES_URL` when set). PostgreSQL refuses to run as root, so as root the
cluster runs as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    directory: Path
    port: int
    user: str | None  # the OS user the server runs as (None: the current one)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> PostgresCluster:
        data = self.directory / "data"
        result = self._run(_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--no-instructions")
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr}")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        result = self._run(_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.directory / "log"),
                           "-w", "-t", "60", "start")
        if result.returncode != 0:
            log = (self.directory / "log").read_text(errors="replace") if (self.directory / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{log}")
        return self

    def create_database(self, name: str) -> str:
        result = self._run(_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-v",
                           "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"')
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {result.stderr}")
        return self.database_url(name)

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    directory = Path(tempfile.mkdtemp(prefix="kamiyo-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        directory.chmod(0o700)
    return PostgresCluster(directory, _free_port(), user).start()
