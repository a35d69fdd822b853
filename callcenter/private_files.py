"""Files and folders only their owner may read: the data folder, secrets.toml, the SQLite
database, admin-password.

Each is created with its final mode, never created readable and tightened afterwards: a
``write_text`` then ``chmod`` leaves a moment (and, if the process dies in between, for good)
in which anyone on the machine can read the secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path | str) -> Path:
    """Create ``path`` (and its missing parents) with mode 700 for the new folder itself.
    An existing folder keeps its mode: it may be shared on purpose by whoever made it."""
    folder = Path(path)
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile
            folder.mkdir(mode=FOLDER_MODE)
    return folder


def write_private(path: Path | str, text: str, *, mode: int = FILE_MODE,
                  group: int | None = None) -> None:
    """Replace ``path`` with ``text``, atomically, as a file of mode 600 from its first byte.

    ``group`` and ``mode`` (e.g. 640 for the group Asterisk runs as) are set on the open file
    before anything is written, so no one else can read it at any moment."""
    if mode & 0o007:
        raise ValueError(f"mode {mode:o}: a private file gives others no rights")
    target = Path(path)
    private_folder(target.parent)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         FILE_MODE)
    try:
        if group is not None:
            os.fchown(descriptor, -1, group)
        if mode != FILE_MODE:
            os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def private_file(path: Path | str) -> Path:
    """Make sure ``path`` exists as a file of mode 600 (creating it empty if missing); an
    existing file that group or others may read is tightened, and the log says so."""
    target = Path(path)
    private_folder(target.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         FILE_MODE))
    tighten(target)
    return target


def tighten(path: Path | str) -> None:
    """Take group and others' rights away from an existing file."""
    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        target.chmod(mode & 0o700)
        log.warning("%s was readable by others (mode %o); it is now %o", target, mode,
                    mode & 0o700)
