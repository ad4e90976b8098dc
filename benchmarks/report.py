"""Result tables of the benchmarks, printed together at the end of `scripts/bench`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import textwrap

WIDTH = 100


@dataclass
class _Table:
    title: str
    rows: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> list[str]:
        columns: list[str] = []
        for row in self.rows:
            columns.extend(key for key in row if key not in columns)
        widths = {
            col: max(len(col), *(len(row.get(col, "")) for row in self.rows))
            for col in columns
        }

        def line(cells: Mapping[str, str]) -> str:
            return "  ".join(cells.get(c, "").ljust(widths[c]) for c in columns)

        out = [self.title, "  " + line({c: c for c in columns}).rstrip()]
        out += ["  " + line(row).rstrip() for row in self.rows]
        for note in self.notes:
            out += textwrap.wrap(
                note, WIDTH, initial_indent="  ", subsequent_indent="    "
            )
        return out


class BenchResults:
    """Result tables of one benchmark run, printed at its end."""

    def __init__(self) -> None:
        """Start with no tables."""
        self._tables: dict[str, _Table] = {}

    def add(self, table: str, row: Mapping[str, str], note: str | None = None) -> None:
        """Add a row (column -> formatted value) to a table, created on first use.

        Rows of one table may bring new columns; a note is printed once under the table.
        """
        entry = self._tables.setdefault(table, _Table(table))
        entry.rows.append(dict(row))
        if note and note not in entry.notes:
            entry.notes.append(note)

    def render(self) -> list[str]:
        """All tables, in the order the benchmarks first reported to them."""
        lines: list[str] = []
        for table in self._tables.values():
            lines += [*table.render(), ""]
        return lines[:-1]
