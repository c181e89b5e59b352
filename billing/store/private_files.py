"""Private files on disk: the SQLite database, its WAL and SHM, and the directory that holds them.

The database file is created 0600 before SQLite opens it (SQLite gives its WAL and SHM files the
mode of the database file), existing files are tightened to 0600, and the directory is created
0700. An existing directory that is group- or world-accessible is tightened to 0700 too when it is
the user's own, but never a shared one (sticky, like /tmp) or the home directory itself: those
are left as they are, with a warning, and the 0600 files keep their contents private anyway.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    """Create `path` (and its parents) with the directory itself 0700, or tighten it if it is ours."""
    if not path.exists():
        path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        # mkdir's mode is masked by the umask: set it exactly.
        os.chmod(path, DIRECTORY_MODE)
        return
    if not path.is_dir():  # a file where the directory should be: opening the database fails, naming it
        return
    info = path.stat()
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if not loose:
        return
    shared = bool(info.st_mode & stat.S_ISVTX)
    home = path.resolve() == Path.home().resolve()
    if info.st_uid != os.geteuid() or shared or home:
        logger.warning("the directory %s holding the server's database files is readable by other users; its files are "
                       "private (0600), but prefer a directory of your own (mode 0700)", path)
        return
    os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
    logger.warning("tightened %s to mode %o: it holds the server's database files", path,
                   stat.S_IMODE(info.st_mode) & ~0o077)


def private_database_file(path: Path) -> None:
    """Make sure the SQLite database at `path` and its side files exist only as 0600 files."""
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        pass
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        private_file(file)


def private_file(path: Path) -> None:
    """Tighten an existing file to owner-only access (0600 for a 0644 file); a missing one is left missing."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & ~0o077)
