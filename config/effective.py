"""`dwatch config show`: the effective settings as YAML or JSON, secrets masked."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from config.settings import Settings

__all__ = ["MASK", "effective_config", "render_config"]

MASK = "***"
SECRET_KEY = re.compile(r"(password|secret|token|api_key)$", re.IGNORECASE)


def _mask(value: Any) -> Any:
    """Any value under a key that names a secret is masked, wherever it sits (belt and braces)."""
    if isinstance(value, dict):
        return {k: (MASK if SECRET_KEY.search(str(k)) and v not in (None, "") else _mask(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def effective_config(settings: Settings) -> dict[str, Any]:
    """``settings.masked()``, every password-like field masked as well; the long source list last."""
    masked: dict[str, Any] = _mask(settings.masked())
    if "sources" in masked:
        masked["sources"] = masked.pop("sources")
    return masked


def render_config(settings: Settings, fmt: str = "yaml") -> str:
    data = effective_config(settings)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
