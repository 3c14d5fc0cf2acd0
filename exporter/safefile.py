"""Reading the files a config names (the config itself, key files, certificates) safely.

Only a regular file of bounded size is read: ``/dev/zero`` would be read until memory runs out,
a FIFO would block the reload (and the exit) for good, a 400 MB file is not a key. The file is
opened without blocking (opening a FIFO blocks until a writer comes), then checked with
``fstat`` before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB


class FileProblem(ValueError):
    """Why a file cannot be used, as a phrase to follow its name: ``does not exist``."""


def describe_size(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def read_file(path: str | Path, limit: int) -> bytes:
    """The content of the regular file at ``path``, at most ``limit`` bytes; else FileProblem."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileProblem("does not exist") from None
    except PermissionError:
        raise FileProblem("is not readable (permission denied)") from None
    except OSError as exc:
        raise FileProblem(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileProblem("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem("is not a regular file (a FIFO, a device or a socket)")
        if st.st_size > limit:
            raise FileProblem(f"is larger than {describe_size(limit)}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # a file that grew since fstat is still cut here
    except OSError as exc:
        raise FileProblem(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileProblem(f"is larger than {describe_size(limit)}")
    return data
