"""Comparing answers with recorded real Airflow ones by shape, not by value."""

from __future__ import annotations

from typing import Any


def shape(value: Any) -> Any:
    """Keys, recursively (a list by its first item); values do not matter."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if not isinstance(v, list) or v}
    if isinstance(value, list) and value:
        return [shape(value[0])]
    return None
