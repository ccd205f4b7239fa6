"""The file an `--out` option names: checked before the command does any work, and written
atomically (a temporary file in the same folder, then os.replace), so that a command that
fails leaves neither a partial file nor a damaged earlier one."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from capa.adapters.files import PRIVATE_MODE
from capa.domain.errors import CapaError, InvalidInput


def check_out(path: Path) -> Path:
    """Refuse (InvalidInput, exit 2) an --out that cannot be written: a symbolic link, a folder,
    a file in a folder that does not exist or cannot be written to, or a file that cannot be
    replaced."""
    name = str(path)
    refuse_link(path)
    if path.is_dir():
        raise InvalidInput(f"{name!r} is a folder; --out needs a file path")
    parent = path.parent
    if not parent.exists():
        raise InvalidInput(f"folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise InvalidInput(f"{str(parent)!r} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise InvalidInput(f"{name!r} is not writable")
    if _regular_or_new(path) and not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"folder {str(parent)!r} is not writable")
    return path


def check_out_place(path: Path) -> Path:
    """Refuse (InvalidInput, exit 2) an --out that names a new file or folder (an evidence
    bundle) in a folder that does not exist or cannot be written to, or a symbolic link."""
    refuse_link(path)
    parent = path.parent
    if not parent.exists():
        raise InvalidInput(f"folder {str(parent)!r} does not exist; create it first or choose "
                           "another --out")
    if not parent.is_dir():
        raise InvalidInput(f"{str(parent)!r} is not a folder")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"folder {str(parent)!r} is not writable")
    return path


def refuse_link(path: Path) -> None:
    """A symbolic link is refused (exit 2): whoever placed it, not the person running the
    command, would choose which file gets written (SPEC §9.10)."""
    if path.is_symlink():
        raise InvalidInput(f"{str(path)!r} is a symbolic link; --out writes only to a path "
                           "that is not one")


@contextlib.contextmanager
def atomic_out(path: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A binary stream whose bytes become `path` only when the block ends without error.

    A symbolic link is refused; a link put in its place while the command runs is replaced,
    never followed. A device or pipe (/dev/null) is written directly, having no folder entry to
    replace. A file that already exists keeps its permissions; a new one is 0600 if `private`
    (evidence taken out of the store stays as closely held as it was inside)."""
    check_out(path)
    target = path
    if not _regular_or_new(target):
        with _failing(path):
            fd = os.open(target, os.O_WRONLY | os.O_NOFOLLOW)
            direct = os.fdopen(fd, "wb")
        with direct:
            yield direct
        return
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    with _failing(path):
        # 0o666 less the umask: the mode a plain open() would have given a new file.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     PRIVATE_MODE if private else 0o666)
        if private:
            os.fchmod(fd, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            with _failing(path):
                stream.flush()
                os.fsync(stream.fileno())
        with _failing(path):
            if target.exists() and not target.is_symlink():
                with contextlib.suppress(OSError):
                    os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
            os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_out(path: Path, content: bytes, *, private: bool = False) -> int:
    """Write `content` to `path` atomically; returns the number of bytes written."""
    with atomic_out(path, private=private) as stream, _failing(path):
        stream.write(content)
    return len(content)


def _regular_or_new(target: Path) -> bool:
    try:
        return stat.S_ISREG(target.lstat().st_mode)
    except FileNotFoundError:
        return True


@contextlib.contextmanager
def _failing(path: Path) -> Iterator[None]:
    """An operating-system failure while writing, as one clear line: permission problems are
    invalid input (exit 2), anything else (a full disk) a plain failure (exit 1)."""
    try:
        yield
    except (PermissionError, IsADirectoryError) as exc:
        raise InvalidInput(f"cannot write {str(path)!r}: {exc.strerror}") from None
    except OSError as exc:
        raise CapaError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
