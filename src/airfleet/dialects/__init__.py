"""Airflow REST API dialects: every difference between Airflow 2 and 3 lives here.

``v1`` speaks Airflow 2's ``/api/v1``; ``v2`` speaks Airflow 3's ``/api/v2``;
``detect`` finds out which one a deployment speaks. Operations call dialect
methods and never test a version number.
"""

from __future__ import annotations

from airfleet.dialects.base import DagRunInfo, Dialect
from airfleet.dialects.detect import DIALECTS, detect, dialect_named
from airfleet.dialects.v1 import AirflowV1
from airfleet.dialects.v2 import AirflowV2

__all__ = ["DIALECTS", "AirflowV1", "AirflowV2", "DagRunInfo", "Dialect", "detect", "dialect_named"]
