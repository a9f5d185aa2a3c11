"""The online API's costs, written to bench/api.json (`make bench` runs it):

- request-response logging: p50 and p99 single-item latency at concurrency 8 through the real functions-framework
  server, with SAIKIKA_HTTP_LOG_SAMPLING=1 against 0 (two local stacks up together, measured in alternating rounds so
  that drift on a shared machine falls on both alike); the target is a p50 ratio of at most 1.1;
- `parameters.explain: 5` on single items against plain prediction, in process, with the handler's own `answer`
  (alternating blocks of calls).

Absolute times drift from run to run on a shared machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))
sys.path.insert(0, str(REPO))

from bench.run import loadgen  # noqa: E402
from saikika.cloud import registry  # noqa: E402
from saikika.handlers.predict_http import answer  # noqa: E402
from saikika.model import artifact, catalogue, training  # noqa: E402
from saikika.tooling.local_stack import FUNCTIONS, LocalStack  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start(state: Path, files, sampling: str) -> LocalStack:
    spec = next(s for s in FUNCTIONS if s.name == "predict_http")
    stack = LocalStack(
        state_dir=state,
        functions_dir=REPO / "functions",
        functions=(spec,),
        extra_env={"SAIKIKA_HTTP_LOG_SAMPLING": sampling},
    ).start()
    models = stack.storage_client().bucket(stack.env["SAIKIKA_MODELS_BUCKET"])
    registry.push(models, *files)
    registry.set_champion(models, files.metadata, None, reason="bench")
    return stack


def logging_figures(files, rounds: int, requests: int) -> dict:
    body = json.dumps({"instances": [{"id": "b1", "title": "waterproof hiking boots, vintage leather"}]}).encode()
    latencies: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as folder:
        stacks = {"off": start(Path(folder) / "off", files, "0"), "on": start(Path(folder) / "on", files, "1")}
        try:
            for _ in range(rounds):
                for name, stack in stacks.items():
                    run = loadgen(stack.env["SAIKIKA_PREDICT_URL"], body, 8, requests)
                    assert not run["failures"], run["failures"][:5]
                    latencies[name] += run["latencies_s"]
            logged = sum(
                blob.download_as_text().count("\n")
                for blob in stacks["on"]
                .storage_client()
                .bucket(stacks["on"].env["SAIKIKA_PREDICTIONS_BUCKET"])
                .list_blobs(prefix="predictions/")
            )
        finally:
            for stack in stacks.values():
                stack.stop()
    figures = {
        name: {
            "p50_ms": percentile(values, 0.5) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "requests": len(values),
        }
        for name, values in latencies.items()
    }
    return {
        "concurrency": 8,
        "logging_on": figures["on"],
        "logging_off": figures["off"],
        "p50_ratio_on_vs_off": figures["on"]["p50_ms"] / figures["off"]["p50_ms"],
        "p99_ratio_on_vs_off": figures["on"]["p99_ms"] / figures["off"]["p99_ms"],
        "target_p50_ratio": 1.1,
        "lines_logged_before_stop": logged,
        "load_average_1m": os.getloadavg()[0],
    }


def explain_figures(files, blocks: int, per_block: int) -> dict:
    model = artifact.load_inference(files.inference, files.metadata)
    items = [item for item in catalogue.generate(200, seed=3)]
    times: dict[int, list[float]] = {0: [], 5: []}
    for block in range(blocks):
        for k in (0, 5) if block % 2 == 0 else (5, 0):
            for item in items[:per_block]:
                began = time.perf_counter()
                answer(model, [item], k)
                times[k].append(time.perf_counter() - began)
    plain, explained = statistics.median(times[0]), statistics.median(times[5])
    return {
        "plain_median_ms": plain * 1000,
        "explain_5_median_ms": explained * 1000,
        "ratio_explain_5_vs_plain": explained / plain,
        "calls_each": len(times[0]),
        # On a shared 2-core machine the ratio depends on the load (3.3 measured at a low load, 28 at 15).
        "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "api.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="requests per round and stack")
    args = parser.parse_args()
    files = training.serialize(training.train(list(catalogue.generate(1500, seed=11))))
    result = {
        "model": "catalogue 1500 rows (saikika catalogue), single marketplace items",
        "explain": explain_figures(files, blocks=6, per_block=100),
        "request_log": logging_figures(files, args.rounds, args.requests),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
