"""Files of a store that only their owner may read or write (SPEC §9.10)."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o600


def private_file(path: Path, flags: int) -> int:
    """Open `path` with `flags` (O_CREAT among them), a file created by it being 0600 whatever
    the umask; returns the descriptor. An existing file keeps its mode."""
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    try:
        if os.fstat(fd).st_size == 0:
            # The umask can only take bits away; fchmod makes a new file exactly 0600 even
            # under a umask that would leave it unreadable to its owner.
            os.fchmod(fd, PRIVATE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd
