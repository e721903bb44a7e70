"""A local news site for the shared-frontier tests, served from memory on 127.0.0.1 (port 0).

    site = build_site()                       # 200 articles, labelled, same bytes on every call
    with SiteServer(site) as server:
        server.url("/sitemap.xml")            # "http://127.0.0.1:54321/sitemap.xml"
        server.delay = 0.2                    # every article answer waits 0.2 s from now on
        server.fail["/news/3.html"] = 500     # answered with this status until removed
        server.article_hits()                 # {"/news/7.html": 1, ...}: how often each was fetched

Three sources on the one site, each with its own articles: a sitemap index (two child
sitemaps), an RSS feed and a listing with a second page. Of the 200 articles, `site.accounts`
are first-person accounts of leaving the Islamic State (what the project's rules flag), each
with its own text; `site.verbatim` are copies of one of them word for word (one document each,
never a second candidate); `site.near` are near-copies (one paragraph changed: a candidate of
their own); the rest are ordinary local news (stored, never queued). Every name, place and
quote is invented.
"""

from __future__ import annotations

import html
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Site", "SiteServer", "build_site"]

NAMES = ("Abu Yaman", "Omar", "Khalid", "Ahmad", "Yusuf", "Bilal", "Hassan", "Samir", "Tariq", "Ziad")
TOWNS = ("Deir ez-Zor", "Raqqa", "Mosul", "Tal Afar", "al-Bab", "Manbij", "Hawija", "Mayadin")
CITIES = ("Gaziantep", "Urfa", "Erbil", "Amman", "Kilis")
ACCOUNT = (
    "{name} was {age} when he joined the Islamic State in {year}, a few weeks after the group took "
    "{town}. He believed, he says, that he was joining the fight against the regime.",
    "\u201cI thought I was joining the revolution in a stronger form,\u201d he said in a rented flat in "
    "{city}. \u201cInstead I spent {months} months pointing my gun at other Muslims.\u201d",
    "After {months} months he deserted the group: he told his commander he was ill, took leave to "
    "visit his mother and paid a smuggler {dollars} dollars to cross the border.",
    "\u201cI left because I understood it was a lie,\u201d the former fighter said. \u201cI only want "
    "young men to know what it really was.\u201d",
    "He described the hunt for spies inside the organisation and a shepherd shot in the square of "
    "{town} while the fighters were ordered to watch.",
)
NEWS = (
    "The council of {town} voted on {weekday} to repair the {thing} before the winter, a project "
    "residents have asked for since {year}.",
    "Traders in the old market said prices of {goods} rose by {pct} percent this month, the third "
    "rise since the spring.",
    "The local football club won its match on {weekday} by {goals} goals to one, in front of "
    "{crowd} supporters.",
    "Teachers at the secondary school in {town} are preparing {pupils} pupils for the exams, and a "
    "new library will open in the autumn.",
    "Farmers near {town} expect a good olive harvest after the rains, although the price of fuel "
    "for the pumps remains high.",
)
WORDS = ("morning", "street", "family", "house", "bread", "winter", "road", "cousin", "school",
         "evening", "phone", "river", "bus", "shop", "neighbour", "wall", "garden", "tea", "field",
         "window", "market", "uncle", "dust", "light", "village", "door", "sister", "radio", "night")
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Site:
    pages: dict[str, bytes]              # article path -> HTML
    sources: dict[str, list[str]]        # "sitemap" / "feed" / "listing" -> its article paths
    accounts: tuple[str, ...]            # paths of the distinct flagged accounts
    verbatim: dict[str, str]             # copy path -> the account it copies word for word
    near: dict[str, str]                 # near-copy path -> the account it was changed from
    titles: dict[str, str]               # article path -> title

    @property
    def expected_candidates(self) -> int:
        """One per distinct flagged text: the accounts and the near-copies, not the verbatim copies."""
        return len(self.accounts) + len(self.near)

    @property
    def articles(self) -> list[str]:
        return sorted(self.pages)


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        name=rng.choice(NAMES), age=rng.randint(16, 30), year=rng.randint(2013, 2016), town=rng.choice(TOWNS),
        city=rng.choice(CITIES), months=rng.randint(4, 30), dollars=rng.randint(3, 20) * 100,
        weekday=rng.choice(("Monday", "Tuesday", "Friday")), thing=rng.choice(("bridge", "clinic roof")),
        goods=rng.choice(("bread", "rice", "cooking gas")), pct=rng.randint(3, 40), goals=rng.randint(2, 5),
        crowd=rng.randint(200, 9000), pupils=rng.randint(80, 900),
    )


def _paragraph(rng: random.Random, template: str) -> str:
    """A template sentence and a sentence of random words: every page's text is its own."""
    extra = " ".join(rng.choices(WORDS, k=rng.randint(10, 16))).capitalize() + "."
    return f"{_fill(rng, template)} {extra}"


def _page(title: str, paragraphs: list[str], published: datetime) -> bytes:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta property="article:published_time" content="{published.isoformat()}"></head><body>'
        f'<nav><a href="/">Home</a> <a href="/about">About</a></nav><article><h1>{html.escape(title)}</h1>'
        f'<p class="byline">Staff reporter, {published:%d %B %Y}</p>\n{body}</article>'
        f"<footer>The Scale Gazette</footer></body></html>"
    ).encode()


def build_site(articles: int = 200, *, accounts: int = 40, verbatim: int = 8, near: int = 8,
               seed: int = 7) -> Site:
    """`articles` pages (the same bytes for the same arguments), split over the three sources."""
    rng = random.Random(seed)
    kinds = ["account"] * accounts + ["verbatim"] * verbatim + ["near"] * near
    kinds += ["news"] * (articles - len(kinds))
    rng.shuffle(kinds)
    # an account comes before its copies: copies take an account already made
    kinds.sort(key=lambda kind: kind in ("verbatim", "near"))
    pages: dict[str, bytes] = {}
    titles: dict[str, str] = {}
    bodies: dict[str, tuple[str, list[str]]] = {}
    made: list[str] = []
    copies: dict[str, str] = {}
    changed: dict[str, str] = {}
    for n, kind in enumerate(kinds):
        path = f"/news/{n}.html"
        if kind == "account":
            title = f"A former Islamic State fighter from {rng.choice(TOWNS)} on why he deserted ({n})"
            paragraphs = [_paragraph(rng, t) for t in ACCOUNT]
            made.append(path)
        elif kind == "verbatim":
            copies[path] = rng.choice(made)
            title, paragraphs = bodies[copies[path]]
        elif kind == "near":
            changed[path] = rng.choice(made)
            title, paragraphs = bodies[changed[path]]
            paragraphs = [*paragraphs[:-1], _paragraph(rng, rng.choice(NEWS))]
        else:
            topic = rng.choice(("council", "market", "school", "harvest"))
            title = f"{rng.choice(TOWNS)}: {topic} news ({n})"
            paragraphs = [_paragraph(rng, t) for t in rng.sample(NEWS, 4)]
        bodies[path] = (title, paragraphs)
        titles[path] = title
        pages[path] = _page(title, paragraphs, START + timedelta(hours=n))
    paths = list(pages)
    rng.shuffle(paths)
    fifth = len(paths) // 5
    sources = {"sitemap": sorted(paths[: 3 * fifth]), "feed": sorted(paths[3 * fifth: 4 * fifth]),
               "listing": sorted(paths[4 * fifth:])}
    return Site(pages, sources, tuple(made), copies, changed, titles)


def _number(path: str) -> int:
    return int(path.rsplit("/", 1)[1].split(".")[0])


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        body, kind = self.server.answer(path)
        status = self.server.fail.get(path, 200 if body is not None else 404)
        if status != 200:
            body = None
        self.send_response(status)
        self.send_header("Content-Type", kind)
        payload = body if body is not None else f"HTTP {status}".encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Site) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site = site
        self.delay = 0.0
        self.fail: dict[str, int] = {}
        self.lock = threading.Lock()
        self.log: list[str] = []
        self.documents = self._documents(f"http://127.0.0.1:{self.server_address[1]}")

    def _documents(self, base: str) -> dict[str, tuple[bytes, str]]:
        xml = "application/xml"
        urlset = '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        half = len(self.site.sources["sitemap"]) // 2
        children = {"/sitemap-1.xml": self.site.sources["sitemap"][:half],
                    "/sitemap-2.xml": self.site.sources["sitemap"][half:]}
        docs: dict[str, tuple[bytes, str]] = {"/robots.txt": (b"User-agent: *\nAllow: /\n", "text/plain")}
        index = "".join(f"<sitemap><loc>{base}{child}</loc></sitemap>" for child in children)
        docs["/sitemap.xml"] = ((
            '<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{index}</sitemapindex>').encode(), xml)
        for child, paths in children.items():
            docs[child] = ((urlset + "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
                            + "</urlset>").encode(), xml)
        items = "".join(
            f"<item><title>{html.escape(self.site.titles[p])}</title><link>{base}{p}</link><guid>{base}{p}</guid>"
            f"<pubDate>{format_datetime(START + timedelta(hours=_number(p)))}</pubDate></item>"
            for p in self.site.sources["feed"])
        docs["/feed.xml"] = ((f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
                              f"<title>The Scale Gazette</title><link>{base}/</link>{items}</channel></rss>"
                              ).encode(), "application/rss+xml")
        listing = self.site.sources["listing"]
        half = len(listing) // 2
        pages = {"/list/1.html": (listing[:half], '<a rel="next" href="/list/2.html">Older</a>'),
                 "/list/2.html": (listing[half:], "")}
        for page, (paths, following) in pages.items():
            links = "".join(f'<li><a class="story" href="{p}">{html.escape(self.site.titles[p])}</a></li>'
                            for p in paths)
            docs[page] = (f"<!DOCTYPE html><html><body><ul>{links}</ul>{following}</body></html>".encode(),
                          "text/html; charset=utf-8")
        return docs

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a killed worker) is no error of the server's: nothing printed."""
        return None

    def answer(self, path: str) -> tuple[bytes | None, str]:
        with self.lock:
            self.log.append(path)
            delay = self.delay
        if path in self.site.pages:
            if delay:
                time.sleep(delay)
            return self.site.pages[path], "text/html; charset=utf-8"
        return self.documents.get(path, (None, "text/plain"))


class SiteServer:
    """Serves a `Site` in a thread; `log` lists every requested path in order of arrival."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._server = _Server(site)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def delay(self) -> float:
        return self._server.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        with self._server.lock:
            self._server.delay = seconds

    @property
    def fail(self) -> dict[str, int]:
        """path -> the error status it is answered with (edit it while serving)."""
        return self._server.fail

    @property
    def log(self) -> list[str]:
        with self._server.lock:
            return list(self._server.log)

    def article_hits(self) -> Counter[str]:
        """How many times each article was requested (articles never requested are absent)."""
        return Counter(path for path in self.log if path in self.site.pages)

    def sources(self) -> list[dict[str, Any]]:
        """The three sources.yaml entries of this site."""
        return [
            {"id": "scale-sitemap", "name": "Scale Gazette (sitemap)", "kind": "sitemap",
             "urls": [self.url("/sitemap.xml")], "languages": ["en"]},
            {"id": "scale-feed", "name": "Scale Gazette (feed)", "kind": "feed",
             "urls": [self.url("/feed.xml")], "languages": ["en"]},
            {"id": "scale-listing", "name": "Scale Gazette (listing)", "kind": "listing",
             "urls": [self.url("/list/1.html")], "link_selector": "a.story", "follow_pages": 1,
             "languages": ["en"]},
        ]
