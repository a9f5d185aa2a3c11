"""`saikika query`: try a documented BigQuery query locally, on the predictions the product wrote."""

from __future__ import annotations

from saikika.tooling.query import query_command

COMMANDS = (query_command,)
