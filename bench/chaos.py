"""`make chaos`: the fault-injection suite at full size on the local stack (tests/integration/chaos.py runs the
same scenarios small inside `make test`). Writes bench/chaos.json: per fault, items published, predicted exactly
once, rejected with a reason, lost (must be 0), duplicated (must be 0), predicted without a publish, seconds from
the end of the fault until every item was accounted for."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests package, for the chaos scenarios
sys.path.insert(0, str(REPO / "bench"))

from figures import add_markdown_only, fmt, table, write_markdown  # noqa: E402

from saikika.model import catalogue, training  # noqa: E402
from tests.integration import chaos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "chaos.json")
    add_markdown_only(parser)
    args = parser.parse_args()
    if args.markdown_only:
        print(write_markdown(args.out, markdown))
        return
    files = training.serialize(training.train(list(catalogue.generate(1500, seed=11))))
    # The production ack deadline of the items subscription is longer; 60 s is the local stack's default.
    stack = chaos.ChaosStack(Path(tempfile.mkdtemp(prefix="saikika-chaos-")), files, ack_deadline_s=60)
    results = []
    try:
        for run in (
            lambda: chaos.storage_outage(stack, messages=60, outage_s=30),
            lambda: chaos.storage_stall(stack, messages=20, stall_s=70),
            lambda: chaos.predict_killed(stack, messages=100),
            lambda: chaos.burst(stack, items=10_000),
            lambda: chaos.feedback_backlog(stack, messages=100),
        ):
            tally = run()
            print(json.dumps(tally.to_json()), flush=True)
            results.append(tally.to_json())
        candidates = [training.serialize(training.train(list(catalogue.generate(900, seed=80 + i)))) for i in range(4)]
        results.append(chaos.concurrent_promotions(stack, candidates))
        print(json.dumps(results[-1]), flush=True)
        results.append(chaos.concurrent_retrains(stack, runners=4))
        print(json.dumps(results[-1]), flush=True)
    finally:
        stack.stop()
    args.out.write_text(
        json.dumps({"created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "faults": results}, indent=2)
        + "\n"
    )
    write_markdown(args.out, markdown)
    bad = [
        r
        for r in results
        if r.get("lost")
        or r.get("duplicated")
        or r.get("unexpected")
        or r.get("champions_without_a_recorded_decision")
        or r.get("trained", 1) != 1
    ]
    sys.exit(1 if bad else 0)


ITEM_COLUMNS = ("published", "predicted_once", "rejected", "lost", "duplicated", "unexpected", "seconds_to_recover")


def markdown(r: dict) -> list[str]:
    items = [f for f in r["faults"] if "published" in f]
    promotions = [f for f in r["faults"] if "candidates" in f]
    retrains = [f for f in r["faults"] if "runners" in f]
    return [
        f"# saikika under faults ({r['created_at']})",
        "",
        "Written by `make chaos` (`bench/chaos.py`) from `bench/chaos.json`; `python bench/chaos.py --markdown-only`",
        "rewrites it from that file. What each fault is: `docs/testing.md`. Lost, duplicated and unexpected (predicted",
        "without a publish) must be 0.",
        "",
        *table(("fault", *ITEM_COLUMNS), ((f["fault"], *(fmt(f[c]) for c in ITEM_COLUMNS)) for f in items)),
        "",
        *table(
            ("fault", "candidates", "champions without a recorded decision"),
            (
                (f["fault"], fmt(f["candidates"]), fmt(len(f["champions_without_a_recorded_decision"])))
                for f in promotions
            ),
        ),
        "",
        *table(
            ("fault", "runners", "trained", "deferred or up to date"),
            ((f["fault"], fmt(f["runners"]), fmt(f["trained"]), fmt(f["deferred_or_up_to_date"])) for f in retrains),
        ),
    ]


if __name__ == "__main__":
    main()
