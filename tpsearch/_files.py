"""Files written whole or not at all, and JSON files read with one clear error."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from tpsearch.exceptions import UsageError

T = TypeVar("T")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside `path` to write, renamed over `path` when the block ends: a reader (a browser
    reloading a page, an export reading a checkpoint) never sees half a file. On any error nothing is left behind.

        with atomic_path("best.onnx") as tmp:
            program.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the rename must not land before the bytes do (a power cut)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; pages and checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """`data` written to `path` through `atomic_path`. A full disk raises the plain `OSError` (ENOSPC)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_or_refuse(what: str, path: str | os.PathLike, write: Callable[[], T]) -> T:
    """`write()` into `path`'s folder (created), a failure to write there being one `UsageError` naming `what`."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return write()
    except OSError as e:
        raise UsageError(f"cannot write the {what} {str(path)!r}: {e.strerror or e}") from None


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The JSON value in `path`; a missing, unreadable or malformed file is one `UsageError` naming `what`."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} file {str(path)!r}: {e.strerror or e}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UsageError(f"{what} file {str(path)!r} is not valid JSON: {e}") from None
