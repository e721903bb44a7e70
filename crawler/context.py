"""What every crawler of one run shares: the store, the archive, the rules, the run id.

`run_crawl` builds one `RunContext` and puts it into each crawler's settings under
``DWATCH_CONTEXT`` (components read it in ``from_crawler``; without it they raise
`NotConfigured`, so a spider can be unit-tested on its own). All crawlers of a process run
in the reactor thread, one callback at a time, so the shared set needs no lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.settings import BaseSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from config import CrawlSettings, SourceConfig
    from extract import RuleSet
    from store import WarcArchive

__all__ = ["CONTEXT_SETTING", "SOURCE_SETTING", "RunContext", "context_from", "source_from"]

CONTEXT_SETTING = "DWATCH_CONTEXT"
SOURCE_SETTING = "DWATCH_SOURCE"


@dataclass
class RunContext:
    run_id: int
    session_factory: sessionmaker[Session]
    archive: WarcArchive
    ruleset: RuleSet
    crawl: CrawlSettings
    claimed: set[str] = field(default_factory=set)   # canonical article URLs requested this run

    def __deepcopy__(self, memo: dict[int, Any]) -> RunContext:
        # Scrapy deep-copies settings; the context is a shared resource, never copied.
        return self


def context_from(settings: BaseSettings) -> RunContext | None:
    value = settings.get(CONTEXT_SETTING)
    return value if isinstance(value, RunContext) else None


def source_from(settings: BaseSettings) -> SourceConfig:
    """The source a crawler crawls (``DWATCH_SOURCE``); a clear error when missing."""
    from config import SourceConfig

    value = settings.get(SOURCE_SETTING)
    if not isinstance(value, SourceConfig):
        raise ValueError(
            f"crawler setting {SOURCE_SETTING} must be a config.SourceConfig, got {type(value).__name__}; "
            "start spiders through crawler.run_crawl"
        )
    return value
