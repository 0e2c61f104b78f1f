"""airfleet.airflow where Airflow is not installed: the provider entry point, the
reference syntax and its errors. Its behaviour inside Airflow is proven on real
Airflow 3.3 and 2.11 in tests/real/test_real_provider.py."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from airfleet.airflow.secrets import AirflowSecrets
from airfleet.errors import ConfigError
from airfleet.fleet_file import parse_fleet

FLEET = """\
version: 1
auth:
  astro: {kind: token, token: '${airflow:conn.astro_prod.password}'}
  unused: {kind: token, token: '${airflow:var.never_read}'}
deployments:
  - {name: a, url: 'https://a.example.com', auth: astro}
"""


def test_airflow_finds_the_provider_and_its_package_name_is_the_distribution_s() -> None:
    (found,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.dist and e.dist.name == "airfleet"
    ]
    info = found.load()()
    # Airflow refuses every provider listing if these differ.
    assert info["package-name"] == "airfleet"
    assert info["name"]
    assert info["description"]


def test_importing_the_package_does_not_import_airflow() -> None:
    """Airflow's provider discovery imports airfleet.airflow while Airflow itself loads."""
    code = (
        "import sys, airfleet.airflow, airfleet.airflow.secrets; "
        "print(any(m.split('.')[0] == 'airflow' for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_an_airflow_reference_outside_airflow_is_a_config_error_at_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(FLEET, source="fleet.yaml", env={})
    error = caught.value
    assert error.line == 3
    assert "resolves only in a task run by airfleet.airflow" in error.message


class _NothingDefined(AirflowSecrets):
    """Airflow's lookups as they answer when nothing is defined (the real ones need Airflow)."""

    def _lookup(self, ref: str) -> str | None:
        return None


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "conn.astro_prod.password",
            "Airflow connection 'astro_prod' is not defined or has no password",
        ),
        ("var.astro_token", "Airflow variable 'astro_token' is not set"),
        ("conn.astro_prod.extra", "a connection's field is one of password, login, host"),
        ("astro_prod", "is not an Airflow reference"),
    ],
)
def test_an_unresolved_reference_says_what_is_missing_and_where(
    reference: str, message: str
) -> None:
    text = FLEET.replace("conn.astro_prod.password", reference)
    with pytest.raises(ConfigError) as caught:
        parse_fleet(text, source="fleet.yaml", env=_NothingDefined({}))
    assert caught.value.line == 3
    assert message in caught.value.message


def test_the_environment_still_resolves_plain_variables_beside_airflow_references() -> None:
    text = FLEET.replace("${airflow:conn.astro_prod.password}", "${ASTRO_TOKEN}")
    fleet = parse_fleet(text, env=_NothingDefined({"ASTRO_TOKEN": "t0k3n-value"}))
    assert fleet.auth["astro"].token.reveal() == "t0k3n-value"  # type: ignore[union-attr]
