"""EXPLAIN a captured SQL statement on SQLite or PostgreSQL and sum up its index use.

The summary says how the outer query reads the ``candidates`` table (which index, or a full
scan) and whether the database sorts rows itself; subqueries (story sizes, duplicate counts)
are left out, the narrative filter's table is named. The full plan is kept for ``--plans``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

__all__ = ["explain"]

_SQLITE_ACCESS = re.compile(r"^(SCAN|SEARCH) (candidates|candidate_narratives)\b(.*)$")
_SQLITE_INDEX = re.compile(r"USING (?:COVERING )?INDEX (\w+)|USING INTEGER PRIMARY KEY")


def explain(engine: Engine, statement: tuple[str, Any]) -> tuple[str, list[str]]:
    """(summary, full plan lines) of one statement with its parameters."""
    sql, parameters = statement
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters).all()
            return _sqlite(rows)
        plan = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, parameters).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return _postgres(plan[0]["Plan"])


def _sqlite(rows: Sequence[Any]) -> tuple[str, list[str]]:
    parent_of = {row[0]: row[1] for row in rows}
    detail_of = {row[0]: str(row[3]) for row in rows}

    def depth(node: int) -> int:
        return 0 if parent_of.get(node, 0) == 0 else 1 + depth(parent_of[node])

    def in_subquery(node: int) -> bool:
        parent = parent_of.get(node, 0)
        while parent:
            if "SCALAR SUBQUERY" in detail_of[parent] and not _is_filter(parent, parent_of, detail_of):
                return True
            parent = parent_of.get(parent, 0)
        return False

    parts: list[str] = []
    for node, _, _, detail in rows:
        match = _SQLITE_ACCESS.match(str(detail))
        if match and not in_subquery(node):
            index = _SQLITE_INDEX.search(match.group(3))
            how = "search" if match.group(1) == "SEARCH" else "scan"
            name = (index.group(1) or "primary key") if index else "no index, whole table"
            parts.append(f"{match.group(2)}: {how} {name}")
        elif "TEMP B-TREE FOR" in str(detail) and not in_subquery(node):
            parts.append("sort " + str(detail).split("FOR ", 1)[1].lower())
    full = ["  " * depth(node) + str(detail) for node, _, _, detail in rows]
    return "; ".join(parts), full


def _is_filter(node: int, parent_of: dict[int, int], detail_of: dict[int, str]) -> bool:
    """A subquery that filters the outer rows (EXISTS on candidate_narratives), not a column."""
    return any(
        parent_of.get(child) == node and "candidate_narratives" in detail
        for child, detail in detail_of.items()
    )


def _postgres(root: dict[str, Any]) -> tuple[str, list[str]]:
    parts: list[str] = []
    full: list[str] = []

    def walk(node: dict[str, Any], depth: int, sub: bool) -> None:
        kind = node["Node Type"]
        sub = sub or node.get("Parent Relationship") == "SubPlan"
        relation, alias = node.get("Relation Name"), node.get("Alias")
        index = node.get("Index Name")
        label = kind + (" Backward" if node.get("Scan Direction") == "Backward" else "")
        full.append("  " * depth + label + (f" on {relation}" if relation else "")
                    + (f" using {index}" if index else "")
                    + (f" ({node['Index Cond']})" if node.get("Index Cond") else "")
                    + (f" filter {node['Filter']}" if node.get("Filter") else ""))
        if not sub:
            if relation in ("candidates", "candidate_narratives") and alias == relation:
                if kind == "Seq Scan":
                    parts.append(f"{relation}: seq scan, whole table")
                elif kind != "Bitmap Heap Scan":
                    parts.append(f"{relation}: {label.lower()} {index}")
            elif kind == "Bitmap Index Scan" and str(index).startswith(("ix_candidate", "pk_candidate")):
                parts.append(f"bitmap {index}")
            elif kind in ("Sort", "Incremental Sort"):
                parts.append(kind.lower())
        for child in node.get("Plans", []):
            walk(child, depth + 1, sub)

    walk(root, 0, False)
    return "; ".join(parts), full
