"""The `dwatch` command: crawl, review and export the defector-story candidate queue.

Each command parses its options, calls one library function and reports; the work lives in
crawler/, extract/, store/ and config/.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from config import ConfigError, Settings, load_settings

logger = logging.getLogger("dwatch")

F = TypeVar("F", bound=Callable[..., Any])
# store.models.CANDIDATE_STATUSES and store.queue.DECISIONS, spelt out for the same reason
STATUSES = ("new", "accepted", "rejected", "duplicate", "needs_translation", "unflagged")
DECISIONS = ("accept", "reject", "duplicate", "translate")
# review.export.EXPORT_FORMATS, spelt out: importing review loads the store (~1 s) on every command
EXPORT_FORMATS = ("csv", "jsonl", "csl-json", "ris")


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Config directory (sources.yaml, rules.yaml, settings.yaml). "
        "Default: DWATCH_CONFIG_DIR or the packaged config/.",
    )(func)


def _settings(config_dir: Path | None) -> Settings:
    try:
        settings = load_settings(config_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx = click.get_current_context(silent=True)
    _setup_logging(settings, ((ctx.find_root().obj if ctx else None) or {}).get("verbose", 0))
    return settings


@contextmanager
def _session(settings: Settings) -> Iterator[Any]:
    """A store session on an up-to-date schema (commands that need the store upgrade it)."""
    from store import make_engine, make_session_factory, upgrade_database
    from store.errors import StoreError

    try:
        upgrade_database(settings.database_url)
        engine = make_engine(settings.database_url)
    except StoreError as exc:
        raise click.ClickException(f"store {settings.masked()['database_url']}: {exc}") from exc
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _fmt_date(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()


def _table(headers: list[str], rows: Iterable[list[str]], out: IO[str] | None = None) -> None:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    click.echo(line.rstrip(), file=out)
    click.echo("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _setup_logging(settings: Settings | None, verbose: int) -> None:
    """One line per event on stderr, text or JSON (DWATCH_LOG_FORMAT, then settings), see config.logs."""
    import os

    from config.logs import configure_logging

    fmt = settings.log_format if settings is not None else os.environ.get("DWATCH_LOG_FORMAT", "text")
    configure_logging(fmt, logging.WARNING - 10 * min(verbose, 2))


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option("0.1.0", prog_name="dwatch")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """defector-watch: find newly published accounts of people who quit the Islamic State."""
    ctx.obj = {"verbose": verbose}
    _setup_logging(None, verbose)


# ------------------------------------------------------------------------- crawling


def print_run_summary(summary: Any) -> None:
    rows = []
    for source_id, st in summary.per_source.items():
        rows.append([source_id, st.discovered, st.fetched, st.already_seen, st.extracted,
                     st.flagged, st.errors, st.first_error or ""])
    _table(["source", "discovered", "fetched", "seen", "extracted", "flagged", "errors", "first error"],
           rows)
    click.echo(f"run {summary.run_id}: {'ok' if summary.ok else 'nothing could be crawled'}")


@main.command()
@config_option
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only these sources.")
@click.option("--force", is_flag=True,
              help="Poll every feed and sitemap now, even those not due yet (still conditional).")
def crawl(config_dir: Path | None, source_ids: tuple[str, ...], force: bool) -> None:
    """Crawl every enabled source once into the store and print a summary per source."""
    from crawler import CrawlError, run_crawl

    settings = _settings(config_dir)
    if force:
        forced = settings.crawl.model_copy(update={"force_poll": True})
        settings = settings.model_copy(update={"crawl": forced})
    try:
        summary = run_crawl(settings, list(source_ids) or None)
    except CrawlError as exc:
        raise click.ClickException(str(exc)) from exc
    print_run_summary(summary)
    if not summary.ok:
        sys.exit(1)


@main.command()
@config_option
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), required=True, help="YYYY-MM-DD, first day")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), required=True, help="YYYY-MM-DD, last day")
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only these sources.")
@click.option("--via", default=None, metavar="METHODS",
              help="Comma-separated: sitemap,archive,wayback,ccnews,gdelt (default: sitemap,archive,wayback, "
              "+ ccnews with WARC files, + gdelt with backfill.gdelt_queries).")
@click.option("--warc", "warcs", multiple=True, metavar="PATH_OR_URL", help="A CC-NEWS WARC file (ccnews).")
@click.option("--plan", is_flag=True, help="Only count what would be fetched, per source and method.")
def backfill(config_dir: Path | None, since: datetime, until: datetime, source_ids: tuple[str, ...],
             via: str | None, warcs: tuple[str, ...], plan: bool) -> None:
    """Fill the queue with what the sources published from --since to --until (resumable)."""
    from crawler import CrawlError
    from crawler.backfill import BackfillArgs, Progress, run_backfill

    try:
        settings = _settings(config_dir)
    except click.ClickException as exc:
        raise _exit_2(exc.message) from exc
    methods = tuple(m.strip() for m in (via or "").split(",") if m.strip())
    args = BackfillArgs(since.date(), until.date(), source_ids, methods, warcs, plan=plan)
    try:
        summary = run_backfill(settings, args, progress=None if plan else Progress(sys.stderr))
    except CrawlError as exc:
        raise _exit_2(str(exc)) from exc
    _table(*summary.table())
    what = "plan (nothing fetched)" if plan else f"backfill run {summary.run_id} (job {summary.job_id}" + (
        ", resumed)" if summary.resumed else ")")
    click.echo(f"{what} {summary.since}..{summary.until} via {', '.join(summary.methods)}: {summary.status}")
    if not summary.ok:
        sys.exit(1)


@main.command()
@config_option
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only these sources.")
@click.option("--exit-when-idle", is_flag=True,
              help="Stop once nothing is queued or in flight for frontier.idle_seconds (default: run until "
              "SIGTERM/SIGINT).")
def worker(config_dir: Path | None, source_ids: tuple[str, ...], exit_when_idle: bool) -> None:
    """Crawl from the shared frontier (Redis, frontier.redis_url) with any number of other workers."""
    from crawler import CrawlError
    from crawler.worker import run_worker

    try:
        settings = _settings(config_dir)
    except click.ClickException as exc:
        raise _exit_2(exc.message) from exc
    try:
        summary = run_worker(settings, list(source_ids) or None, exit_when_idle=exit_when_idle)
    except CrawlError as exc:
        raise _exit_2(str(exc)) from exc
    print_run_summary(summary)
    back = f", {summary.requeued} unfinished request(s) back in the queue" if summary.requeued else ""
    click.echo(f"worker {summary.worker_id}: {summary.status}{back}")
    if not summary.ok:
        sys.exit(1)


@main.command()
@config_option
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only these sources.")
def feed(config_dir: Path | None, source_ids: tuple[str, ...]) -> None:
    """Feed the sources' feeds, sitemaps and listing pages to the workers (what the scheduler does)."""
    from crawler import CrawlError
    from crawler.frontier import feed_frontier

    settings = _settings(config_dir)
    try:
        fed = feed_frontier(settings, list(source_ids) or None)
    except CrawlError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"fed {fed} start document(s) to the shared frontier")


@main.command()
@config_option
def rescore(config_dir: Path | None) -> None:
    """Re-run extraction and the rules on every archived page (no network), after a rules change."""
    from crawler import rescore as run_rescore

    summary = run_rescore(_settings(config_dir))
    click.echo(
        f"rescored {summary.documents} archived pages with rules {summary.rules_version}: "
        f"{summary.newly_flagged} newly flagged, {summary.unflagged} no longer flagged, "
        f"{summary.changed} verdicts changed, {summary.errors} errors"
    )


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config_dir: Path | None) -> None:
    """Run the Alembic migrations up to the newest schema."""
    from store import upgrade_database

    settings = _settings(config_dir)
    upgrade_database(settings.database_url)
    click.echo(f"database at {settings.masked()['database_url']} is up to date")


# ------------------------------------------------------------------------- the queue


def _since(value: datetime | None) -> date | None:
    return value.date() if value else None


def print_queue(rows: list[Any]) -> None:
    _table(
        ["id", "score", "lang", "title", "source", "published", "url"],
        [[r.id, f"{r.score:.2f}", r.lang or "-", (r.title or "")[:60], r.source_id,
          _fmt_date(r.published), r.canonical_url] for r in rows],
    )
    click.echo(f"{len(rows)} candidate(s)")
    if not rows:
        click.echo("(none yet: `dwatch crawl` fills the queue; `dwatch demo` shows the whole flow offline)",
                   err=True)


@main.command()
@config_option
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="YYYY-MM-DD")
@click.option("--lang", default=None, help="ISO 639-1 code, e.g. ar")
@click.option("--limit", type=int, default=200, show_default=True)
def queue(config_dir: Path | None, status: str | None, since: datetime | None, lang: str | None,
          limit: int) -> None:
    """List candidates, newest first."""
    from store import queue as q

    with _session(_settings(config_dir)) as session:
        rows = q.list_candidates(session, status=status, since=_since(since), lang=lang, limit=limit)
    print_queue(rows)


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    left = text[max(0, start - width):start].replace("\n", " ")
    right = text[end:end + width].replace("\n", " ")
    return f"...{left}[{text[start:end]}]{right}..."


@main.command()
@config_option
@click.argument("candidate_id", type=int)
def show(config_dir: Path | None, candidate_id: int) -> None:
    """Show one candidate: text, score, matched terms in context, provenance, decisions."""
    from extract import scored_text
    from store import queue as q

    with _session(_settings(config_dir)) as session:
        c = q.get_candidate(session, candidate_id)
    if c is None:
        raise click.ClickException(f"no candidate {candidate_id}; `dwatch queue` lists them")
    verdict = c.verdict or {}
    analysed = scored_text(c.title, c.text or "")
    click.echo(f"#{c.id}  {c.title}\n{c.url}")
    click.echo(f"published {_fmt_date(c.published)}  queued {_fmt_date(c.queued_at)}  "
               f"lang {c.lang}  score {c.score:.2f}  status {c.status}")
    if verdict.get("narratives"):
        click.echo("narratives: " + ", ".join(verdict["narratives"]))
    click.echo(f"\nwhy: {verdict.get('explanation', '')}")
    for part in verdict.get("contributions", []) + verdict.get("negatives", []):
        click.echo(f"  {part['weight']:+.2f}  {part['rule']}: {part['reason']}")
    click.echo("\nmatched terms:")
    for m in verdict.get("matches", []):
        click.echo(f"  {m['rule']:<22} {m['term']!r:<24} {_context(analysed, m['start'], m['end'])}")
    click.echo("\nprovenance:")
    for key, value in c.provenance.items():
        click.echo(f"  {key:<18} {value}")
    if c.decisions:
        click.echo("\ndecisions:")
        for d in c.decisions:
            click.echo(f"  {d.decided_at:%Y-%m-%d %H:%M} {d.decision:<9} by {d.decided_by or '-'}"
                       f"  {d.note or ''}")
    for label, items in (("verbatim copies", c.duplicates), ("same story", c.story)):
        if items:
            click.echo(f"\n{label}:")
            for item in items:
                queued = f"  candidate #{item.candidate_id} ({item.status})" if item.candidate_id else ""
                click.echo(f"  {_fmt_date(item.published or item.fetched_at)}  {item.source_id:<16} "
                           f"{item.url}{queued}")
    click.echo("\n" + (c.text or ""))


@main.command()
@config_option
@click.argument("candidate_id", type=int)
@click.argument("decision", type=click.Choice(DECISIONS))
@click.option("--note", default=None)
@click.option("--by", "by", default=None, help="Who decided (default: $USER).")
def review(config_dir: Path | None, candidate_id: int, decision: str, note: str | None,
           by: str | None) -> None:
    """Record a decision on a candidate (the history is kept)."""
    import getpass

    from store import queue as q
    from store.errors import DecisionError

    with _session(_settings(config_dir)) as session:
        try:
            row = q.record_decision(session, candidate_id, decision, note=note,
                                    by=by or getpass.getuser())
        except DecisionError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"candidate {candidate_id}: {row.decision} by {row.decided_by} at "
               f"{row.decided_at:%Y-%m-%d %H:%M:%S} UTC")


def _json_default(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _candidate_ids(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    parts = [part.strip() for part in (value or "").split(",") if part.strip()]
    bad = [part for part in parts if not part.isdigit()]
    if bad:
        raise click.BadParameter(f"{', '.join(map(repr, bad))} is not a candidate id; "
                                 "give ids separated by commas, e.g. --ids 12,15,40")
    return tuple(int(part) for part in parts)


@main.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="csv", show_default=True,
              help="csl-json and ris import into Zotero and other reference managers.")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="YYYY-MM-DD (published)")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="YYYY-MM-DD, inclusive")
@click.option("--lang", default=None, help="ISO 639-1 code, e.g. ar")
@click.option("--ids", callback=_candidate_ids, default=None, metavar="1,2,3", help="Only these candidates.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-")
def export(config_dir: Path | None, fmt: str, status: str | None, since: datetime | None,
           until: datetime | None, lang: str | None, ids: tuple[int, ...], output: IO[str]) -> None:
    """Export candidates with their provenance as CSV, JSON Lines, CSL-JSON or RIS."""
    from review.export import write_export
    from store import queue as q
    from store.errors import StoreError
    from store.records import QueueQuery

    query = QueueQuery(status=status, since=_since(since), until=_since(until), lang=lang, ids=ids,
                       limit=None)
    with _session(_settings(config_dir)) as session:
        try:
            count = write_export(q.iter_export(session, query), fmt, output)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {count} candidate(s)", err=True)


# ------------------------------------------------------------------------- no store needed


def classify_file(path: Path, ruleset: Any) -> dict[str, Any]:
    """The `dwatch classify` record of one saved .html or .txt file."""
    from extract import analyse_page, analyse_text

    try:
        body = path.read_bytes()
    except OSError as exc:
        return {"flagged": False, "score": 0.0, "lang": None, "title": None, "matches": [],
                "narratives": [], "error": f"cannot read {path}: {exc.strerror or exc}"}
    if path.suffix.lower() == ".txt":
        analysis = analyse_text(body.decode("utf-8", errors="replace"), None, ruleset, find_headline=True)
    else:
        analysis = analyse_page(body, path.resolve().as_uri(), None, ruleset)
    verdict = analysis.verdict
    result: dict[str, Any] = {
        "flagged": bool(verdict and verdict.flagged),
        "score": round(verdict.score, 4) if verdict else 0.0,
        "lang": analysis.lang.lang if analysis.lang else None,
        "title": analysis.article.title if analysis.article else None,
        "matches": [{"term": m.term, "rule": m.rule, "start": m.start, "end": m.end}
                    for m in (verdict.matches if verdict else ())],
        "narratives": list(verdict.narratives) if verdict else [],
    }
    if verdict is not None:
        result["explanation"] = verdict.explanation
        result["rules_version"] = verdict.rules_version
    if analysis.skip is not None:
        result["skipped"] = analysis.skip.reason
        result["detail"] = analysis.skip.detail
    return result


@main.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "text"]), default="jsonl", show_default=True)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def classify(config_dir: Path | None, fmt: str, files: tuple[Path, ...]) -> None:
    """Run extraction, language detection and the rules on saved HTML or .txt files."""
    from extract import RulesError, load_rules

    settings = _settings(config_dir)
    try:
        ruleset = load_rules(settings.rules_path)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in files:
        result = {"path": str(path), **classify_file(path, ruleset)}
        if fmt == "jsonl":
            click.echo(json.dumps(result, ensure_ascii=False, default=_json_default))
        else:
            mark = "FLAG" if result["flagged"] else "    "
            click.echo(f"{mark} {result['score']:.2f} {result['lang'] or '-':<3} {path}  "
                       f"{result['title'] or result.get('skipped', '')}")


# ------------------------------------------------------------------------- operations


@main.command()
@config_option
@click.option("--max-heartbeat-age", type=float, default=120.0, show_default=True, metavar="SECONDS",
              help="The scheduler's heartbeat file must be younger than this.")
@click.option("--require-scheduler", is_flag=True,
              help="Fail when no scheduler has ever run here (no heartbeat file).")
@click.option("--failed-runs", type=click.IntRange(min=1), default=3, show_default=True, metavar="N",
              help="Fail when the last N crawl runs all failed.")
def health(config_dir: Path | None, max_heartbeat_age: float, require_scheduler: bool,
           failed_runs: int) -> None:
    """Check the store, its migrations, the scheduler heartbeat and the latest runs; exit 1 if any fails."""
    from store.health import check_health

    report = check_health(_settings(config_dir), max_heartbeat_age=max_heartbeat_age,
                          require_scheduler=require_scheduler, failed_runs=failed_runs)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        click.echo("unhealthy: " + "; ".join(report.reasons), err=True)
        sys.exit(1)


@main.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@config_option
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def config_show(config_dir: Path | None, fmt: str) -> None:
    """Print the effective configuration (YAML files, then DWATCH_* env) with secrets masked."""
    from config.effective import render_config

    click.echo(render_config(_settings(config_dir), fmt), nl=False)


@main.command()
@config_option
@click.option("--enable", "enable_ids", multiple=True, metavar="ID",
              help="Re-enable a backed-off or disabled source (its earlier failures stop counting).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def sources(config_dir: Path | None, enable_ids: tuple[str, ...], fmt: str) -> None:
    """Per source: state, last success, last new article, failures in a row, yield per week."""
    from store.source_health import enable_source, source_health

    settings = _settings(config_dir)
    unknown = [sid for sid in enable_ids if settings.source(sid) is None]
    if unknown:
        raise click.ClickException(f"unknown source id(s): {', '.join(unknown)}; "
                                   f"known ids: {', '.join(s.id for s in settings.sources)}")
    with _session(settings) as session:
        for sid in enable_ids:
            enable_source(session, sid)
            click.echo(f"source {sid} re-enabled: the next run crawls it", err=True)
        rows = source_health(session, [s.id for s in settings.sources],
                             config_disabled=[s.id for s in settings.sources if not s.enabled])
    if fmt == "json":
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2, ensure_ascii=False))
        return
    _table(["source", "last success", "last new article", "failures", "per week (art/cand)", "state"],
           [[r.source_id, _fmt_time(r.last_success), _fmt_time(r.last_new_article),
             str(r.consecutive_failures), f"{r.articles_per_week:g}/{r.candidates_per_week:g}", r.describe]
            for r in rows])


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@main.command()
@config_option
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD, a UTC day (default: yesterday, as the scheduler's daily job).")
@click.option("--send/--no-send", default=True, show_default=True,
              help="E-mail the digest when SMTP is configured (settings.yaml smtp: / DWATCH_SMTP_*).")
def digest(config_dir: Path | None, day: datetime | None, send: bool) -> None:
    """Write the day's new candidates to <data_dir>/digests (Markdown, HTML, Atom) and mail them."""
    from datetime import UTC, timedelta

    from review import DigestError, write_digest

    when = day.date() if day else datetime.now(UTC).date() - timedelta(days=1)
    try:
        result = write_digest(_settings(config_dir), when, send=send)
    except DigestError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"digest {when}: {len(result.items)} candidate(s)")
    for path in (result.markdown_path, result.html_path, result.atom_path):
        click.echo(f"  {path}")
    click.echo(result.delivery)


@main.command("scheduler")
@config_option
def scheduler_command(config_dir: Path | None) -> None:
    """Run the crawl schedule until SIGTERM/SIGINT (exit 0 after a clean stop); see scheduler.py."""
    import scheduler as service

    settings = _settings(config_dir)
    service.configure_logging(settings)
    sys.exit(service.run(settings))


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the demo database and archive go (default: a fresh temporary directory).")
@click.option("--serve/--no-serve", default=False,
              help="Keep the sample site running after the crawl until Ctrl-C.")
def demo(data_dir: Path | None, serve: bool) -> None:
    """Serve the bundled sample site on 127.0.0.1, crawl it into a fresh database, print the queue."""
    from demo.run import run_demo

    outcome = run_demo(data_dir, keep_serving=serve, echo=click.echo)
    print_run_summary(outcome.summary)
    click.echo("")
    print_queue(outcome.queue)
    click.echo(outcome.check)
    if not outcome.ok:
        sys.exit(1)


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs DWATCH_AUTH_TOKEN, or "
              "DWATCH_AUTH_USER and DWATCH_AUTH_PASSWORD, in the environment.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free port; the URL printed says which).")
def serve(config_dir: Path | None, host: str, port: int) -> None:
    """Serve the review web UI: queue, candidates, decisions, exports, overview and JSON API."""
    import os
    import socket

    import uvicorn

    from review.web import AuthConfig, AuthError, create_app
    from review.web.security import is_loopback_host
    from store import upgrade_database
    from store.errors import StoreError

    try:
        auth = AuthConfig.from_env(os.environ)
    except AuthError as exc:
        raise _exit_2(str(exc)) from exc
    if auth is None and not is_loopback_host(host):
        raise _exit_2(f"refusing to listen on {host} without authentication: set DWATCH_AUTH_TOKEN "
                      "or DWATCH_AUTH_USER and DWATCH_AUTH_PASSWORD")
    settings = _settings(config_dir)
    try:
        upgrade_database(settings.database_url)
    except StoreError as exc:
        raise click.ClickException(f"store {settings.masked()['database_url']}: {exc}") from exc
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    click.echo(f"defector-watch review UI on http://{shown}:{sock.getsockname()[1]}/ "
               f"({'authentication required' if auth else 'no authentication: this machine only'}); "
               "Ctrl-C to stop")
    # proxy headers (X-Forwarded-Proto/For) are trusted from a reverse proxy on 127.0.0.1 only:
    # behind it the app sees https (Secure cookies, its own origin) and the real client address
    server = uvicorn.Server(uvicorn.Config(create_app(settings, auth=auth), log_config=None,
                                           proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                                           server_header=False))
    server.run(sockets=[sock])


class _RefusedToServe(click.ClickException):
    exit_code = 2   # a usage error, like click's own


def _exit_2(message: str) -> click.ClickException:
    return _RefusedToServe(message)


if __name__ == "__main__":
    main()
