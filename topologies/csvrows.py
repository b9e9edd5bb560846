"""The CSV files of mobility (site traces, positions, association logs): rows with line numbers.

One reader for every such file: a fixed header, ``#`` and blank lines skipped, each row
checked for its number of fields; errors name ``FILE:LINE`` and what is expected.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional, Sequence

from topologies.model import TopologyError


def read_rows(path: Path, header: Sequence[str], what: str) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """``(line, fields)`` of each data row of PATH (fields stripped) and the errors of rows
    with another number of fields than HEADER. An unreadable file or another header raises
    TopologyError (WHAT names the file's kind: ``cannot read WHAT``)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise TopologyError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    reader = csv.reader(text.splitlines())
    first = next(reader, None)
    if first is None or tuple(h.strip() for h in first) != tuple(header):
        raise TopologyError(f"{path}:1: header must be {','.join(header)}, got {','.join(first or []) or 'an empty file'}")
    rows, errors = [], []
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) != len(header):
            errors.append(f"{path}:{line}: expected {len(header)} fields ({','.join(header)}), got {len(row)}")
            continue
        rows.append((line, [c.strip() for c in row]))
    return rows, errors


def finite(value: Any) -> Optional[float]:
    """VALUE as a finite float, None when it is not one."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def seconds(text: str) -> Optional[float]:
    """A time of a trace: a finite number of seconds >= 0, else None."""
    t = finite(text)
    return t if t is not None and t >= 0 else None


def in_file_order(errors: list[str]) -> list[str]:
    """``FILE:LINE: ...`` errors sorted by line (field-count errors come from
    :func:`read_rows` before the caller's own)."""
    def line(error: str) -> int:
        head = error.split(": ", 1)[0].rsplit(":", 1)
        return int(head[1]) if len(head) == 2 and head[1].isdigit() else 0
    return sorted(errors, key=line)
