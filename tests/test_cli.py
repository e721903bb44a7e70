"""The `dwatch` command end to end: `dwatch demo` in a subprocess, then the researcher's commands
(queue, show, review, export, classify) on the database it filled."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from cli import main
from demo import DEMO_DIR
from demo.run import expected_queue_paths

REPO = Path(__file__).resolve().parents[1]
EXPECTED: dict[str, dict[str, Any]] = json.loads((DEMO_DIR / "expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One offline `dwatch demo` in its own process (Twisted's reactor runs once per process)."""
    base = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--data-dir", str(base)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    run_dirs = sorted(base.glob("demo-*"))
    return {"proc": proc, "run_dir": run_dirs[-1] if run_dirs else None}


def dwatch(run_dir: Path, *args: str) -> Any:
    runner = CliRunner()
    result = runner.invoke(
        main, list(args), env={"DWATCH_DATA_DIR": str(run_dir), "DWATCH_CONFIG_DIR": str(run_dir / "config"),
                               "DWATCH_DATABASE_URL": None},
        catch_exceptions=False,
    )
    return result


def test_demo_crawls_offline_and_queues_exactly_the_expected_stories(demo_run: dict[str, Any]) -> None:
    proc = demo_run["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    want = expected_queue_paths()
    assert f"demo check: {len(want)}/{len(want)} expected candidates queued" in out
    assert "missing" not in out and "unexpected" not in out
    # the per-source summary table and the queue are printed
    for source in ("demo-news-rss", "demo-world-atom", "demo-sitemap", "demo-institute"):
        assert source in out
    assert f"{len(want)} candidate(s)" in out


def test_queue_lists_candidates_with_filters(demo_run: dict[str, Any]) -> None:
    run_dir = demo_run["run_dir"]
    result = dwatch(run_dir, "queue")
    assert result.exit_code == 0, result.output
    want = expected_queue_paths()
    assert result.output.rstrip().endswith(f"{len(want)} candidate(s)")
    queued = [line.split()[-1] for line in result.output.splitlines()[2:-1]]
    assert len(queued) == len(want)
    for url in queued:
        assert EXPECTED[urlsplit(url).path]["flagged"], url
    header = result.output.splitlines()[0].split()
    assert header == ["id", "score", "lang", "title", "source", "published", "url"]

    langs = {EXPECTED[p]["lang"] for p in want}
    assert "ar" in langs
    arabic = dwatch(run_dir, "queue", "--lang", "ar")
    ar_paths = {p for p in want if EXPECTED[p]["lang"] == "ar"}
    assert f"{len(ar_paths)} candidate(s)" in arabic.output
    for path in ar_paths:
        assert path in arabic.output
    assert dwatch(run_dir, "queue", "--status", "accepted").stdout.strip().endswith("0 candidate(s)")
    assert "0 candidate(s)" in dwatch(run_dir, "queue", "--since", "2099-01-01").output


def _first_id(run_dir: Path) -> int:
    lines = dwatch(run_dir, "queue").output.splitlines()
    return int(lines[2].split()[0])


def test_show_explains_the_verdict_and_gives_provenance(demo_run: dict[str, Any]) -> None:
    run_dir = demo_run["run_dir"]
    cid = _first_id(run_dir)
    out = dwatch(run_dir, "show", str(cid)).output
    assert out.startswith(f"#{cid}  ")
    assert "matched terms:" in out and "[" in out  # each match shown in context: ...left[term]right...
    for field in ("source_id", "channel", "requested_url", "final_url", "http_status", "fetched_at",
                  "body_sha256", "archive", "extractor", "rules_version"):
        assert f"  {field}" in out
    missing = dwatch(run_dir, "show", "99999")
    assert missing.exit_code == 1 and "no candidate 99999" in missing.output


def test_review_keeps_the_history_and_export_carries_provenance(demo_run: dict[str, Any]) -> None:
    run_dir = demo_run["run_dir"]
    cid = _first_id(run_dir)
    first = dwatch(run_dir, "review", str(cid), "reject", "--note", "captive, not member", "--by", "ana")
    assert first.exit_code == 0 and f"candidate {cid}: reject by ana" in first.output
    dwatch(run_dir, "review", str(cid), "accept", "--note", "second reading: defector", "--by", "ben")
    shown = dwatch(run_dir, "show", str(cid)).output
    assert "status accepted" in shown
    history = shown[shown.index("decisions:"):]
    assert history.index("reject") < history.index("accept")
    assert "by ana" in history and "by ben" in history and "captive, not member" in history
    bad = dwatch(run_dir, "review", "99999", "accept")
    assert bad.exit_code == 1 and "99999" in bad.output

    accepted = dwatch(run_dir, "export", "--format", "jsonl", "--status", "accepted")
    rows = [json.loads(line) for line in accepted.stdout.splitlines() if line.strip()]
    assert [r["status"] for r in rows] == ["accepted"]
    assert rows[0]["body_sha256"] and rows[0]["final_url"] and rows[0]["rules_version"]
    everything = dwatch(run_dir, "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(everything.stdout)))
    assert len(table) == len(expected_queue_paths())
    assert {"source_id", "channel", "discovered_from", "http_status", "fetched_at", "archive_path"} <= set(
        table[0]
    )


def test_classify_prints_one_json_object_per_file(demo_run: dict[str, Any], tmp_path: Path) -> None:
    flagged = next(p for p, f in EXPECTED.items() if f["flagged"] and f["lang"] == "en")
    not_flagged = next(p for p, f in EXPECTED.items() if not f["flagged"])
    text_file = tmp_path / "note.txt"
    text_file.write_text("A short note about the weather in Lyon.", encoding="utf-8")
    files = [str(DEMO_DIR / "site" / flagged.lstrip("/")), str(DEMO_DIR / "site" / not_flagged.lstrip("/")),
             str(text_file), str(tmp_path / "missing.html")]
    result = CliRunner().invoke(main, ["classify", *files])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["path"] for r in records] == files
    assert records[0]["flagged"] is True and records[0]["lang"] == "en" and records[0]["matches"]
    assert {"term", "rule", "start", "end"} == set(records[0]["matches"][0])
    assert 0.0 <= records[0]["score"] <= 1.0
    assert records[1]["flagged"] is False
    assert records[2]["flagged"] is False
    assert "cannot read" in records[3]["error"]


def test_classify_reads_the_headline_of_a_text_file(tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text(
        "«I left the Islamic State after a year»: a former fighter tells his story\n\n"
        "Karim joined the group in 2014. “I saw them whip an old man for smoking. I decided to leave,” "
        "he told us. In 2015 he paid a smuggler and crossed into Turkey.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["classify", str(story)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["title"] == "«I left the Islamic State after a year»: a former fighter tells his story"
    assert record["flagged"] is True and record["lang"] == "en"
    assert "left_is +2.62" in record["explanation"]   # 1.75 points x 1.5: the evidence is in the title


def test_config_error_is_reported_before_anything_is_crawled(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - id: x\n    name: X\n    kind: rss\n    urls: ['https://example.org/f']\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["crawl", "--config", str(tmp_path)],
                                env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 1
    assert f"{tmp_path / 'sources.yaml'}:4: source 'x', field 'kind'" in result.output
    assert not (tmp_path / "data").exists()


def test_the_cli_offers_every_status_and_decision_the_store_knows() -> None:
    """cli.py spells these out (to keep start-up light); they must not drift from the store."""
    import cli
    from store.models import CANDIDATE_STATUSES
    from store.queue import DECISIONS

    assert cli.STATUSES == CANDIDATE_STATUSES
    assert tuple(DECISIONS) == cli.DECISIONS
