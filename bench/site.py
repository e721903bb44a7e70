"""A local news site of N articles for bench/workers.py, served from memory on 127.0.0.1.

    python bench/site.py --articles 2000 --sources 4
    # prints one JSON line (ports, counts), then serves until it is terminated

Each source is one port (its own host:port, so its own download slot in Scrapy): ``/robots.txt``,
``/sitemap.xml`` (that source's articles) and ``/articles/<n>.html``. On stdin it takes
``stats`` (answers a JSON line: how often each article was fetched, so a run can tell whether
a page was fetched twice) and ``reset`` (counts from zero); it exits when stdin closes.
Pages are built once at start-up from a seeded generator: ``--flagged`` of them are first-person
accounts of leaving the Islamic State (what the rules flag), the rest ordinary local news; of
the accounts, 5 % are verbatim copies of an earlier one (same text: one document, no second
candidate) and 5 % near-copies (one paragraph changed: a candidate in the same story). Every
name, place and quote is invented. HTTP/1.1 keep-alive, bodies from a dict: the server costs
little CPU next to the crawlers it feeds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Site", "build_site", "main"]

NAMES = ("Abu Yaman", "Omar", "Khalid", "Ahmad", "Yusuf", "Bilal", "Hassan", "Mahmoud", "Samir",
         "Tariq", "Faisal", "Ziad", "Karim", "Nabil", "Rami", "Walid")
TOWNS = ("Deir ez-Zor", "Raqqa", "Mosul", "Tal Afar", "al-Bab", "Manbij", "Hawija", "Fallujah",
         "Mayadin", "Albu Kamal", "Tabqa", "Shaddadi")
CITIES = ("Gaziantep", "Urfa", "Erbil", "Amman", "Istanbul", "Kilis")
ACCOUNT = (
    "{name} was {age} when he joined the Islamic State in {year}, a few weeks after the group "
    "took {town}. He believed, he says, that he was joining the fight against the regime.",
    "\u201cI thought I was joining the revolution in a stronger form,\u201d he said in a rented flat "
    "in {city}, where he now works night shifts in a workshop. \u201cInstead I spent {months} "
    "months pointing my gun at other Muslims.\u201d",
    "After {months} months he deserted the group: he told his commander he was ill, took leave "
    "to visit his mother and paid a smuggler {dollars} dollars to cross the border.",
    "\u201cI left because I understood it was a lie,\u201d the former fighter said. \u201cI am not "
    "asking anyone to forgive me. I only want young men to know what it really was.\u201d",
    "He described the hunt for spies inside the organisation: men arrested at checkpoints on "
    "the strength of a telephone contact, a shepherd shot in the square of {town} while the "
    "fighters were ordered to watch.",
    "Fighters from abroad, he said, were given better houses and larger allowances. \u201cWe were "
    "the ones they put at the front, like sandbags,\u201d said {name}, who defected in {left}.",
    "Researchers who have interviewed former members in {city} say his account of "
    "disillusionment echoes dozens of others collected since {left}.",
)
NEWS = (
    "The council of {town} voted on {weekday} to repair the {thing} before the winter, a "
    "project that residents have asked for since {year}.",
    "Traders in the old market said prices of {goods} rose by {pct} percent this month, the "
    "third rise since the spring.",
    "The local football club won its match on {weekday} by {goals} goals to one, in front of "
    "a crowd of {crowd} supporters.",
    "Teachers at the secondary school in {town} are preparing {pupils} pupils for the exams, "
    "the director said, and a new library will open in {month}.",
    "Farmers near {town} expect a good olive harvest after the rains of {month}, although the "
    "price of fuel for the pumps remains high.",
    "The bus line between {town} and {city} will run every {minutes} minutes from next week, "
    "the transport office announced.",
)
FILLER = ("morning", "street", "family", "house", "bread", "winter", "road", "cousin", "school",
          "evening", "phone", "river", "bus", "shop", "neighbour", "wall", "garden", "car", "tea",
          "field", "window", "market", "uncle", "dust", "light", "village", "workshop", "door",
          "sister", "cold", "radio", "night", "bridge", "water", "summer", "money", "smoke",
          "quiet", "long", "small", "old", "new", "later", "again", "often", "slowly", "near",
          "under", "across", "behind", "with", "without", "many", "few", "every", "some")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "March", "April", "June", "September", "October", "November")


@dataclass(frozen=True)
class Site:
    pages: dict[str, bytes]        # path -> body of every article
    sitemaps: dict[int, list[str]]  # source index -> its article paths
    flagged: int                   # accounts of leaving IS (copies included)
    verbatim: int                  # of which verbatim copies of an earlier account
    near: int                      # of which near-copies

    @property
    def expected_candidates(self) -> int:
        return self.flagged - self.verbatim


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        name=rng.choice(NAMES), age=rng.randint(16, 30), year=rng.randint(2013, 2016),
        town=rng.choice(TOWNS), city=rng.choice(CITIES), months=rng.randint(4, 30),
        dollars=rng.randint(3, 20) * 100, left=rng.randint(2015, 2018),
        weekday=rng.choice(WEEKDAYS), thing=rng.choice(("bridge", "water main", "clinic roof")),
        goods=rng.choice(("bread", "tomatoes", "cooking gas", "rice")), pct=rng.randint(3, 40),
        goals=rng.randint(2, 5), crowd=rng.randint(200, 9000), pupils=rng.randint(80, 900),
        month=rng.choice(MONTHS), minutes=rng.choice((10, 15, 20, 30)),
    )


def _paragraph(rng: random.Random, template: str) -> str:
    """A template sentence and two of words drawn at random: every page's text is its own."""
    extra = [" ".join(rng.choices(FILLER, k=rng.randint(10, 16))).capitalize() + "." for _ in range(2)]
    return " ".join([_fill(rng, template), *extra])


def _html(title: str, paragraphs: list[str], published: datetime, n: int) -> bytes:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta property="article:published_time" content="{published.isoformat()}">'
        f'<meta name="author" content="Staff reporter"></head><body>'
        f'<nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/about">About</a></nav>'
        f'<article><h1>{title}</h1><p class="byline">Story {n}, {published:%d %B %Y}</p>\n{body}'
        f'</article><footer>Bench Gazette · <a href="/contact">Contact</a></footer></body></html>'
    ).encode()


def build_site(articles: int, sources: int, *, flagged: float = 0.25, seed: int = 11) -> Site:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pages: dict[str, bytes] = {}
    sitemaps: dict[int, list[str]] = {i: [] for i in range(sources)}
    accounts: list[tuple[str, list[str]]] = []
    n_flagged = verbatim = near = 0
    for n in range(articles):
        published = start + timedelta(hours=n * 3)
        if rng.random() < flagged:
            n_flagged += 1
            roll = rng.random()
            if accounts and roll < 0.05:
                verbatim += 1
                title, paragraphs = rng.choice(accounts)
            elif accounts and roll < 0.10:
                near += 1
                title, paragraphs = rng.choice(accounts)
                paragraphs = [*paragraphs[:-1], _paragraph(rng, rng.choice(NEWS))]
            else:
                town = rng.choice(TOWNS)
                title = f"A former Islamic State fighter from {town} on why he deserted"
                paragraphs = [_paragraph(rng, t) for t in ACCOUNT]
                accounts.append((title, paragraphs))
        else:
            town = rng.choice(TOWNS)
            title = f"{town}: {rng.choice(('council', 'market', 'school', 'harvest'))} news"
            paragraphs = [_paragraph(rng, t) for t in rng.sample(NEWS, 5)]
        path = f"/articles/{n}.html"
        pages[path] = _html(title, paragraphs, published, n)
        sitemaps[n % sources].append(path)
    return Site(pages, sitemaps, n_flagged, verbatim, near)


def _sitemap(base: str, paths: list[str]) -> bytes:
    urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
            f'schemas/sitemap/0.9">{urls}</urlset>').encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        body, kind = self.server.lookup(path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", kind)
        payload = body if body is not None else b"not found"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Site, index: int, fetched: Counter[str], lock: threading.Lock) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site, self.fetched, self.lock = site, fetched, lock
        self.sitemap = _sitemap(f"http://127.0.0.1:{self.server_address[1]}", site.sitemaps[index])
        self.mine = set(site.sitemaps[index])

    def lookup(self, path: str) -> tuple[bytes | None, str]:
        if path == "/robots.txt":
            return b"User-agent: *\nAllow: /\n", "text/plain"
        if path == "/sitemap.xml":
            return self.sitemap, "application/xml"
        if path in self.mine:
            with self.lock:
                self.fetched[path] += 1
            return self.site.pages[path], "text/html; charset=utf-8"
        return None, "text/plain"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--flagged", type=float, default=0.25)
    args = parser.parse_args(argv)
    site = build_site(args.articles, args.sources, flagged=args.flagged)
    fetched: Counter[str] = Counter()
    lock = threading.Lock()
    servers = [_Server(site, i, fetched, lock) for i in range(args.sources)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({
        "ports": [s.server_address[1] for s in servers], "articles": args.articles,
        "flagged": site.flagged, "verbatim": site.verbatim, "near": site.near,
        "expected_candidates": site.expected_candidates,
    }), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        for line in sys.stdin:
            with lock:
                if line.strip() == "reset":
                    fetched.clear()
                print(json.dumps(dict(fetched)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
