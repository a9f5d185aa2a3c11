"""`saikika monitor` on a folder of hand-made objects of the contract's shapes (MONITORING_CONTRACT): two champion
versions, live quality runs (one degraded), three days of drift and a batch run, a failed run, a rejected
candidate, rejected inputs, compacted and loose feedback. The page and every file it links exist, and each number
of summary.json is the objects' own, computed here from the objects (not by the code under test)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from saikika.cloud.monitoring_source import FolderSource
from saikika.core import objects
from saikika.tooling.cli import main
from saikika.tooling.cli.monitor import write_page

NOW = datetime.now(UTC)
DAYS = [f"{NOW - timedelta(days=n):%Y-%m-%d}" for n in (2, 1, 0)]  # oldest first; the last is today
OLD_DAY = f"{NOW - timedelta(days=60):%Y-%m-%d}"  # outside the default 30-day window


def put(root: Path, kind: str, name: str, value) -> None:
    path = root / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")


def quality(version: str, started: datetime, micro_f1: float, offline: float, degraded: bool = False) -> dict:
    return {
        "champion_version": version,
        "computed_at": (started + timedelta(seconds=5)).isoformat(),
        "run_started": started.isoformat(),
        "rows": 40,
        "first_event_time": (started - timedelta(hours=3)).isoformat(),
        "last_event_time": (started - timedelta(minutes=5)).isoformat(),
        "trained_until": (started - timedelta(hours=4)).isoformat(),
        "micro_f1": micro_f1,
        "macro_f1": micro_f1 - 0.05,
        "exact_match": micro_f1 - 0.2,
        "per_label": {"kids": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 12}},
        "offline_micro_f1": offline,
        "degraded": degraded,
        "why": "micro F1 below the floor; worst label kids" if degraded else None,
    }


def drift(day: str, items: int, shares: dict, none: float, divergence: float, source: str = "event", run_id=None):
    return {
        "day": day,
        "source": source,
        "run_id": run_id,
        "champion_version": "v1",
        "items": items,
        "objects": 4,
        "no_label_share": none,
        "label_shares": shares,
        "baseline_shares": {"kids": 0.3},
        "divergence": divergence,
        "bound": 0.1,
        "above_bound": divergence > 0.1,
        "moved": [{"label": "kids", "share": shares.get("kids", 0), "baseline": 0.3, "change": 0.0}],
        "computed_at": NOW.isoformat(),
    }


def run_record(started: datetime, status: str, version: str | None, reason: str) -> dict:
    return {
        "status": status,
        "reason": reason,
        "version": version,
        "trigger": "retrain-requests message 1: tick",
        "started_at": started.isoformat(),
        "seconds": 12.5,
        "pending": 2,
        "training_data": {},
    }


def decision(version: str, action: str, outcome: str, reason: str) -> dict:
    return {"version": version, "action": action, "outcome": outcome, "reason": reason}


LABELS = ["kids", "outdoor", "waterproof", "vintage", "handmade", "eco", "gift", "luxury", "sale", "bulk"]


@pytest.fixture(scope="module")
def stack_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("objects")
    for version, f1 in (("v1", 0.91), ("v2", 0.94), ("v3", 0.80)):
        put(
            root,
            "models",
            objects.version_file(version, objects.METADATA_FILE),
            {"version": version, "metrics": {"micro_f1": f1}},
        )
    start = NOW - timedelta(days=2, hours=1)
    runs = [
        ("v1", start, 0.88, False),
        ("v1", start + timedelta(hours=6), 0.62, False),
        ("v1", start + timedelta(hours=12), 0.41, True),
        ("v2", start + timedelta(days=1), 0.90, False),
        ("v2", start + timedelta(days=1, hours=8), 0.92, False),
    ]
    for version, started, f1, degraded in runs:
        offline = {"v1": 0.91, "v2": 0.94}[version]
        put(root, "models", objects.live_quality(started, version), quality(version, started, f1, offline, degraded))
    old = NOW - timedelta(days=60)
    put(root, "models", objects.live_quality(old, "v0"), quality("v0", old, 0.5, 0.6))
    for index, day in enumerate(DAYS):
        shares = {label: round(0.05 + 0.03 * ((i + index) % 5), 3) for i, label in enumerate(LABELS)}
        put(
            root,
            "models",
            objects.drift_day(day),
            drift(day, 100 * (index + 1), shares, 0.05 * (index + 1), 0.04 * (index + 1)),
        )
    put(root, "models", objects.drift_day(OLD_DAY), drift(OLD_DAY, 7, {"kids": 1.0}, 0.0, 0.0))
    put(
        root,
        "models",
        objects.batch_drift("shop-catalogue-g1"),
        drift(DAYS[1], 2000, {"kids": 0.4}, 0.1, 0.02, "batch", "shop-catalogue-g1"),
    )
    put(root, "models", objects.HEALTH_OBJECT, HEALTH)
    records = [
        (start + timedelta(hours=1), "trained", "v2", "trained on 40 new rows"),
        (start + timedelta(hours=7), "failed", None, "ValueError: boom"),
        (start + timedelta(hours=13), "up-to-date", "v2", "nothing new"),
        (start + timedelta(days=1, hours=9), "trained", "v3", "trained on 12 new rows"),
    ]
    for started, status, version, reason in records:
        put(root, "models", objects.retrain_run(started), run_record(started, status, version, reason))
    entries = [
        (start - timedelta(hours=1), decision("v1", "promote-by-hand", "promoted", "first model")),
        (start + timedelta(hours=2), decision("v2", "judge", "promoted", "better micro F1")),
        (start + timedelta(days=1, hours=10), decision("v3", "judge", "rejected", "worse micro F1")),
    ]
    for when, entry in entries:
        put(root, "models", objects.decision_log_entry(when, entry["version"]), entry)
    for day, names in ((DAYS[1], ["1"]), (DAYS[2], ["2", "3"])):
        for name in names:
            put(root, "predictions", f"rejected/dt={day}/{name}.json", {"errors": []})
    put(root, "predictions", f"rejected/feedback/dt={DAYS[2]}/4.json", {"errors": []})
    manifest = {
        "shards": [
            {
                "name": f"compacted/dt={DAYS[0]}/a.jsonl",
                "generation": 1,
                "day": DAYS[0],
                "rows": 40,
                "rows_digest": "0",
                "bytes": 1,
            },
            {
                "name": f"compacted/dt={DAYS[1]}/b.jsonl",
                "generation": 2,
                "day": DAYS[1],
                "rows": 25,
                "rows_digest": "0",
                "bytes": 1,
            },
            {
                "name": f"compacted/dt={OLD_DAY}/c.jsonl",
                "generation": 3,
                "day": OLD_DAY,
                "rows": 999,
                "rows_digest": "0",
                "bytes": 1,
            },
        ],
        "retiring": [{"name": f"training/feedback/dt={DAYS[1]}/9.jsonl", "generation": 7}],
        "rows": 1064,
    }
    put(root, "data", objects.COMPACTION_MANIFEST, manifest)
    put(root, "data", f"training/feedback/dt={DAYS[1]}/9.jsonl", '{"id": "a"}\n{"id": "b"}\n')  # folded already
    put(root, "data", f"training/feedback/dt={DAYS[2]}/5.jsonl", '{"id": "c"}\n{"id": "d"}\n{"id": "e"}\n')
    put(root, "data", f"training/feedback/dt={DAYS[2]}/6.jsonl", '{"id": "f"}\n\n{"id": "g"}\n')
    return root


HEALTH = {
    "checked_at": NOW.isoformat(),
    "status": "degraded",
    "problems": ["live micro F1 0.41 below the floor 0.5 (worst label kids)"],
    "champion": {"version": "v2", "since": NOW.isoformat(), "age_s": 3600.0, "offline_micro_f1": 0.94},
    "last_run": {
        "status": "trained",
        "reason": "trained on 12 new rows",
        "started_at": NOW.isoformat(),
        "version": "v3",
    },
    "last_successful_run_at": NOW.isoformat(),
    "pending": {"count": 3, "oldest_age_s": 120.0},
    "consecutive_failed_runs": 0,
    "consecutive_rejected_candidates": 1,
    "last_live_quality": {"champion_version": "v2", "micro_f1": 0.92, "offline_micro_f1": 0.94, "rows": 40},
    "drift": {"day": DAYS[2], "divergence": 0.12, "bound": 0.1, "no_label_share": 0.15, "above_bound": True},
    "rejected_inputs_today": 3,
    "cursors": {"runs": "retrain/runs/x", "decisions": "models/history/y"},
}


@pytest.fixture(scope="module")
def written(stack_folder, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("page")
    # At the objects' own clock: the module's NOW is read at collection, and a suite running past midnight (UTC)
    # would otherwise draw the page on the next day (once in CI). The command itself: the tests below and
    # tests/integration/test_monitor_page.py.
    write_page(FolderSource(stack_folder), out, now=NOW)
    return out, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def models_objects(root: Path, prefix: str) -> list[dict]:
    """The models bucket's objects under `prefix`, in name order (a listing's)."""
    folder = root / "models"
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return [json.loads((folder / name).read_text(encoding="utf-8")) for name in names if name.startswith(prefix)]


def in_window(values: list[dict], key: str) -> list[dict]:
    """Those of the default window, the last 30 days."""
    return [value for value in values if value[key][:10] >= f"{NOW - timedelta(days=29):%Y-%m-%d}"]


def test_every_file_the_page_links_exists_and_each_figure_is_a_png(written):
    out, _summary = written
    page = (out / "index.html").read_text(encoding="utf-8")
    linked = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert {"summary.json", "live_quality.png", "label_mix.png", "daily.png", "timeline.png"} <= set(linked)
    for name in linked:
        assert (out / name).is_file(), name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "degraded" in page and "live micro F1 0.41 below the floor" in page  # the health table, at the top
    assert page.index("Health") < page.index("live_quality.png")


def test_live_quality_is_each_runs_and_offline_f1_is_each_versions_metadata(written, stack_folder):
    _out, summary = written
    runs = in_window(models_objects(stack_folder, objects.LIVE_QUALITY_PREFIX), "run_started")
    runs.sort(key=lambda q: q["run_started"])
    assert len(runs) == 5  # the 60-day-old run is outside the window
    got = summary["live_quality"]["runs"]
    assert [(r["champion_version"], r["micro_f1"], r["degraded"]) for r in got] == [
        (q["champion_version"], q["micro_f1"], q["degraded"]) for q in runs
    ]
    offline = {
        v: json.loads((stack_folder / "models" / "models" / v / "metadata.json").read_text())["metrics"]["micro_f1"]
        for v in ("v1", "v2")
    }
    versions = {entry["version"]: entry for entry in summary["live_quality"]["versions"]}
    assert {v: entry["offline_micro_f1"] for v, entry in versions.items()} == offline
    assert versions["v1"]["runs"] == 3 and versions["v2"]["runs"] == 2


def test_the_label_mix_is_each_days_occurrences_normalised(written, stack_folder):
    _out, summary = written
    days = in_window(models_objects(stack_folder, objects.DRIFT_DAY_PREFIX), "day")
    mix = summary["label_mix"]
    assert mix["days"] == DAYS
    assert mix["items"] == [d["items"] for d in days] and mix["divergence"] == [d["divergence"] for d in days]
    for index, day in enumerate(days):
        total = sum(day["label_shares"].values()) + day["no_label_share"]
        for label in mix["labels"]:
            if label in day["label_shares"]:
                assert mix["shares"][label][index] == pytest.approx(day["label_shares"][label] / total)
        assert mix["shares"]["(none)"][index] == pytest.approx(day["no_label_share"] / total)
        assert sum(mix["shares"][label][index] for label in mix["labels"]) == pytest.approx(1.0)
    assert len(mix["labels"]) == 8 + 2 and mix["labels"][-2:] == ["(other)", "(none)"]


def test_work_per_day_is_the_drift_items_the_feedback_rows_and_the_rejected_messages(written):
    _out, summary = written
    by_day = {day["day"]: day for day in summary["daily"]}
    assert list(by_day) == DAYS
    assert [by_day[d]["items_predicted"] for d in DAYS] == [100, 200, 300]
    assert [by_day[d]["items_predicted_batch"] for d in DAYS] == [0, 2000, 0]
    # Shards' rows by day; the loose objects' lines, except the one the manifest lists as folded already.
    assert [by_day[d]["feedback_rows"] for d in DAYS] == [40, 25, 3 + 2]
    assert [by_day[d]["rejected_inputs"] for d in DAYS] == [0, 1, 3]
    assert by_day[DAYS[2]]["rejected_by_source"] == {"items": 2, "feedback": 1}


def test_runs_decisions_and_the_headline(written, stack_folder):
    _out, summary = written
    records = in_window(models_objects(stack_folder, objects.RETRAIN_RUNS_PREFIX), "started_at")
    assert summary["runs"]["outcomes"] == {"trained": 2, "failed": 1, "up-to-date": 1}
    assert [r["status"] for r in summary["runs"]["runs"]] == [r["status"] for r in records]
    assert summary["decisions"]["outcomes"] == {"promoted": 2, "rejected": 1}
    assert [d["version"] for d in summary["decisions"]["decisions"]] == ["v1", "v2", "v3"]
    assert all(d["decided_at"] for d in summary["decisions"]["decisions"])  # from the entry's name
    head = summary["headline"]
    assert head["champion"] == HEALTH["champion"]["version"] and head["status"] == HEALTH["status"]
    assert head["live_micro_f1"] == 0.92 and head["live_champion_version"] == "v2"
    assert head["drift_today"]["day"] == DAYS[2] and head["drift_today"]["divergence"] == pytest.approx(0.12)
    assert summary["health"] == HEALTH


def test_an_empty_folder_still_writes_a_whole_page(tmp_path):
    (tmp_path / "objects").mkdir()
    result = CliRunner().invoke(
        main, ["monitor", "--source", str(tmp_path / "objects"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    for name in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert (tmp_path / "out" / name).is_file(), name
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["headline"]["champion"] is None and summary["daily"] == []
    assert any("no data objects" in note for note in summary["notes"])


def test_a_missing_source_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["monitor", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no such folder" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["monitor", "--source", "gs://bucket/folder", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "give the models bucket" in result.output


def test_an_object_that_is_not_json_is_left_out_and_named(tmp_path):
    put(tmp_path / "objects", "models", objects.HEALTH_OBJECT, "{not json")
    put(tmp_path / "objects", "models", objects.live_quality(NOW, "v1"), "[1, 2]")
    result = CliRunner().invoke(
        main, ["monitor", "--source", str(tmp_path / "objects"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["health"] is None and summary["live_quality"]["runs"] == []
    left_out = [note for note in summary["notes"] if note.startswith("left out")]
    assert left_out == [
        f"left out, not a JSON object: {objects.live_quality(NOW, 'v1')}",
        f"left out, not a JSON object: {objects.HEALTH_OBJECT}",
    ]


@pytest.mark.parametrize("source", objects.REJECTED_SOURCES)
def test_the_rejected_listing_prefix_is_where_rejected_objects_are_written(source):
    name = objects.rejected(NOW, "12345", source)
    assert name.startswith(objects.rejected_days(source) + f"{NOW:%Y-%m-%d}/")
    assert objects.day_of(name) == f"{NOW:%Y-%m-%d}"
