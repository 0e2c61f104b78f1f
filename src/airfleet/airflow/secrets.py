"""``${airflow:conn.ID.FIELD}`` and ``${airflow:var.KEY}`` in fleet.yaml: secrets from Airflow.

In a task run by :mod:`airfleet.airflow`, a fleet file's references resolve
through Airflow's own lookups, so connections and variables kept in a
secrets backend (Vault, AWS Secrets Manager, ...) work as Airflow's own
operators' do. Every variable and connection password read is handed to
Airflow's secrets masker (airfleet's own redaction already covers every
secret field), so neither task logs nor airfleet's reports show it.
``${VAR}`` still reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from airfleet._yaml import AIRFLOW_PREFIX

__all__ = ["FIELDS", "AirflowSecrets"]

# The fields of a connection a secret or a URL part can come from.
FIELDS = ("password", "login", "host", "schema", "port")


class AirflowSecrets(Mapping[str, str]):
    """The environment, plus ``airflow:conn.ID.FIELD`` and ``airflow:var.KEY`` names.

    Each reference is looked up once per instance (one fleet file load).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._found: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> str:
        if not name.startswith(AIRFLOW_PREFIX):
            return self._environ[name]
        if name not in self._found:
            self._found[name] = self._lookup(name[len(AIRFLOW_PREFIX) :])
        value = self._found[name]
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self[name]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def explain_missing(self, name: str) -> str:
        """Why ``${name}`` did not resolve, and what to do (the config error's message)."""
        ref = name[len(AIRFLOW_PREFIX) :]
        kind, _, rest = ref.partition(".")
        if kind == "var" and rest:
            return (
                f"Airflow variable {rest!r} is not set (${{{name}}}); "
                f"set it (airflow variables set {rest} ...) or in your secrets backend"
            )
        if kind == "conn" and "." in rest:
            conn_id, field = rest.rsplit(".", 1)
            if field not in FIELDS:
                return (
                    f"${{{name}}}: a connection's field is one of {', '.join(FIELDS)}, "
                    f"not {field!r}"
                )
            return (
                f"Airflow connection {conn_id!r} is not defined or has no {field} "
                f"(${{{name}}}); add it (airflow connections add {conn_id} ...) or fix the id"
            )
        return (
            f"${{{name}}} is not an Airflow reference: write ${{airflow:conn.ID.FIELD}} "
            f"(FIELD: {', '.join(FIELDS)}) or ${{airflow:var.KEY}}"
        )

    def _lookup(self, ref: str) -> str | None:
        # Imported here: the mapping itself (and its messages) work without
        # Airflow, so the reference syntax is testable anywhere.
        from airfleet.airflow import _compat

        kind, _, rest = ref.partition(".")
        value: str | None = None
        secret = False
        if kind == "var" and rest:
            value = _compat.variable(rest)
        elif kind == "conn" and "." in rest:
            conn_id, field = rest.rsplit(".", 1)
            if field in FIELDS:
                value = _compat.connection_field(conn_id, field)
            # A login or host is not secret, and masking "admin" would
            # blank that word in every log line of the task.
            secret = field == "password"
        if value is not None and (kind == "var" or secret):
            _compat.mask_secret(value)
        return value
