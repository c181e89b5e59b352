"""The zero-configuration JWT secret: a random secret in a file beside the SQLite database.

A fresh machine needs no settings: the first command that needs the secret creates it (mode 0600),
every later command (serve, stdio, token) reads the same file. `MCP_JWT_SECRET` always wins.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from billing.store.private_files import private_directory, private_file
from billing.tokens import MIN_SECRET_BYTES, generate_secret
from kamiyo_mcp.settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def resolve_jwt_secret(settings: Settings) -> str:
    """The secret to sign tokens with: the setting, else the file (created on first use).

    Raises:
        SettingsError: the secret file exists but is unusable.
    """
    if settings.jwt_secret is not None:
        return settings.jwt_secret
    path = settings.secret_file
    private_directory(path.parent)  # the database's directory: 0700, created so or tightened
    secret = _read(path)
    if secret is not None:
        private_file(path)
        return secret
    candidate = generate_secret()
    # Written whole to a private temporary file, then linked into place: a process starting at the
    # same moment sees either no file or the complete secret, and the first link wins.
    fd, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(candidate + "\n")
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process created it first: use theirs
            secret = _read(path)
            if secret is None:
                raise SettingsError("MCP_JWT_SECRET", f"unset, and the secret file {path} is unreadable") from None
            return secret
    finally:
        os.unlink(temporary)
    logger.warning("MCP_JWT_SECRET is unset: created a signing secret in %s (mode 0600)", path)
    return candidate


def _read(path: Path) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        problem = f"unset, and the secret file {path} cannot be read: {exc.strerror}"
        raise SettingsError("MCP_JWT_SECRET", problem) from None
    if len(secret.encode()) < MIN_SECRET_BYTES:
        problem = f"unset, and the secret file {path} holds fewer than {MIN_SECRET_BYTES} bytes"
        raise SettingsError("MCP_JWT_SECRET", problem)
    return secret
