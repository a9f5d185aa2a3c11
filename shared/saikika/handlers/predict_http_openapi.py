"""predict_http's contract as an OpenAPI 3.1 document, built from the constants the code enforces (the item
limits of `saikika.core.items`, the request limits of `saikika.handlers.predict_http`, the explanation bound of
`saikika.model.explain`), so the document and the code cannot disagree. Served at `GET /openapi.json`; rendered
to docs/openapi.json (a test holds the two equal). A Python module, so the function's zip carries it.
"""

from __future__ import annotations

from typing import Any

from saikika.core import items
from saikika.model.explain import EXPLAIN_MAX_K

OPENAPI_PATH = "/openapi.json"
# Every error code the function answers with, and its status.
ERROR_CODES = {
    "invalid_json": 400,
    "invalid_request": 400,
    "invalid_items": 400,
    "invalid_parameters": 400,
    "unreadable_body": 400,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "too_much_text": 413,
    "not_explainable": 422,
    "internal": 500,
    "no_model": 503,
}
_NON_BLANK = {"type": "string", "pattern": items.NON_BLANK_PATTERN}


def _text(limit: int) -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": limit}


# The components' schemas (a constant: built once, from the same constants the code checks with).
_SCHEMAS: dict[str, Any] = {
    "Item": {
        "type": "object",
        "description": "An item to label. Unknown fields are ignored. At least one of title, description and "
        "tags must hold a non-blank text.",
        "required": ["id"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": items.ID_MAX_CHARS},
            "title": _text(items.TITLE_MAX_CHARS),
            "description": _text(items.DESCRIPTION_MAX_CHARS),
            "tags": {
                "type": ["array", "null"],
                "maxItems": items.TAGS_MAX_COUNT,
                "items": {"type": "string", "maxLength": items.TAG_MAX_CHARS},
            },
        },
        "anyOf": [
            {"required": ["title"], "properties": {"title": _NON_BLANK}},
            {"required": ["description"], "properties": {"description": _NON_BLANK}},
            {"required": ["tags"], "properties": {"tags": {"type": "array", "contains": _NON_BLANK}}},
        ],
    },
    "PredictRequest": {
        "type": "object",
        "required": ["instances"],
        "properties": {
            "instances": {
                "type": "array",
                "minItems": 1,
                "maxItems": items.BATCH_MAX_ITEMS,
                "items": {"$ref": "#/components/schemas/Item"},
            },
            "parameters": {
                "type": ["object", "null"],
                "properties": {
                    "explain": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": EXPLAIN_MAX_K,
                        "description": "For each predicted label, the K substrings that added most to its "
                        "score (0: no explanation).",
                    }
                },
            },
        },
    },
    "Term": {
        "type": "object",
        "required": ["text", "contribution", "occurrences"],
        "properties": {
            "text": {"type": "string", "description": "A substring of the normalised text, or a title word."},
            "contribution": {"type": "number", "description": "What it adds to the label's decision (logit)."},
            "occurrences": {"type": "integer", "minimum": 1},
            "collisions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Explanation": {
        "type": "object",
        "description": "sigmoid(intercept + Σ ngrams.contribution + ngrams_rest + Σ words.contribution) = score.",
        "required": ["label", "score", "intercept", "ngrams", "ngrams_rest"],
        "properties": {
            "label": {"type": "string"},
            "score": {"type": "number"},
            "intercept": {"type": "number"},
            "ngrams": {"type": "array", "items": {"$ref": "#/components/schemas/Term"}},
            "ngrams_rest": {"type": "number"},
            "words": {"type": "array", "items": {"$ref": "#/components/schemas/Term"}},
        },
    },
    "Prediction": {
        "type": "object",
        "required": ["id", "labels", "scores"],
        "properties": {
            "id": {"type": "string"},
            "labels": {"type": "array", "items": {"type": "string"}, "description": "Best first."},
            "scores": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
            "explanations": {"type": "array", "items": {"$ref": "#/components/schemas/Explanation"}},
        },
    },
    "PredictResponse": {
        "type": "object",
        "required": ["predictions", "model_version", "deployedModelId", "model", "modelVersionId"],
        "properties": {
            "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
            "model_version": {"type": "string"},
            "modelVersionId": {"type": "string", "description": "The champion version that answered."},
            "deployedModelId": {"type": "string", "description": "The deployment (function revision)."},
            "model": {"type": "string", "description": "Where the version's files are."},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "ready", "model_version"],
        "properties": {
            "status": {"const": "ok"},
            "ready": {"type": "boolean"},
            "model_version": {"type": ["string", "null"]},
            "reason": {"type": "string"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "additionalProperties": False,
                "properties": {
                    "code": {"enum": sorted(ERROR_CODES)},
                    "message": {"type": "string", "minLength": 1},
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["index", "id", "error"],
                            "properties": {
                                "index": {"type": ["integer", "null"]},
                                "id": {"type": ["string", "null"]},
                                "error": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): _json(
            "Error", ", ".join(code for code, s in sorted(ERROR_CODES.items()) if s == status) + " (error.code)"
        )
        for status in statuses
    }


def document(max_body_bytes: int, max_text_chars: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document of predict_http with these request limits."""
    predict = {
        "operationId": "predict",
        "summary": "Predict the labels of 1 to 1000 items (Vertex AI's request and response shape).",
        "description": f"All or nothing: any invalid instance makes the request a 400 naming each. The body is at "
        f"most {max_body_bytes} bytes and the instances' title, description and tags at most {max_text_chars} "
        f"characters in all (413 beyond). Any path answers, so Vertex AI's client works against "
        f"`/v1/projects/P/locations/L/endpoints/E:predict` too.",
        "x-max-body-bytes": max_body_bytes,
        "x-max-text-chars": max_text_chars,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
        },
        "responses": {
            "200": _json("PredictResponse", "The predictions, in the order of the instances."),
            **_errors(400, 413, 422, 500, 503),
        },
    }
    health = {
        "operationId": "health",
        "summary": "Whether a model is loaded, and which.",
        "responses": {
            "200": _json("Health", "Always 200; `ready` says whether predictions can be served."),
            **_errors(500),
        },
    }
    contract = {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": {
            "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "saikika predict_http",
            "version": "1",
            "description": "Online label prediction. Other methods are answered 405 (method_not_allowed) with an "
            "Allow header.",
        },
        "paths": {"/": {"get": health, "post": predict}, OPENAPI_PATH: {"get": contract}},
        "components": {"schemas": _SCHEMAS},
    }
