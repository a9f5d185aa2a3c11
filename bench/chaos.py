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

from saikika.model import catalogue, training  # noqa: E402
from tests.integration import chaos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "chaos.json")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
