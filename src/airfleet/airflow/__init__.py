"""Fleet jobs inside Airflow: ``AirfleetJobOperator`` and ``fleet_dag`` (``airfleet[airflow]``).

Registered as an Airflow provider (``airflow providers list`` shows
airfleet). Works on Airflow 3.x and 2.10+::

    from airfleet.airflow import AirfleetJobOperator, fleet_dag

    nightly = fleet_dag("fleet_nightly", job="jobs/nightly.yaml", shards=4,
                        report_dir="/shared/airfleet", schedule="@daily",
                        start_date=pendulum.datetime(2026, 1, 1))

Importing this package does not import Airflow; its two names do, when
first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airfleet.airflow.dag import fleet_dag
    from airfleet.airflow.operator import AirfleetJobOperator

__all__ = ["AirfleetJobOperator", "fleet_dag", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads (entry point ``apache_airflow_provider``).

    ``package-name`` must be the distribution's own name, or Airflow refuses
    every provider listing.
    """
    return {
        "package-name": "airfleet",
        "name": "airfleet",
        "description": "Bulk orchestration of many Airflow deployments: "
        "an operator for fleet jobs, and fleet DAGs sharded over mapped tasks.",
    }


def __getattr__(name: str) -> Any:
    # Lazily, so that Airflow's provider discovery, which imports this
    # package, does not import Airflow's authoring modules while it loads.
    if name == "AirfleetJobOperator":
        from airfleet.airflow.operator import AirfleetJobOperator

        return AirfleetJobOperator
    if name == "fleet_dag":
        from airfleet.airflow.dag import fleet_dag

        return fleet_dag
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
