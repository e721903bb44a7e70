"""Crawl throughput with 1, 2 and 4 `dwatch worker` processes sharing one frontier.

    python bench/workers.py --postgres URL --redis URL [--articles 2000] [--sources 4]
                            [--workers 1,2,4] [--no-baseline]

A local news site of ``--articles`` pages (bench/site.py, in its own process, one port per
source) is crawled once per worker count against PostgreSQL + Redis: a fresh database per run
(created next to the one ``--postgres`` names, with the role's CREATEDB right, dropped after),
a frontier key prefix of its own in Redis (its keys deleted after). The workers are started
with --exit-when-idle, then `dwatch feed` pushes the sitemaps; a run ends when every article
is stored. Printed per run: documents and candidates stored (every run must store the same),
articles the site served more than once, wall time from starting the processes (start-up
included; the feed follows at once) to the last article stored, pages per second, the CPU
seconds the crawling processes (workers or the crawl, and `dwatch feed`) used per page, and
how busy the whole machine was meanwhile (all cores, every process: PostgreSQL, Redis, the
site, other users). The baseline is one `dwatch crawl` (one process, no frontier) of the
same site. Figures and how to read them: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.tables import format_table  # noqa: E402
from store import make_engine, upgrade_database  # noqa: E402
from store.models import Candidate, Document  # noqa: E402

IDLE_SECONDS = 5   # a worker with nothing to do for this long exits (--exit-when-idle)


@dataclass(frozen=True)
class RunResult:
    label: str
    workers: int
    documents: int
    candidates: int
    fetched_twice: int
    seconds: float
    cpu_seconds: float
    machine_busy: float | None   # share of all cores' time busy (any process) during the run
    finished: bool     # every article stored within the time limit

    @property
    def pages_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


class Site:
    """bench/site.py in its own process; ``stats()`` / ``reset()`` talk to it over its stdin."""

    def __init__(self, articles: int, sources: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "site.py"), "--articles", str(articles),
             "--sources", str(sources)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.info: dict[str, Any] = json.loads(self._line())

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("bench/site.py exited before it answered; run it by hand to see why")
        return line

    def _ask(self, command: str) -> dict[str, int]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: dict[str, int] = json.loads(self._line())
        return answer

    def reset(self) -> None:
        self._ask("reset")

    def stats(self) -> dict[str, int]:
        return self._ask("stats")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@contextmanager
def private_database(server_url: str, label: str) -> Iterator[str]:
    """A new database on the server of ``server_url``, dropped (connections and all) on exit."""
    base = make_url(server_url)
    name = f"dwatch_bench_{os.getpid()}_{label}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def write_config(directory: Path, site: Site, articles: int, prefix: str) -> Path:
    ports: list[int] = site.info["ports"]
    sources = [
        {"id": f"bench-{i}", "name": f"Bench Gazette {i}", "kind": "sitemap",
         "urls": [f"http://127.0.0.1:{port}/sitemap.xml"], "languages": ["en"],
         "max_articles": articles}
        for i, port in enumerate(ports)
    ]
    settings = {
        "crawl": {"allow_private_addresses": True, "download_delay": 0, "autothrottle": False,
                  "concurrent_requests_per_domain": 8, "max_articles_per_source": articles,
                  "force_poll": True},
        "frontier": {"key_prefix": prefix, "idle_seconds": IDLE_SECONDS},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), "utf-8")
    (directory / "settings.yaml").write_text(yaml.safe_dump(settings), "utf-8")
    shutil.copyfile(REPO / "config" / "rules.yaml", directory / "rules.yaml")
    return directory


def _stored(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            documents = connection.execute(select(func.count(Document.id))).scalar_one()
            candidates = connection.execute(select(func.count(Candidate.id))).scalar_one()
            return int(documents), int(candidates)
    finally:
        engine.dispose()


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine since boot (Linux /proc/stat), else None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(site: Site, workers: int, args: argparse.Namespace, work: Path) -> RunResult:
    """One crawl of the site: ``workers`` `dwatch worker` processes, or (0) one `dwatch crawl`."""
    label = f"dwatch worker x{workers}" if workers else "dwatch crawl (no frontier)"
    prefix = f"dwatch-bench-{os.getpid()}-{workers}"
    run_dir = work / f"run-{workers}"
    with private_database(args.postgres, f"w{workers}") as url:
        upgrade_database(url)
        config = write_config(run_dir / "config", site, args.articles, prefix)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
        env.update(DWATCH_CONFIG_DIR=str(config), DWATCH_DATA_DIR=str(run_dir / "data"),
                   DWATCH_DATABASE_URL=url)
        if workers:
            env["DWATCH_REDIS_URL"] = args.redis
        site.reset()
        cpu_before, ticks_before = _children_cpu(), _machine_ticks()
        commands = ([["worker", "--exit-when-idle"]] * workers) if workers else [["crawl"]]
        procs: list[subprocess.Popen[str]] = []
        with ExitStack() as logs:
            try:
                started = time.perf_counter()
                for i, command in enumerate(commands):
                    log = logs.enter_context(open(run_dir / f"{command[0]}-{i}.log", "w", encoding="utf-8"))
                    procs.append(subprocess.Popen([sys.executable, "-m", "cli", *command], cwd=REPO,
                                                  env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
                if workers:
                    feed = subprocess.run([sys.executable, "-m", "cli", "feed"], cwd=REPO, env=env,
                                          capture_output=True, text=True, timeout=120)
                    if feed.returncode != 0:
                        raise RuntimeError(f"dwatch feed failed ({feed.returncode}): {feed.stderr[-2000:]}")
                finished, seconds = _wait_for_articles(url, args.articles, started, args.timeout, procs)
                busy = _busy_share(ticks_before, _machine_ticks())
                for proc in procs:
                    try:
                        proc.wait(timeout=IDLE_SECONDS * 6 + 30)
                    except subprocess.TimeoutExpired:
                        proc.terminate()
                        proc.wait(timeout=60)
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                if workers:
                    _drop_keys(args.redis, prefix)
        cpu = _children_cpu() - cpu_before
        documents, candidates = _stored(url)
    twice = sum(1 for count in site.stats().values() if count > 1)
    return RunResult(label, max(workers, 1), documents, candidates, twice, seconds, cpu, busy, finished)


def _wait_for_articles(url: str, articles: int, started: float, timeout: float,
                       procs: list[subprocess.Popen[str]]) -> tuple[bool, float]:
    """(all stored, seconds from ``started`` to the last article stored or the give-up)."""
    engine = make_engine(url)
    try:
        while True:
            with engine.connect() as connection:
                stored = connection.execute(select(func.count(Document.id))).scalar_one()
            now = time.perf_counter()
            if stored >= articles:
                return True, now - started
            if now - started > timeout or all(p.poll() is not None for p in procs):
                return False, now - started
            time.sleep(0.2)
    finally:
        engine.dispose()


def _drop_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def machine(args: argparse.Namespace) -> str:
    import redis

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    engine = make_engine(args.postgres)
    try:
        with engine.connect() as connection:
            pg = connection.exec_driver_sql("SHOW server_version").scalar_one()
    finally:
        engine.dispose()
    client = redis.Redis.from_url(args.redis)
    try:
        version = client.info("server")["redis_version"]
    finally:
        client.close()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"PostgreSQL {pg}, Redis {version}; load average {load} (shared machine)")


def format_results(results: list[RunResult]) -> str:
    header = ["run", "processes", "documents", "candidates", "fetched twice", "wall s", "pages/s",
              "pages/s per process", "crawler CPU s/page", "machine busy"]
    rows = [[r.label + ("" if r.finished else " (UNFINISHED)"), str(r.workers), str(r.documents),
             str(r.candidates), str(r.fetched_twice), f"{r.seconds:.1f}", f"{r.pages_per_second:.1f}",
             f"{r.pages_per_second / r.workers:.1f}",
             f"{r.cpu_seconds / r.documents:.3f}" if r.documents else "-",
             f"{r.machine_busy:.0%}" if r.machine_busy is not None else "-"] for r in results]
    return format_table(header, rows, right=set(range(1, len(header))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("DWATCH_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server (any database on it; runs get their own)")
    parser.add_argument("--redis", metavar="URL", default=os.environ.get("DWATCH_BENCH_REDIS_URL"),
                        help="a Redis database, e.g. redis://127.0.0.1:6379/14")
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=4, help="sources (site ports) they are spread over")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, e.g. 1,2,4")
    parser.add_argument("--no-baseline", action="store_true", help="skip the `dwatch crawl` run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a run may take")
    parser.add_argument("--keep", type=Path, help="keep the runs' configs and logs in this directory")
    args = parser.parse_args(argv)
    if not args.postgres or not args.redis:
        parser.error("--postgres and --redis are needed "
                     "(or DWATCH_BENCH_POSTGRES_URL / DWATCH_BENCH_REDIS_URL)")
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if any(n < 1 for n in counts) or args.articles < 1 or args.sources < 1:
        parser.error("--workers, --articles and --sources must be positive")
    print(machine(args))
    site = Site(args.articles, args.sources)
    info = site.info
    print(f"site: {args.articles} articles on {args.sources} sources (127.0.0.1, a port each), "
          f"{info['flagged']} accounts of leaving IS ({info['verbatim']} verbatim copies, "
          f"{info['near']} near-copies): {info['expected_candidates']} candidates expected", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="dwatch-bench-workers-"))
    results: list[RunResult] = []
    try:
        for workers in ([] if args.no_baseline else [0]) + counts:
            results.append(run(site, workers, args, work))
            print(f"  {results[-1].label}: {results[-1].documents} documents in "
                  f"{results[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        site.close()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(format_results(results))
    return 0 if all(r.finished for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
