"""Run one crawl in a fresh Python process (Twisted's reactor runs once per process).

    config_dir = write_config(tmp / "config", sources=[...])
    outcome = crawl(config_dir, tmp / "data")          # python -m crawler.runner --config ...
    outcome.summary["per_source"]["demo-news-rss"]["fetched"]
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "rules.yaml"

# a local crawl: loopback allowed, no politeness delays
LOCAL_CRAWL = {"allow_private_addresses": True, "download_delay": 0, "autothrottle": False}


@dataclass(frozen=True)
class CrawlOutcome:
    returncode: int
    summary: dict[str, Any]      # RunSummary.to_dict() ({} when the runner printed none)
    stdout: str
    stderr: str

    def source(self, source_id: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.summary["per_source"][source_id]
        return stats

    def counters(self, source_id: str) -> dict[str, int]:
        found: dict[str, int] = self.summary["counters"][source_id]
        return found


def write_config(
    config_dir: Path,
    sources: list[dict[str, Any]],
    *,
    crawl: dict[str, Any] | None = None,
    rules: Path | None = RULES,
) -> Path:
    """A config directory: sources.yaml, settings.yaml (LOCAL_CRAWL + `crawl`) and rules.yaml."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "sources.yaml").write_text(
        yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    (config_dir / "settings.yaml").write_text(
        yaml.safe_dump({"crawl": {**LOCAL_CRAWL, **(crawl or {})}}), encoding="utf-8"
    )
    if rules is not None:
        shutil.copyfile(rules, config_dir / "rules.yaml")
    return config_dir


def crawl(config_dir: Path, data_dir: Path, *args: str, timeout: float = 240) -> CrawlOutcome:
    """`python -m crawler.runner --config config_dir` with DWATCH_DATA_DIR=data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    env["DWATCH_DATA_DIR"] = str(data_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.runner", "--config", str(config_dir), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )
    # Scrapy's deprecations (shown by default, logged via py.warnings) fail the test as they
    # would under pytest's filterwarnings=error in this process
    assert "ScrapyDeprecationWarning" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    return CrawlOutcome(proc.returncode, summary, proc.stdout, proc.stderr)


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
