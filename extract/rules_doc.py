"""rules.yaml as a node tree that remembers the line of every value (see extract/rules_loader.py).

The YAML is composed, never constructed (no tags beyond plain data), so every value keeps its
line for error messages that name file, line, rule and field. Mapping keys are read as written,
which keeps the Norwegian code ``no:`` a string instead of YAML 1.1's boolean.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, NoReturn, cast

import yaml

from extract.rules_model import RulesError

__all__ = ["PathT", "RulesDoc", "show_value"]

PathT = tuple[str | int, ...]


class RulesDoc:
    """The parsed YAML plus the line of every value, addressed by its path of keys."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lines: dict[PathT, int] = {}
        self.raw: dict[PathT, str] = {}
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.data = self._convert(loader, node, ()) if node is not None else None
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise RulesError(
                f"{file}, line {line}: not valid YAML: {exc.problem}. Check indentation, "
                "colons and quotes on that line.", file=file, line=line) from exc
        finally:
            loader.dispose()

    def _convert(self, loader: yaml.SafeLoader, node: yaml.Node, path: PathT) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in out:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    self.fail((*path, key), f"'{key}' is given twice", "Keep one of them.")
                out[key] = self._convert(loader, value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(loader, item, (*path, i)) for i, item in enumerate(node.value)]
        self.raw[path] = str(node.value)
        return loader.construct_object(node, deep=True)

    def line(self, path: PathT) -> int | None:
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return None

    def fail(self, path: PathT, problem: str, fix: str) -> NoReturn:
        line = self.line(path)
        rule = field = None
        where = ""
        if len(path) >= 2 and path[0] in ("rules", "lexicons", "narratives"):
            rule = str(path[1])
            kind = {"rules": "rule", "lexicons": "lexicon", "narratives": "narrative"}[path[0]]
            where = f"{kind} '{rule}'"
            rest = path[2:]
        else:
            rest = path
        if rest:
            field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in rest)
            field = field.replace(".[", "[")
            where = f"{where}, field '{field}'" if where else f"field '{field}'"
        prefix = f"{self.file}, line {line}" if line else self.file
        message = f"{prefix}: {where + ': ' if where else ''}{problem}. {fix}"
        raise RulesError(message, file=self.file, line=line, rule=rule, field=field)

    # ------------------------------------------------------------------ typed getters

    def mapping(self, value: Any, path: PathT, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping (key: value lines), got {show_value(value)}",
                      "Indent the fields under this key.")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"Did you mean '{close[0]}'?" if close else f"Allowed: {', '.join(allowed)}."
                self.fail((*path, key), f"unknown field '{key}'", hint)
        return cast(dict[str, Any], value)

    def number(self, value: Any, path: PathT, *, low: float | None = None,
               high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.fail(path, f"expected a number, got {show_value(value)}",
                      "Write a plain number such as 1.5 (no quotes).")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.fail(path, f"{value} is out of range", f"Use a number {bounds}.")
        return float(value)

    def integer(self, value: Any, path: PathT, low: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.fail(path, f"expected a whole number of at least {low}, got {show_value(value)}",
                      f"Write a whole number such as {low}.")
        return int(value)

    def text(self, value: Any, path: PathT) -> str:
        if isinstance(value, dict | list) or value is None:
            self.fail(path, f"expected text, got {show_value(value)}", "Write a single line of text.")
        return self.raw.get(path, str(value))

    def choice(self, value: Any, path: PathT, options: tuple[str, ...]) -> str:
        text = self.text(value, path)
        if text not in options:
            self.fail(path, f"'{text}' is not one of {', '.join(options)}",
                      f"Use one of: {', '.join(options)}.")
        return text

    def str_list(self, value: Any, path: PathT) -> list[str]:
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {show_value(value)}", "Write a [a, b] or '- a' list.")
        return [self.text(item, (*path, i)) for i, item in enumerate(value)]


def show_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else repr(value)


# ---------------------------------------------------------------------- sections
