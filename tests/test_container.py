"""The container image: the Dockerfile builds with podman, and its container crawls a fixture site.

The image is built by scripts/container-build.sh (podman with runc and cgroupfs, on a local
Debian base made once with debootstrap: ../shared/notes/containers.md). A container then runs
`dwatch crawl` on the host network against the demo site (demo/site) served by this test on
127.0.0.1, with the sources mounted at /config and the /data volume on a temporary directory;
afterwards the queue in that directory must hold the candidates of demo/expected.json, each
with its raw copy in the WARC archive of the same directory.

It takes minutes the first time (debootstrap, pip), well under one afterwards (podman's layer
cache). It skips only when podman cannot run here at all; DWATCH_REQUIRE_CONTAINER_TEST=1 (set
by .ci/run) turns that skip into a failure, so CI never passes without running it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
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


def test_container_crawls_the_demo_site_into_the_data_volume(image: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o777)            # the container writes as the non-root `dwatch` user
    with serve_directory(SITE_DIR) as server:
        config_dir = write_config(tmp_path / "config", server.base_url)
        assert "allow_private_addresses: true" in (config_dir / "settings.yaml").read_text()
        started = time.monotonic()
        run = podman(
            "run", "--rm", "--network=host",
            "-v", f"{config_dir}:/config:ro", "-v", f"{data_dir}:/data",
            "-e", "DWATCH_CONFIG_DIR=/config", "-e", "DWATCH_LOG_FORMAT=text",
            image, "dwatch", "crawl", timeout=900,
        )
        print(f"container crawl took {time.monotonic() - started:.0f} s")
        fetched = server.requests.paths("GET")

    # the entrypoint migrated the store in /data, then ran the crawl
    assert "database at sqlite:////data/dwatch.sqlite3 is up to date" in run.stdout
    for source_id in ("demo-news-rss", "demo-world-atom", "demo-sitemap", "demo-institute"):
        assert source_id in run.stdout
    # the container reached the test's server on 127.0.0.1 through the host network
    assert {"/feeds/news.rss", "/feeds/world.atom", "/sitemap_index.xml", "/reports/"} <= {
        urlsplit(p).path for p in fetched
    }

    # files in the volume were written by the service user, not root
    store_file = data_dir / "dwatch.sqlite3"
    assert store_file.stat().st_uid == SERVICE_UID
    warcs = sorted((data_dir / "archive").glob("*.warc.gz"))
    assert warcs and all(w.stat().st_uid == SERVICE_UID for w in warcs)

    # the queue, read from the host, holds exactly the demo's expected candidates
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(data_dir)})
    assert settings.database_url == f"sqlite:///{store_file}"
    engine = make_engine(settings.database_url)
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
    archive = WarcArchive(settings.archive_dir)
    for detail in details:
        assert detail is not None
        page = expected[urlsplit(detail.url).path]
        assert (detail.status, detail.lang, detail.title) == ("new", page.lang, page.title)
        assert detail.source_id in page.sources
        stored = archive.read(ArchiveRef(**detail.provenance["archive"]))
        assert stored.status == 200
        assert stored.url == detail.provenance["final_url"]
        assert stored.body == (SITE_DIR / urlsplit(detail.url).path.lstrip("/")).read_bytes()
