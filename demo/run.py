"""`dwatch demo`: serve the bundled sample site, crawl it into a fresh database, check the queue."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config import load_settings

DEMO_DIR = Path(__file__).resolve().parent
SITE_DIR = DEMO_DIR / "site"


@dataclass(frozen=True)
class DemoOutcome:
    summary: Any          # crawler.RunSummary
    queue: list[Any]      # store queue rows
    check: str            # one line: expected vs found
    ok: bool
    data_dir: Path


def write_demo_config(config_dir: Path, base_url: str) -> None:
    """The demo's sources.yaml (with the server's base URL) and settings.yaml in `config_dir`."""
    config_dir.mkdir(parents=True, exist_ok=True)
    sources = (DEMO_DIR / "sources.yaml").read_text(encoding="utf-8")
    (config_dir / "sources.yaml").write_text(sources.replace("{{BASE_URL}}", base_url), encoding="utf-8")
    settings = (DEMO_DIR / "settings.yaml").read_text(encoding="utf-8")
    (config_dir / "settings.yaml").write_text(settings, encoding="utf-8")


def expected_queue_paths() -> set[str]:
    """Paths of the sample articles that must be queued (flagged and not a verbatim copy)."""
    expected: dict[str, dict[str, Any]] = json.loads((DEMO_DIR / "expected.json").read_text("utf-8"))
    return {path for path, facts in expected.items() if facts["flagged"] and not facts.get("duplicate_of")}


def check_queue(rows: list[Any]) -> tuple[bool, str]:
    want = expected_queue_paths()
    got = {urlsplit(r.url).path for r in rows}
    missing, extra = sorted(want - got), sorted(got - want)
    line = f"demo check: {len(want & got)}/{len(want)} expected candidates queued"
    if missing:
        line += f"; missing {', '.join(missing)}"
    if extra:
        line += f"; unexpected {', '.join(extra)}"
    return not missing and not extra, line


def run_demo(
    data_dir: Path | None, *, keep_serving: bool = False, echo: Callable[[str], None] = print
) -> DemoOutcome:
    """Run the whole flow offline. Call once per process (it runs a Scrapy crawl)."""
    from crawler import run_crawl
    from demo.server import serve_directory
    from store import make_engine, make_session_factory
    from store import queue as q

    base = data_dir if data_dir is not None else Path(tempfile.mkdtemp(prefix="dwatch-demo-"))
    run_dir = base / time.strftime("demo-%Y%m%d-%H%M%S")
    with serve_directory(SITE_DIR) as server:
        echo(f"sample site at {server.base_url}/  (demo data in {run_dir})")
        write_demo_config(run_dir / "config", server.base_url)
        settings = load_settings(run_dir / "config", env={"DWATCH_DATA_DIR": str(run_dir)})
        summary = run_crawl(settings)
        engine = make_engine(settings.database_url)
        try:
            with make_session_factory(engine)() as session:
                rows = q.list_candidates(session, limit=1000)
        finally:
            engine.dispose()
        ok, line = check_queue(rows)
        if keep_serving:
            echo(f"serving {server.base_url}/ until Ctrl-C")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return DemoOutcome(summary=summary, queue=rows, check=line, ok=ok and summary.ok, data_dir=run_dir)
