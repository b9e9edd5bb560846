"""The publication record: which images the registry storage holds, and where they came from.

A JSON file beside the registry storage (``PUBLISHED_STAMP``). Built-in images are
``NAME: RECIPE_HASH`` (a string, as ever); an image added by the user
(``mec image add``) is ``NAME:TAG: {...}`` (an object: origin, source, image id,
manifest digest, time added). A colon never appears in a built-in's key, so the two
never collide. Every change is a read-modify-write under an exclusive lock and an
atomic rename, so two processes publishing at once do not lose each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

from mec.core import config

PUBLISHED_STAMP = config.REGISTRY_DIR / "mec-published.json"


def read(path: Path | None = None) -> dict[str, Any]:
    """The whole record (built-in and user entries); {} when absent or unreadable."""
    try:
        data = json.loads((path or PUBLISHED_STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def builtins(path: Path | None = None) -> dict[str, str]:
    """name -> recipe hash of the built-in images the record says are published."""
    return {k: v for k, v in read(path).items() if isinstance(v, str)}


def user_entries(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """'NAME:TAG' -> record of every user image the record says is published."""
    return {k: v for k, v in read(path).items() if isinstance(v, dict) and ":" in k}


@contextlib.contextmanager
def updating(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Hold the record's lock; yield its content to change in place; write it back atomically.

    Nothing is written when the block raises, so an error leaves the record as it was.
    """
    path = path or PUBLISHED_STAMP
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read(path)
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, path)
