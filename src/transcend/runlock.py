"""Locks on folders that one process at a time may write: a run folder, a sweep, a shared corpus.

``fcntl.flock`` on a lock file: the kernel releases it when its holder exits, even on kill -9, so a
lock never outlives a crashed run. A holder may delete the folder (a failed run leaves nothing
behind) and with it the lock file; a waiter then re-locks the file that is there now. Locks are
re-entrant within a process (a sweep's run task holds its run folder's lock, and the run inside
takes it again).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from transcend.errors import TranscendError

_held: dict[str, int] = {}  # lock file -> depth, in this process


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextmanager
def locked(lock_file: Path, what: str, *, wait: bool = True,
           log: Callable[[str], None] = lambda m: None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created with its folder). Another holder: wait for it
    (``wait``, saying so once through ``log``) or refuse in one sentence naming ``what``."""
    key = os.path.abspath(lock_file)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    while True:
        Path(key).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                holder = _holder(fd)
                os.close(fd)
                raise TranscendError(f"{what} is in use by another process{holder}; wait for it to finish, "
                                     "or use another folder.") from None
            log(f"waiting for another process{_holder(fd)} to finish with {what}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(key).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)  # the holder removed the folder: lock the file that is there now
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # releases the lock; the file stays (unlinking it would race with a waiter)
