"""The naive baseline, written as most tutorials do: scikit-learn and skops imported at module scope,
the model file downloaded and loaded at import time, predict_proba per request. Benchmark only."""

import os

import functions_framework
import sklearn  # noqa: F401  (what tutorials import first)
import skops.io as sio
from google.cloud import storage

_blob = storage.Client().bucket(os.environ["NAIVE_MODEL_BUCKET"]).blob(os.environ["NAIVE_MODEL_OBJECT"])
_data = _blob.download_as_bytes()
PIPELINE = sio.loads(_data, trusted=sio.get_untrusted_types(data=_data))


@functions_framework.http
def predict(request):
    instances = request.get_json()["instances"]
    texts = ["\n".join((i.get("title", ""), i.get("description", ""), " ".join(i.get("tags", [])))) for i in instances]
    return {"predictions": PIPELINE.predict_proba(texts).tolist()}
