"""MLServer serving a fitted scikit-learn pipeline through its scikit-learn runtime, for `make bench`: the same
model as scikit-learn's own pipeline (what a team without saikika would serve), and saikika's own pipeline.

MLServer's sklearn runtime takes a model file and calls one method on the decoded input. Raw item JSON is
not something it decodes, so the thinnest adapter is on the client side: each item becomes the same text
saikika's model reads (title, description, tags joined), sent as a V2 BYTES tensor with content type `str`,
and `predict_fn` is set to `predict_proba`. The pipeline is saved with joblib, the format the runtime loads.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from saikika.tooling.ports import free_ports


def _body(items) -> bytes:
    texts = [item.text() for item in items]
    return json.dumps(
        {
            "parameters": {"content_type": "str"},
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}],
        },
        ensure_ascii=False,
    ).encode()


def mlserver_figures(pipeline, items, repeats: int, http_figures, log) -> dict:
    """`pipeline`: a fitted scikit-learn Pipeline with `predict_proba` over texts."""
    mlserver = shutil.which("mlserver", path=str(Path(sys.executable).parent)) or shutil.which("mlserver")
    if mlserver is None:
        log("MLServer is not installed (pip install 'saikika[bench]'); peer figures skipped")
        return {"skipped": "mlserver not installed"}
    import joblib

    folder = Path(tempfile.mkdtemp(prefix="saikika-mlserver-"))
    joblib.dump(pipeline, folder / "model.joblib")
    http_port, grpc_port, metrics_port = free_ports(3)
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "saikika",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "extra": {"predict_fn": "predict_proba"}},
            }
        )
    )
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": metrics_port,
                "host": "127.0.0.1",
            }
        )
    )
    log_file = (folder / "mlserver.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen(
        [mlserver, "start", str(folder)],
        cwd=folder,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{http_port}/v2/models/saikika/infer"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MLServer did not start; see {folder / 'mlserver.log'}")
            try:
                request = urllib.request.Request(
                    url, data=_body(items[:1]), headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        ready_s = time.perf_counter() - began
        scores = answer["outputs"][0]["data"]
        expected = pipeline.predict_proba([items[0].text()])[0]
        assert max(abs(a - b) for a, b in zip(scores, expected)) < 1e-6, "MLServer answered different scores"
        figures = http_figures(url, items, _body, repeats)
        figures.pop("interleaved", None)
        return {
            "http": figures,
            "cold_start_to_first_prediction_s": ready_s,
            "adapter": "client joins title/description/tags into one text; V2 BYTES tensor, content_type str",
            "version": subprocess.run([mlserver, "--version"], capture_output=True, text=True).stdout.strip(),
        }
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log_file.close()
