"""`dwatch demo`: serve the bundled sample site, crawl it into a fresh database, check the queue."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config import load_settings
from demo import SITE_DIR, load_expected, serve_directory, write_config


@dataclass(frozen=True)
class DemoOutcome:
    summary: Any          # crawler.RunSummary
    queue: list[Any]      # store queue rows
    check: str            # one line: expected vs found
    ok: bool
    data_dir: Path


def expected_queue_paths() -> set[str]:
    """Paths that must be queued: flagged pages that are not a verbatim copy of another page.

    Of a verbatim pair only one page is queued, and which one depends on which the crawl
    stores first; `check_queue` accepts either (this set names the original).
    """
    return {p.path for p in load_expected().values() if p.flagged and not p.duplicate_of}


def check_queue(rows: list[Any]) -> tuple[bool, str]:
    """Compare the queue with demo/expected.json; one line for people, and whether it matched."""
    copy_of = {p.duplicate_of: p.path for p in load_expected().values() if p.duplicate_of}
    got = {urlsplit(r.url).path for r in rows}
    want = expected_queue_paths()
    # of a verbatim pair, exactly one page (either) is queued
    missing = sorted(p for p in want if p not in got and copy_of.get(p) not in got)
    allowed = want | {copy_of[p] for p in want if p in copy_of and p not in got}
    extra = sorted(got - allowed)
    line = f"demo check: {len(want) - len(missing)}/{len(want)} expected candidates queued"
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
    from store import make_engine, make_session_factory
    from store import queue as q

    base = data_dir if data_dir is not None else Path(tempfile.mkdtemp(prefix="dwatch-demo-"))
    run_dir = base / time.strftime("demo-%Y%m%d-%H%M%S")
    with serve_directory(SITE_DIR) as server:
        echo(f"sample site at {server.base_url}/  (demo data in {run_dir})")
        config_dir = write_config(run_dir / "config", server.base_url)
        settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(run_dir)})
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
