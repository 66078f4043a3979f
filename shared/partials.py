"""The speed job's output topics: their names and how their JSON rows are read.

The speed job (speed_layer.pipeline) writes its partial rows, one topic for all views,
in Kafka transactions committed on its checkpoints; the speed layer's committers move
them into `lake.speed.<view>`, and the desk's dashboard (serving_layer.live) reads the
same committed rows to move the current bar before they reach the lake.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from shared.config import Settings

Decoder = Callable[[bytes], Mapping[str, Any]]


def partials_topic(settings: Settings, topic: str | None = None) -> str:
    """The topic of the views' grain's partial rows (one for all views)."""
    return f"{topic or settings.topic}.speed.partials"


def rejects_topic(settings: Settings, topic: str | None = None) -> str:
    """The topic of the speed job's contract-rejects counts."""
    return f"{topic or settings.topic}.speed.rejects"


def json_decoder(schema: pa.Schema) -> Decoder:
    """Decode a JSON object into a row of `schema`; decimals exactly, never via float.

    Timestamps are ISO-8601 text in UTC (Flink's `json.timestamp-format.standard`
    ISO-8601 for TIMESTAMP columns, the session time zone being UTC).
    """
    decimal_fields = {f.name for f in schema if pa.types.is_decimal(f.type)}
    timestamp_fields = {f.name for f in schema if pa.types.is_timestamp(f.type)}

    def decode(raw: bytes) -> Mapping[str, Any]:
        obj: dict[str, Any] = json.loads(raw, parse_float=Decimal)
        for name in decimal_fields:
            value = obj.get(name)
            if value is not None and not isinstance(value, Decimal):
                obj[name] = Decimal(str(value))
        for name in timestamp_fields:
            value = obj.get(name)
            if isinstance(value, str):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                obj[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return obj

    return decode
