"""Follow a probe log while the probe writes it (`mec.measure.probelog.StreamingWriter`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from mec.measure.probelog import COLUMNS, ProbeRecord

#: Columns of a probe log written before ``sport`` and ``ok`` existed.
OLD_COLUMNS = 6


def row_of(record: ProbeRecord) -> list:
    """A request as the page gets it: [t_send, latency_ms or None, status, replica or None]."""
    return [round(record.t_send, 4),
            None if record.latency_ms is None else round(record.latency_ms, 3),
            record.status, record.replica]


class ProbeTail:
    """New complete rows of a growing probe CSV, from where the last read stopped.

    The writer appends rows in completion order and, when the probe stops,
    replaces the file with a sorted copy (a new inode): the tail then ends, as
    every row of the copy was read already.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = self.path.stem[len("probe-"):] if self.path.stem.startswith("probe-") \
            else self.path.stem
        self._offset = 0
        self._inode: Optional[int] = None
        self.ended = False

    def read(self) -> list[list]:
        """Rows written since the last call (a partly written last line waits for the next)."""
        if self.ended:
            return []
        try:
            with open(self.path, "rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                if self._inode is None:
                    self._inode = inode
                elif inode != self._inode:
                    self.ended = True
                    return []
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        rows = []
        for line in data[:end].decode("utf-8", "replace").splitlines():
            cells = line.split(",")
            if not OLD_COLUMNS <= len(cells) <= len(COLUMNS) or cells[0] == COLUMNS[0]:
                continue  # the header, or a line of another form (older logs have fewer columns)
            try:
                rows.append(row_of(ProbeRecord.from_row(dict(zip(COLUMNS, cells)))))
            except ValueError:
                continue
        return rows
