"""The crawl frontier shared by `dwatch worker` processes: request queues and leases in Redis.

Keys (``<p>`` = ``frontier.key_prefix``, ``<s>`` = a source id, ``<w>`` = a worker id)::

    <p>:<s>:start_urls      set    start documents fed by `feed_frontier` (RedisSpider-style)
    <p>:<s>:requests        zset   scrapy-redis PriorityQueue: pickled requests, score -priority
    <p>:<s>:dupefilter      set    scrapy-redis RFPDupeFilter: canonical-URL fingerprints
    <p>:<s>:inflight:<w>    hash   requests worker <w> took and has not finished: token -> "score data"
    <p>:workers             hash   worker id -> JSON (host, pid, sources, started)
    <p>:worker:<w>          string worker <w>'s heartbeat; expires after lease_seconds

A worker takes a request with one atomic step (`Frontier.pop`: out of the queue, into its
in-flight hash) and removes it from there (`ack`) only once the request is fully handled: its
item stored or dropped, the requests it led to in the queue. A request that becomes another
(a redirect, a retry) is handed over in one transaction (`push` with ``handoff``). Every worker
renews its heartbeat; any worker requeues the in-flight requests of a worker whose heartbeat
expired (`reclaim_dead`), so a killed worker loses nothing. A worker that stops cleanly puts its
unfinished requests back itself (`retire`).

`feed_frontier` is what the scheduler runs instead of a crawl when ``frontier.redis_url`` is set.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis
from sqlalchemy.exc import SQLAlchemyError

from config.settings import masked_url
from crawler.errors import CrawlError

if TYPE_CHECKING:
    from config import Settings
    from config.settings import FrontierSettings

logger = logging.getLogger(__name__)

__all__ = ["Frontier", "FrontierKeys", "WorkerInfo", "connect_frontier", "feed_frontier", "new_worker_id"]

# Take the best (lowest score) request and lease it: KEYS queue, in-flight hash; ARGV token.
_POP = """
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then return false end
redis.call('ZREM', KEYS[1], top[1])
redis.call('HSET', KEYS[2], ARGV[1], top[2] .. ' ' .. top[1])
return top[1]
"""
# Put every leased request of a hash back in its queue: KEYS in-flight hash, queue.
_REQUEUE = """
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local value = entries[i + 1]
  local cut = string.find(value, ' ', 1, true)
  redis.call('ZADD', KEYS[2], string.sub(value, 1, cut - 1), string.sub(value, cut + 1))
end
redis.call('DEL', KEYS[1])
return #entries / 2
"""
# A dead worker's leases back to their queues and its registration gone, in one step, so two
# workers reclaiming at once cannot split or double it: KEYS heartbeat, registry, then
# (in-flight hash, queue) per source; ARGV worker id. -1: alive after all; -2: already reclaimed.
_RECLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return -2 end
local moved = 0
for k = 3, #KEYS, 2 do
  local entries = redis.call('HGETALL', KEYS[k])
  for i = 1, #entries, 2 do
    local value = entries[i + 1]
    local cut = string.find(value, ' ', 1, true)
    redis.call('ZADD', KEYS[k + 1], string.sub(value, 1, cut - 1), string.sub(value, cut + 1))
    moved = moved + 1
  end
  redis.call('DEL', KEYS[k])
end
return moved
"""


@dataclass(frozen=True)
class FrontierKeys:
    """The Redis key names under one prefix (see the module doc)."""

    prefix: str

    def start_urls(self, source_id: str) -> str:
        return f"{self.prefix}:{source_id}:start_urls"

    def requests(self, source_id: str) -> str:
        return f"{self.prefix}:{source_id}:requests"

    def dupefilter(self, source_id: str) -> str:
        return f"{self.prefix}:{source_id}:dupefilter"

    def inflight(self, source_id: str, worker_id: str) -> str:
        return f"{self.prefix}:{source_id}:inflight:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def heartbeat(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"


@dataclass(frozen=True)
class WorkerInfo:
    """What the registry says about one worker (`Frontier.workers`)."""

    worker_id: str
    sources: tuple[str, ...]
    host: str
    pid: int
    started: str
    alive: bool

    def to_json(self) -> str:
        return json.dumps({"sources": list(self.sources), "host": self.host, "pid": self.pid,
                           "started": self.started})


def new_worker_id() -> str:
    """``<host>-<pid>-<random>``: unique among the workers of one frontier."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"{host}-{os.getpid()}-{os.urandom(3).hex()}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class Frontier:
    """The shared frontier's Redis operations (one client; the caller owns and closes it)."""

    def __init__(self, client: redis.Redis, keys: FrontierKeys, lease_seconds: int) -> None:
        self.client = client
        self.keys = keys
        self.lease_seconds = lease_seconds
        self._pop = client.register_script(_POP)
        self._requeue = client.register_script(_REQUEUE)
        self._reclaim = client.register_script(_RECLAIM)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------ start documents

    def push_seeds(self, source_id: str, urls: Iterable[str]) -> int:
        """Feed a source's start documents; returns how many were not already waiting."""
        urls = list(dict.fromkeys(urls))
        return int(self.client.sadd(self.keys.start_urls(source_id), *urls)) if urls else 0

    def pop_seeds(self, source_id: str, count: int) -> list[str]:
        taken = self.client.spop(self.keys.start_urls(source_id), count)
        return sorted(_text(url) for url in taken or [] if isinstance(url, bytes | str))

    # ------------------------------------------------------------ requests and leases

    def push(
        self, source_id: str, score: float, data: bytes, *, handoff: tuple[str, str] | None = None
    ) -> None:
        """Queue one encoded request; `handoff` (worker id, token) ends that lease in the same step."""
        pipe = self.client.pipeline(transaction=True)
        # ZADD by command: redis-py's zadd() takes a mapping, whose keys must be str for typing
        pipe.execute_command("ZADD", self.keys.requests(source_id), score, data)  # type: ignore[no-untyped-call]
        if handoff is not None:
            pipe.hdel(self.keys.inflight(source_id, handoff[0]), handoff[1])
        pipe.execute()

    def pop(self, source_id: str, worker_id: str, token: str) -> bytes | None:
        """The best queued request of a source, leased to `worker_id` under `token`; None: empty."""
        data = self._pop(keys=[self.keys.requests(source_id), self.keys.inflight(source_id, worker_id)],
                         args=[token])
        return data if isinstance(data, bytes) else None

    def ack(self, source_id: str, worker_id: str, token: str) -> None:
        """The leased request is done (handled, or failed for good)."""
        self.client.hdel(self.keys.inflight(source_id, worker_id), token)

    def requeue(self, source_id: str, worker_id: str) -> int:
        """Put a worker's leased requests of a source back in the queue; returns how many."""
        keys = [self.keys.inflight(source_id, worker_id), self.keys.requests(source_id)]
        return int(self._requeue(keys=keys))

    def forget(self, source_id: str, fingerprints: Sequence[str]) -> None:
        """Let the dupefilter admit these requests again (a fetch to retry on a later feed)."""
        if fingerprints:
            self.client.srem(self.keys.dupefilter(source_id), *fingerprints)

    # ------------------------------------------------------------ workers

    def beat(self, info: WorkerInfo) -> None:
        """Register `info` and renew its heartbeat for lease_seconds."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.workers, info.worker_id, info.to_json())
        pipe.set(self.keys.heartbeat(info.worker_id), info.started, ex=self.lease_seconds)
        pipe.execute()

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, `alive` while its heartbeat lasts."""
        raw = {_text(k): _text(v) for k, v in self.client.hgetall(self.keys.workers).items()}
        ids = sorted(raw)
        pipe = self.client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.exists(self.keys.heartbeat(worker_id))
        alive = pipe.execute() if ids else []
        out = []
        for worker_id, live in zip(ids, alive, strict=True):
            data = json.loads(raw[worker_id])
            out.append(WorkerInfo(worker_id, tuple(data.get("sources", ())), str(data.get("host", "?")),
                                  int(data.get("pid", 0)), str(data.get("started", "")), bool(live)))
        return out

    def reclaim_dead(self) -> dict[str, int]:
        """Requeue the leases of every worker whose heartbeat expired; {worker id: requests requeued}."""
        reclaimed: dict[str, int] = {}
        for info in self.workers():
            if info.alive:
                continue
            keys = [self.keys.heartbeat(info.worker_id), self.keys.workers]
            for source_id in info.sources:
                keys += [self.keys.inflight(source_id, info.worker_id), self.keys.requests(source_id)]
            moved = int(self._reclaim(keys=keys, args=[info.worker_id]))
            if moved < 0:
                continue    # alive again, or another worker reclaimed it first
            reclaimed[info.worker_id] = moved
            logger.warning("worker %s (pid %s on %s) stopped renewing its heartbeat; %d request(s) it held "
                           "went back to the queue", info.worker_id, info.pid, info.host, moved)
        return reclaimed

    def retire(self, worker_id: str, source_ids: Sequence[str]) -> int:
        """A worker's clean exit: its unfinished requests back to the queue, its registration gone."""
        moved = sum(self.requeue(source_id, worker_id) for source_id in source_ids)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.heartbeat(worker_id))
        pipe.hdel(self.keys.workers, worker_id)
        pipe.execute()
        return moved

    # ------------------------------------------------------------ what is left

    def queued(self, source_id: str) -> int:
        """Requests waiting in a source's queue plus start documents waiting to be read."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.keys.requests(source_id))
        pipe.scard(self.keys.start_urls(source_id))
        return sum(int(n) for n in pipe.execute())

    def inflight(self, source_id: str) -> int:
        """Requests of a source leased to any registered worker (dead ones' too, until reclaimed)."""
        ids = [_text(k) for k in self.client.hkeys(self.keys.workers)]
        if not ids:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hlen(self.keys.inflight(source_id, worker_id))
        return sum(int(n) for n in pipe.execute())

    def pending(self, source_id: str) -> int:
        """All the work a source still has in the frontier: queued, to read, or in flight."""
        return self.queued(source_id) + self.inflight(source_id)


def connect_frontier(frontier: FrontierSettings) -> Frontier:
    """A `Frontier` on ``frontier.redis_url``, checked to answer; CrawlError saying how to fix it."""
    if frontier.redis_url is None:
        raise CrawlError(
            "no shared frontier: set frontier.redis_url in settings.yaml or DWATCH_REDIS_URL "
            "(e.g. redis://127.0.0.1:6379/0); `dwatch crawl` crawls without one"
        )
    shown = masked_url(frontier.redis_url)
    try:
        client = redis.Redis.from_url(frontier.redis_url, socket_connect_timeout=10, socket_timeout=30,
                                      retry_on_timeout=True)
        client.ping()
    except ValueError as exc:
        raise CrawlError(f"frontier.redis_url {shown}: {exc}") from exc
    except redis.RedisError as exc:
        raise CrawlError(
            f"cannot reach Redis at {shown}: {exc}; start it (`make services` runs one on 127.0.0.1) "
            "or point DWATCH_REDIS_URL at a running server"
        ) from exc
    return Frontier(client, FrontierKeys(frontier.key_prefix), frontier.lease_seconds)


def worker_info(worker_id: str, source_ids: Sequence[str]) -> WorkerInfo:
    return WorkerInfo(worker_id, tuple(source_ids), socket.gethostname(), os.getpid(),
                      datetime.now(UTC).isoformat(timespec="seconds"), True)


def feed_frontier(settings: Settings, source_ids: Sequence[str] | None = None) -> int:
    """Feed the start documents (feeds, sitemaps, listing pages) of the selected sources to the workers.

    The sources are the given ids or every enabled one, less those backed off or disabled after
    failed runs (store.source_health). Returns how many start documents were fed (a document
    still waiting from an earlier feed is not fed twice). Raises CrawlError when Redis or the
    store cannot be reached.
    """
    from crawler.runner import open_store, select_sources, skip_unhealthy
    from store import make_session_factory

    sources = select_sources(settings, source_ids)
    engine = open_store(settings)
    try:
        with make_session_factory(engine)() as session:
            sources = skip_unhealthy(session, sources)
    except SQLAlchemyError as exc:
        raise CrawlError(f"store {settings.masked()['database_url']}: {exc}") from exc
    finally:
        engine.dispose()
    frontier = connect_frontier(settings.frontier)
    try:
        fed = {source.id: frontier.push_seeds(source.id, source.urls) for source in sources}
    except redis.RedisError as exc:
        shown = masked_url(settings.frontier.redis_url or "")
        raise CrawlError(f"cannot feed the frontier at {shown}: {exc}") from exc
    finally:
        frontier.close()
    logger.info("fed %d start document(s) of %s", sum(fed.values()),
                ", ".join(f"{sid} ({n})" for sid, n in fed.items()) or "no source")
    return sum(fed.values())
