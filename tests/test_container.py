"""The container image: the Dockerfile builds with podman, and its container crawls a fixture site.

The image is built by scripts/container-build.sh (podman with runc and cgroupfs, on a local
Debian base made once with debootstrap: ../shared/notes/containers.md). A container then runs
`dwatch crawl` on the host network against the demo site (demo/site) served by this test on
127.0.0.1, with the sources mounted at /config and the /data volume on a temporary directory;
afterwards the queue in that directory must hold the candidates of demo/expected.json, each
with its raw copy in the WARC archive of the same directory. A second crawl does the same with
the store in a throwaway PostgreSQL server on 127.0.0.1 (what compose.yaml sets up; skipped
when no PostgreSQL server is installed). A third container runs the image's default command,
the scheduler, on a 5-second schedule: it fills the queue, `dwatch health` and podman's
HEALTHCHECK pass, and `podman stop` ends it cleanly with exit code 0.

It takes minutes the first time (debootstrap, pip), well under one afterwards (podman's layer
cache). It skips only when podman cannot run here at all; DWATCH_REQUIRE_CONTAINER_TEST=1 (set
by .ci/run) turns that skip into a failure, so CI never passes without running it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from config import load_settings
from demo import SITE_DIR, load_expected, serve_directory, write_config
from demo.run import check_queue, expected_queue_paths
from store import ArchiveRef, WarcArchive, make_engine, make_session_factory, queue

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[1]
PODMAN = REPO / "scripts" / "podman.sh"
BUILD = REPO / "scripts" / "container-build.sh"
SERVICE_UID = 10001          # the Dockerfile's `dwatch` user


def _unavailable(reason: str) -> None:
    message = f"podman cannot run here: {reason}"
    if os.environ.get("DWATCH_REQUIRE_CONTAINER_TEST") == "1":
        pytest.fail(message + " (DWATCH_REQUIRE_CONTAINER_TEST=1: the container test must run)")
    pytest.skip(message)


def podman(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(PODMAN), *args], capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args[:3])} ... exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """A freshly built image with a tag of its own (removed afterwards; the layers stay cached)."""
    if shutil.which("podman") is None:
        _unavailable("podman is not installed (apt-get install podman runc debootstrap)")
    probe = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=120, check=False)
    if probe.returncode != 0:
        _unavailable(f"`podman info` failed (no OCI runtime? apt-get install runc): {probe.stderr.strip()}")
    tag = f"localhost/defector-watch:test-{os.getpid()}"
    started = time.monotonic()
    build = subprocess.run(
        [str(BUILD)], env={**os.environ, "DWATCH_IMAGE": tag}, capture_output=True, text=True,
        timeout=2000, stdin=subprocess.DEVNULL, check=False,
    )
    if build.returncode != 0:
        pytest.fail(
            f"scripts/container-build.sh exited {build.returncode}\n"
            f"stdout:\n{build.stdout[-6000:]}\nstderr:\n{build.stderr[-6000:]}"
        )
    print(f"image {tag} built in {time.monotonic() - started:.0f} s")
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag, timeout=120, check=False)


def _postgres_bin() -> Path | None:
    """The directory with initdb, pg_ctl and createdb (Debian keeps them in /usr/lib/postgresql)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    for bindir in reversed(candidates):
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "createdb")):
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 with database and user `dwatch` (password auth)."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql); "
                    "the container's PostgreSQL path is not tested here")
    as_user: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="dwatch-pg-"))
    if os.geteuid() == 0:            # initdb and postgres refuse to run as root
        shutil.chown(workdir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(12)
    pwfile, pgdata, port = workdir / "pw", workdir / "data", _free_port()
    pwfile.write_text(password + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PGPASSWORD": password}, stdin=subprocess.DEVNULL)

    stop = [*as_user, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "stop"]
    try:
        pg(str(bindir / "initdb"), "-D", str(pgdata), "-U", "dwatch", f"--pwfile={pwfile}",
           "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C")
        pg(str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(workdir / "log"), "-w", "start",
           "-o", f"-h 127.0.0.1 -p {port} -k {workdir}")
        pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dwatch", "dwatch")
    except subprocess.CalledProcessError as exc:
        log = workdir / "log"
        server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        subprocess.run(stop, capture_output=True, timeout=120, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL ({exc.cmd[-1]}): {exc.stderr}\n{server_log}")
    try:
        yield f"postgresql+psycopg://dwatch:{password}@127.0.0.1:{port}/dwatch"
    finally:
        subprocess.run(stop, capture_output=True, timeout=120, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def inspect(tag: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman("image", "inspect", tag, timeout=60).stdout)
    return data[0]


def test_image_is_configured_for_the_service(image: str) -> None:
    info = inspect(image)
    config = info["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["User"] == "dwatch:dwatch"
    assert config["Entrypoint"] == ["dwatch-entrypoint"]
    assert config["Cmd"] == ["dwatch", "scheduler"]
    assert config["WorkingDir"] == "/data"
    assert set(config["Volumes"]) == {"/data"}
    assert env["DWATCH_DATA_DIR"] == "/data"
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    healthcheck = info.get("Healthcheck") or config["Healthcheck"]   # podman: top level; docker: Config
    assert healthcheck["Test"] == ["CMD", "dwatch", "health"]

    # inside: the service user, the project installed (not editable) in the venv, the
    # PostgreSQL driver, and no sources or test files left behind
    script = (
        "id -un; id -u; command -v dwatch; "
        "python -c 'import cli, psycopg; print(cli.__file__)'; "
        "test -e /src && echo /src-exists || echo no-src"
    )
    out = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script, timeout=300)
    lines = out.stdout.split()
    assert lines[:3] == ["dwatch", str(SERVICE_UID), "/opt/venv/bin/dwatch"]
    assert lines[3].startswith("/opt/venv/lib/python3.") and lines[3].endswith("/site-packages/cli.py")
    assert lines[4] == "no-src"


@dataclass
class ContainerCrawl:
    stdout: str
    fetched: list[str]              # paths the fixture server answered, in order
    config_dir: Path
    data_dir: Path


def crawl_in_container(image: str, tmp_path: Path, *env: str) -> ContainerCrawl:
    """`dwatch crawl` in a container of `image` against the demo site served on 127.0.0.1."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o777)            # the container writes as the non-root `dwatch` user
    with serve_directory(SITE_DIR) as server:
        config_dir = write_config(tmp_path / "config", server.base_url)
        assert "allow_private_addresses: true" in (config_dir / "settings.yaml").read_text()
        options = ["-e", "DWATCH_CONFIG_DIR=/config", "-e", "DWATCH_LOG_FORMAT=text"]
        for item in env:
            options += ["-e", item]
        started = time.monotonic()
        run = podman(
            "run", "--rm", "--network=host",
            "-v", f"{config_dir}:/config:ro", "-v", f"{data_dir}:/data", *options,
            image, "dwatch", "crawl", timeout=900,
        )
        print(f"container crawl took {time.monotonic() - started:.0f} s")
        fetched = [urlsplit(p).path for p in server.requests.paths("GET")]
    # the crawl covered every demo source, and reached the server through the host network
    for source_id in ("demo-news-rss", "demo-world-atom", "demo-sitemap", "demo-institute"):
        assert source_id in run.stdout
    assert {"/feeds/news.rss", "/feeds/world.atom", "/sitemap_index.xml", "/reports/"} <= set(fetched)
    return ContainerCrawl(run.stdout, fetched, config_dir, data_dir)


def assert_demo_queue(database_url: str, archive_dir: Path) -> None:
    """The queue holds exactly the demo's expected candidates, each with its raw copy archived."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = queue.list_candidates(session, limit=1000)
            details = [queue.get_candidate(session, row.id) for row in rows]
    finally:
        engine.dispose()
    ok, line = check_queue(rows)
    assert ok, line
    assert len(rows) == len(expected_queue_paths())
    expected = load_expected()
    archive = WarcArchive(archive_dir)
    for detail in details:
        assert detail is not None
        path = urlsplit(detail.url).path
        page = expected[path]
        assert (detail.status, detail.lang, detail.title) == ("new", page.lang, page.title)
        assert detail.source_id in page.sources
        stored = archive.read(ArchiveRef(**detail.provenance["archive"]))
        assert stored.status == 200
        assert stored.url == detail.provenance["final_url"]
        assert stored.body == (SITE_DIR / path.lstrip("/")).read_bytes()


def test_container_crawls_the_demo_site_into_the_data_volume(image: str, tmp_path: Path) -> None:
    crawl = crawl_in_container(image, tmp_path)
    # the entrypoint migrated the SQLite store in /data, then ran the crawl
    assert "database at sqlite:////data/dwatch.sqlite3 is up to date" in crawl.stdout

    # files in the volume were written by the service user, not root
    store_file = crawl.data_dir / "dwatch.sqlite3"
    assert store_file.stat().st_uid == SERVICE_UID
    warcs = sorted((crawl.data_dir / "archive").glob("*.warc.gz"))
    assert warcs and all(w.stat().st_uid == SERVICE_UID for w in warcs)

    # read from the host, the store in the volume holds the demo's queue
    settings = load_settings(crawl.config_dir, env={"DWATCH_DATA_DIR": str(crawl.data_dir)})
    assert settings.database_url == f"sqlite:///{store_file}"
    assert_demo_queue(settings.database_url, settings.archive_dir)


def test_container_crawls_into_postgresql(image: str, postgres_url: str, tmp_path: Path) -> None:
    """What compose.yaml sets up: the store in PostgreSQL (psycopg), the archive in /data."""
    crawl = crawl_in_container(image, tmp_path, f"DWATCH_DATABASE_URL={postgres_url}")
    masked = re.sub(r"(://dwatch:)[^@]+@", r"\1***@", postgres_url)
    assert f"database at {masked} is up to date" in crawl.stdout
    assert not (crawl.data_dir / "dwatch.sqlite3").exists()
    assert_demo_queue(postgres_url, crawl.data_dir / "archive")


def _queue_check(database_url: str) -> tuple[bool, str]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return check_queue(queue.list_candidates(session, limit=1000))
    finally:
        engine.dispose()


def test_container_runs_the_scheduler_by_default(image: str, tmp_path: Path) -> None:
    """No command: migrations, then `dwatch scheduler`; it crawls on schedule, its HEALTHCHECK
    passes, its logs are JSON lines, and `podman stop` (SIGTERM) ends it with exit code 0."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o777)
    name = f"dwatch-test-{os.getpid()}"
    with serve_directory(SITE_DIR) as server:
        config_dir = write_config(tmp_path / "config", server.base_url)
        with (config_dir / "settings.yaml").open("a", encoding="utf-8") as settings_file:
            settings_file.write(
                "schedule:\n  default: {every_seconds: 5}\n  digest_at: null\n"
                "  heartbeat_seconds: 1\n  crawl_grace_seconds: 60\n"
            )
        settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(data_dir)})
        podman("run", "-d", "--name", name, "--network=host", "-v", f"{config_dir}:/config:ro",
               "-v", f"{data_dir}:/data", "-e", "DWATCH_CONFIG_DIR=/config", image, timeout=120)
        try:
            deadline, line = time.monotonic() + 300, "no crawl yet"
            while time.monotonic() < deadline:
                state = podman("inspect", name, "--format", "{{.State.Status}}", timeout=60).stdout.strip()
                if state != "running":
                    logs = podman("logs", name, timeout=60, check=False)
                    pytest.fail(f"the container stopped ({state}):\n"
                                f"{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
                if all((data_dir / name).exists() for name in ("dwatch.sqlite3", "scheduler-heartbeat.json")):
                    ok, line = _queue_check(settings.database_url)
                    if ok:
                        break
                time.sleep(2)
            else:
                pytest.fail(f"the scheduler did not fill the queue within 300 s: {line}")

            health = podman("exec", name, "dwatch", "health", timeout=120, check=False)
            assert health.returncode == 0, health.stdout + health.stderr
            healthcheck = podman("healthcheck", "run", name, timeout=120, check=False)
            assert healthcheck.returncode == 0, healthcheck.stdout + healthcheck.stderr

            podman("stop", "-t", "120", name, timeout=300)
            exit_code = podman("inspect", name, "--format", "{{.State.ExitCode}}", timeout=60).stdout
            assert exit_code.strip() == "0"
            logs = podman("logs", name, timeout=60)
        finally:
            podman("rm", "--force", name, timeout=120, check=False)

    heartbeat = json.loads((data_dir / "scheduler-heartbeat.json").read_text(encoding="utf-8"))
    assert heartbeat["state"] == "stopped"
    # the crawl child's report on stdout; the service's log on stderr, one JSON object a line
    assert "run 1: ok" in logs.stdout
    events = [json.loads(line) for line in logs.stderr.splitlines() if line.strip()]
    assert [e for e in events if not {"ts", "level", "logger", "msg"} <= set(e)] == []
    messages = [e["msg"] for e in events if e["logger"] == "scheduler"]
    # the entrypoint exec'd the scheduler: it is PID 1 and gets podman's SIGTERM itself
    assert "scheduler running (pid 1); heartbeat in /data/scheduler-heartbeat.json" in messages
    # it stopped cleanly: no crawl started after SIGTERM (one running then may finish first)
    assert messages[-1] == "scheduler stopped"
    after_sigterm = messages[messages.index("SIGTERM received: stopping") + 1:]
    assert not [m for m in after_sigterm if " started " in m], after_sigterm
