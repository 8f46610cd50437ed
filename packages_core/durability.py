"""Local files that survive a crash: written out as they arrive, synced before a row names them.

A blob's row must never commit before its bytes are on disk, or a crash (power loss,
a kernel panic) would leave a row whose file is empty or short: a corrupt pull. So a
file is `fsync`ed, and its directory after a rename, before the transaction that
records it (CNCF Distribution syncs its files too). Left to itself the kernel writes
a fresh 1 GiB layer out only when it must, and that final fsync would wait for all of
it; `start_writeback` asks the kernel to start writing each piece as soon as it is
written (Linux's `sync_file_range`), so the disk works while the network does and the
final fsync waits only for the tail.

PACKAGES["SYNC_WRITES"] = False turns all of this off (tmpfs, throwaway test sites).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

from packages_core.conf import packages_settings

SYNC_FILE_RANGE_WRITE = 2


def enabled() -> bool:
    return bool(packages_settings.SYNC_WRITES)


@functools.cache
def _sync_file_range():
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes to disk now, without waiting for it.

    A hint: where it is not available, the final `sync_file` does all the work.
    """
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def sync_file(path: str) -> None:
    """Wait until the file's bytes are on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_directory(path: str) -> None:
    """Wait until the directory's entries (a file renamed into it) are on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
