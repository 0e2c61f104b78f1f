"""The Airflow names airfleet uses, from where each supported release keeps them.

Airflow 3 moved the authoring interface to ``airflow.sdk``; Airflow 2.10 and
2.11 keep it in ``airflow.models`` and friends. Everything else in
:mod:`airfleet.airflow` imports Airflow only through this module.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, BaseOperator, Connection, Variable, get_current_context, task

    AIRFLOW_3 = True
except ImportError:  # Airflow 2.10, 2.11
    from airflow.decorators import task
    from airflow.models import DAG, BaseOperator, Connection, Variable
    from airflow.operators.python import get_current_context

    AIRFLOW_3 = False

try:  # Airflow 3
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2
    from airflow.exceptions import (
        AirflowException,
        AirflowFailException,
    )

try:  # Airflow 3.1+
    from airflow.sdk.log import mask_secret
except ImportError:
    try:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import mask_secret
    except ImportError:  # Airflow 2
        from airflow.utils.log.secrets_masker import mask_secret

__all__ = [
    "AIRFLOW_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "BaseOperator",
    "Connection",
    "Variable",
    "connection_field",
    "get_current_context",
    "mask_secret",
    "task",
    "variable",
]


def variable(key: str) -> str | None:
    """Airflow variable ``key`` (secrets backends included); None if not set."""
    if AIRFLOW_3:
        found: Any = Variable.get(key, default=None)
    else:  # Airflow 2 names the default default_var
        found = Variable.get(key, default_var=None)
    return None if found is None else str(found)


def connection_field(conn_id: str, field: str) -> str | None:
    """``field`` of Airflow connection ``conn_id`` (secrets backends included); None if absent."""
    try:
        if AIRFLOW_3:
            connection: Any = Connection.get(conn_id)
        else:
            from airflow.hooks.base import BaseHook

            connection = BaseHook.get_connection(conn_id)
    except Exception:
        return None
    value = getattr(connection, field, None)
    return None if value in (None, "") else str(value)
