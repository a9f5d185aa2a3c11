"""`make demo`, the README's main job, run as a person runs it (`saikika demo`, a real process on a fresh stack):
it ends with exit 0, its story names both versions and the decision, and the report it copies holds every file
its page links; it ends with the monitoring page, whose headline it prints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import REPO

pytestmark = pytest.mark.emulators

LINK = re.compile(r"""(?:src|href)="([^"#:]+)\"""")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("demo") / ".saikika"
    saikika = Path(sys.executable).with_name("saikika")
    done = subprocess.run(
        [str(saikika), "demo", "--state-dir", str(state)], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    return state, done


def test_the_demo_tells_the_whole_loop(demo_run):
    _, done = demo_run
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    story = done.stdout + done.stderr
    assert "Traceback" not in story
    # The story, then the loop's health table as `saikika status` prints it.
    for told in ("v2 = ", "decision: ", "v2 report: ", "monitoring/health.json", "failed runs in a row"):
        assert told in story, story[-4000:]


def test_the_demo_report_holds_every_file_its_page_links(demo_run):
    state, done = demo_run
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    page = state / "demo" / "v2-report" / "index.html"
    links = LINK.findall(page.read_text(encoding="utf-8"))
    assert links, "the report links its figures"
    missing = [link for link in links if not (page.parent / link).is_file()]
    assert not missing, f"{page} links files that were not copied: {missing}"


def test_the_demo_ends_with_the_monitoring_page(demo_run):
    state, done = demo_run
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    page = state / "demo" / "monitor" / "index.html"
    missing = [link for link in LINK.findall(page.read_text(encoding="utf-8")) if not (page.parent / link).is_file()]
    assert not missing, f"{page} links files that are not there: {missing}"
    summary = json.loads((page.parent / "summary.json").read_text(encoding="utf-8"))
    # The headline printed is the page's: the champion is the version the story promoted last.
    assert f"champion: {summary['headline']['champion']}" in done.stdout + done.stderr
    assert summary["runs"]["outcomes"].get("trained", 0) >= 1
    assert any(d["outcome"] == "promoted" for d in summary["decisions"]["decisions"])
    # The day's label mix counts what the demo predicted today (the drift step ran after the last predictions).
    today = {day["day"]: day for day in summary["daily"]}[summary["generated_at"][:10]]
    assert today["items_predicted"] > 0, summary["daily"]
