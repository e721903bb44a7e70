"""Plain-text tables for the benchmarks' output: columns padded, a dashed rule under the header."""

from __future__ import annotations

__all__ = ["format_table"]


def format_table(header: list[str], rows: list[list[str]], *, right: set[int] | None = None) -> str:
    """``rows`` under ``header``; columns in ``right`` (numbers) are right-aligned.

    Cells are at least two spaces apart, so a reader can split a line on runs of two spaces.
    """
    right = right or set()
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
