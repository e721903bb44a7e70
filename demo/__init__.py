"""The bundled demo: a small fictional news outlet and think tank, its sources and ground truth.

    from demo import SITE_DIR, serve_directory, write_config, load_expected

    with serve_directory(SITE_DIR) as server:
        config_dir = write_config(tmp_dir, server.base_url)   # sources.yaml + settings.yaml
        ...                                                   # crawl with load_settings(config_dir)
    truth = load_expected()    # {"/news/2026/11/....html": ExpectedPage(flagged=True, ...), ...}

The site (demo/site) has an RSS feed, an Atom feed, a sitemap index with a urlset and a
Google News sitemap, and a publications listing without a feed (two pages). Its sixteen
article pages are eight accounts of people who left the Islamic State (five languages,
including a syndicated near-copy and a verbatim copy) and eight look-alikes that must not
be flagged. Every person, quote and event in them is invented.

Ground truth (demo/expected.json), one entry per article path:
  flagged       what a researcher wants queued (true only for accounts of leaving IS)
  lang          ISO 639-1 language of the page
  kind          defector, attack_report, yazidi_captive, regime_defector,
                north_korea_defector, is_trial, policy_mention, boko_haram_defector, unrelated
  channel       the discovery channel (feed, sitemap, listing) that leads to the page;
                for a page found through two channels, the first of `channels` in the
                `sources` order (which one a crawl records first is not fixed)
  channels      every channel that links the page; sources: every source id that does
  duplicate_of  set on a verbatim copy: the path of the page it copies (the relation is
                symmetric; which of the two a crawl stores first is not fixed)
  story_with    set on both pages of a near-copy pair (the wire version of a story)
  title, published  the page's headline and publication time as the page states them
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.server import FixtureServer, RecordedRequest, RequestLog, serve_directory

DEMO_DIR = Path(__file__).resolve().parent
SITE_DIR = DEMO_DIR / "site"
SOURCES_TEMPLATE = DEMO_DIR / "sources.yaml"
SETTINGS_FILE = DEMO_DIR / "settings.yaml"
EXPECTED_FILE = DEMO_DIR / "expected.json"
PLACEHOLDER = "{{BASE_URL}}"

__all__ = [
    "DEMO_DIR",
    "EXPECTED_FILE",
    "SETTINGS_FILE",
    "SITE_DIR",
    "SOURCES_TEMPLATE",
    "ExpectedPage",
    "FixtureServer",
    "RecordedRequest",
    "RequestLog",
    "load_expected",
    "render_template",
    "serve_directory",
    "write_config",
]

_FIELDS = ("flagged", "lang", "kind", "channel", "channels", "sources", "duplicate_of",
           "story_with", "title", "published")


@dataclass(frozen=True)
class ExpectedPage:
    """The ground truth for one article page of the demo site (see the module docstring)."""

    path: str
    flagged: bool
    lang: str
    kind: str
    channel: str
    channels: tuple[str, ...]
    sources: tuple[str, ...]
    duplicate_of: str | None
    story_with: str | None
    title: str
    published: str


def load_expected(path: Path = EXPECTED_FILE) -> dict[str, ExpectedPage]:
    """demo/expected.json as {article path: ExpectedPage}; ValueError names a bad entry."""
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping article paths to entries")
    pages: dict[str, ExpectedPage] = {}
    for page_path, entry in data.items():
        missing = [name for name in _FIELDS if not isinstance(entry, dict) or name not in entry]
        if missing:
            raise ValueError(f"{path}: entry {page_path!r} lacks {', '.join(missing)}")
        pages[page_path] = ExpectedPage(
            path=page_path,
            flagged=bool(entry["flagged"]),
            lang=str(entry["lang"]),
            kind=str(entry["kind"]),
            channel=str(entry["channel"]),
            channels=tuple(entry["channels"]),
            sources=tuple(entry["sources"]),
            duplicate_of=entry["duplicate_of"],
            story_with=entry["story_with"],
            title=str(entry["title"]),
            published=str(entry["published"]),
        )
    return pages


def render_template(text: str, base_url: str) -> str:
    """`text` with every {{BASE_URL}} replaced by `base_url` (without a trailing slash)."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base URL {base_url!r} must start with http:// or https://")
    return text.replace(PLACEHOLDER, base_url.rstrip("/"))


def write_config(target_dir: Path, base_url: str) -> Path:
    """Write the demo's sources.yaml (rendered for `base_url`) and settings.yaml into
    `target_dir` (created if needed; existing files of those names are replaced).

    Returns `target_dir`, ready for config.load_settings(target_dir); without a rules.yaml
    there, the loader falls back to the packaged config/rules.yaml.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    sources = render_template(SOURCES_TEMPLATE.read_text(encoding="utf-8"), base_url)
    (target_dir / "sources.yaml").write_text(sources, encoding="utf-8")
    (target_dir / "settings.yaml").write_text(
        SETTINGS_FILE.read_text(encoding="utf-8"), encoding="utf-8"
    )
    return target_dir
