"""fleet.yaml loading: defaults, env vars, and errors that name file, line and key."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airfleet.errors import ConfigError
from airfleet.fleet_file import load_fleet, parse_fleet
from airfleet.inventory import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_PER_SECOND,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    ClientCredentialsAuth,
    PasswordAuth,
    TokenAuth,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
ENV = {
    "ASTRO_API_TOKEN": "tok-abcdef-123",
    "ASTRO_API_KEY_ID": "key-id",
    "ASTRO_API_KEY_SECRET": "key-secret-123",
    "AIRFLOW_PASSWORD": "pw-abcdef-123",
}

MINIMAL = """\
version: 1
auth:
  t:
    kind: token
    token: ${TOKEN}
deployments:
  - name: a
    url: https://a.example.com/x/
"""


def error_of(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(
            text, source="fleet.yaml", env=env if env is not None else {"TOKEN": "t0ken-xyz"}
        )
    return caught.value


def test_example_configs_load() -> None:
    """configs/fleet.yaml and configs/fleet.local.yaml load with their variables set."""
    fleet = load_fleet(CONFIGS / "fleet.yaml", env=ENV)
    assert [d.name for d in fleet.deployments][:2] == ["prod-eu", "prod-us"]
    assert isinstance(fleet.auth["astro-token"], TokenAuth)
    assert fleet.limits.max_per_second == 50
    local = load_fleet(CONFIGS / "fleet.local.yaml", env=ENV)
    assert isinstance(local.auth["local"], PasswordAuth)
    assert local.deployments[1].api == "v1"


def test_minimal_fleet_takes_defaults() -> None:
    """Only version, deployments and the used profile are required; the rest defaults."""
    fleet = parse_fleet(MINIMAL, env={"TOKEN": "t0ken-xyz"})
    (d,) = fleet.deployments
    assert d.url == "https://a.example.com/x"
    assert d.auth == "t"
    assert d.max_in_flight == DEFAULT_MAX_IN_FLIGHT
    assert d.max_per_second == DEFAULT_MAX_PER_SECOND
    assert d.api == "auto"
    assert fleet.limits.max_per_second is None


def test_explicit_null_rate_means_unlimited() -> None:
    """max_per_second: null on a deployment lifts the default limit."""
    text = MINIMAL + "    max_per_second: null\n"
    assert parse_fleet(text, env={"TOKEN": "x"}).deployments[0].max_per_second is None


def test_unset_variable_names_variable_and_line() -> None:
    """An unset ${VAR} is an error with the variable, file and line."""
    error = error_of(MINIMAL, env={})
    assert error.line == 5
    assert error.file == "fleet.yaml"
    assert "TOKEN is not set" in str(error)
    assert str(error).startswith("fleet.yaml:5: auth.t.token:")


def test_variable_default_is_used() -> None:
    """${VAR:-default} falls back to the default."""
    text = MINIMAL.replace("${TOKEN}", "${TOKEN:-fallback-token}")
    fleet = parse_fleet(text, env={})
    profile = fleet.auth["t"]
    assert isinstance(profile, TokenAuth)
    assert profile.token.reveal() == "fallback-token"


def test_unused_profile_needs_no_variables() -> None:
    """A profile no deployment uses may reference variables that are not set."""
    text = MINIMAL.replace(
        "deployments:",
        "  prod:\n    kind: token\n    token: ${PROD_TOKEN}\ndefaults:\n  auth: t\ndeployments:",
    )
    assert parse_fleet(text, env={"TOKEN": "x"}).deployments[0].auth == "t"


def test_unknown_key_suggests_the_right_one() -> None:
    """A typo'd key is an error on its own line with a did-you-mean."""
    error = error_of(MINIMAL + "    max_per_secnd: 3\n")
    assert error.line == 9
    assert "unknown key 'max_per_secnd' (did you mean 'max_per_second'?)" in str(error)
    assert error.key == "deployments[0].max_per_secnd"


def test_misspelt_required_key_is_told_as_a_typo_not_as_missing() -> None:
    """``nmae:`` reads as an unknown key with a suggestion, not as "name is required"."""
    error = error_of(MINIMAL.replace("  - name: a", "  - nmae: a"))
    assert "unknown key 'nmae' (did you mean 'name'?)" in str(error)
    assert error.line == 7


def test_unknown_key_in_profile_is_checked_against_its_kind() -> None:
    """Keys of an auth profile are checked against that profile's kind."""
    error = error_of(
        MINIMAL.replace("    token: ${TOKEN}", "    token: ${TOKEN}\n    client_id: x")
    )
    assert "unknown key 'client_id'" in str(error)
    assert error.line == 6


def test_wrong_type_names_the_key_and_line() -> None:
    """A wrong type points at the key's line."""
    error = error_of(MINIMAL + "    max_in_flight: lots\n")
    assert error.line == 9
    assert error.key == "deployments[0].max_in_flight"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x.example.com", "is not an http(s) URL"),
        ("not a url", "is not an http(s) URL"),
        ("http://prod.example.com", "plain http to a non-loopback host"),
        ("https://x.example.com/?a=1", "leave out the query"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    """URLs must be http(s); plain http only to loopback unless allow_insecure."""
    error = error_of(MINIMAL.replace("https://a.example.com/x/", url))
    assert message in str(error)
    assert error.line == 8


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:s3cret-pw@a.example.com/x",
        "https://admin@a.example.com/x",
        "https://:s3cret-pw@a.example.com",
        "https://adm[in:s3cret-pw@a.example.com",  # unparsable, and still not echoed
        # A "/", "?" or "#" in the password ends the authority early: the
        # parsed URL has no user info, and the password's tail is its path.
        "https://admin:s3cret/-pw@a.example.com/x",
        "https://admin:s3cret?-pw@a.example.com",
        "https://admin:s3cret#-pw@a.example.com",
    ],
)
def test_a_url_with_user_info_is_refused_without_echoing_it(url: str) -> None:
    """user:password@ in a URL: a config error naming the deployment, never the password."""
    error = error_of(MINIMAL.replace("https://a.example.com/x/", url))
    assert "user name or password" in str(error)
    assert "deployment 'a'" in str(error)
    assert "s3cret" not in str(error)
    assert "-pw" not in str(error)
    assert "admin" not in str(error)
    assert error.line == 8


def test_a_token_url_with_user_info_is_refused() -> None:
    """The same for an auth profile's token_url, which names the profile."""
    text = (
        "version: 1\nauth:\n  cc:\n    kind: client-credentials\n"
        "    token_url: https://id:s3cret-pw@auth.example.com/oauth/token\n"
        "    client_id: id\n    client_secret: x\n"
        "deployments:\n  - name: a\n    url: https://a.example.com\n    auth: cc\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_fleet(text, env={})
    assert "auth profile 'cc'" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost", "[::1]:80", "127.1.2.3"])
def test_plain_http_to_loopback_is_fine(host: str) -> None:
    """Loopback needs no allow_insecure."""
    parse_fleet(MINIMAL.replace("https://a.example.com/x/", f"http://{host}"), env={"TOKEN": "x"})


def test_allow_insecure_permits_plain_http() -> None:
    """allow_insecure: true on the deployment permits http to other hosts."""
    text = (
        MINIMAL.replace("https://a.example.com/x/", "http://prod.internal")
        + "    allow_insecure: true\n"
    )
    assert parse_fleet(text, env={"TOKEN": "x"}).deployments[0].allow_insecure


def test_duplicate_deployment_names_point_at_both() -> None:
    """Two deployments with one name: the error names the second line and the first."""
    error = error_of(MINIMAL + "  - name: a\n    url: https://b.example.com\n")
    assert error.line == 9
    assert "duplicate deployment name 'a' (first at line 7)" in str(error)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://a.example.com/x/", "https://a.example.com/x"),  # a trailing slash
        ("https://a.example.com/x/", "HTTPS://A.Example.COM/x"),  # scheme and host case
        ("https://a.example.com/x/", "https://a.example.com:443/x"),  # the default port
        ("https://a.example.com/x/", "https://a.example.com./x//"),  # a root dot, slashes
        ("https://a.example.com/x/", "https://a.example.com/y/../x"),  # dot segments
        ("https://a.example.com/x/", "https://a.example.com/%78"),  # an escaped unreserved
        ("https://a.example.com/x", "https://a.example.com/x"),  # two names, one URL
        ("http://[::1]:8080/x", "http://[0:0:0:0:0:0:0:1]:8080/x/"),  # an IPv6 spelling
        ("http://127.0.0.1/x", "http://127.0.0.1:80/x"),
    ],
)
def test_one_server_listed_twice_is_an_error_naming_both(first: str, second: str) -> None:
    """Two deployments whose URLs normalise alike: one error at the second, naming both."""
    text = MINIMAL.replace("https://a.example.com/x/", first)
    error = error_of(text + f"  - name: b\n    url: '{second}'\n")
    assert error.line == 10
    assert error.key == "deployments[1].url"
    assert "deployment 'b' has the same URL as deployment 'a' (line 7)" in str(error)
    assert "allow_duplicate_url: true" in str(error)


@pytest.mark.parametrize(
    "second",
    [
        "https://a.example.com/X",  # paths keep their case, as servers do
        "https://a.example.com:8443/x",
        "http://a.example.com/x",
        "https://a.example.com/x/y",
        "https://a.example.com/%2Fx",  # an escaped "/" is not a separator
        "https://b.example.com/x",
    ],
)
def test_different_servers_or_paths_are_not_duplicates(second: str) -> None:
    """Another port, scheme, host or path (case included) is another deployment."""
    text = MINIMAL + f"  - name: b\n    url: '{second}'\n    allow_insecure: true\n"
    assert len(parse_fleet(text, env={"TOKEN": "x"}).deployments) == 2


@pytest.mark.parametrize("flagged", ["a", "b"])
def test_allow_duplicate_url_on_either_deployment_permits_the_pair(flagged: str) -> None:
    """allow_duplicate_url: true on one of the two is enough; the URLs stay as written."""
    entries = {
        name: f"  - name: {name}\n    url: https://a.example.com/x/\n"
        + ("    allow_duplicate_url: true\n" if name == flagged else "")
        for name in ("a", "b")
    }
    text = MINIMAL.split("  - name: a")[0] + entries["a"] + entries["b"]
    fleet = parse_fleet(text, env={"TOKEN": "x"})
    assert [d.url for d in fleet.deployments] == ["https://a.example.com/x"] * 2


def test_a_third_copy_without_the_opt_out_is_still_an_error() -> None:
    """Only the deployments that opt out may share: two that do not are still told."""
    text = (
        MINIMAL
        + "  - name: b\n    url: https://a.example.com/x\n    allow_duplicate_url: true\n"
        + "  - name: c\n    url: https://a.example.com/x\n"
    )
    error = error_of(text)
    assert error.line == 13
    assert "deployment 'c' has the same URL as deployment 'a' (line 7)" in str(error)


def test_allow_duplicate_url_belongs_on_deployments_not_in_defaults() -> None:
    """In defaults it would switch the check off fleet-wide: refused, saying where it goes."""
    text = MINIMAL.replace("deployments:", "defaults:\n  allow_duplicate_url: true\ndeployments:")
    error = error_of(text)
    assert error.line == 7
    assert "allow_duplicate_url goes on a deployment" in str(error)


@pytest.mark.parametrize("port", ["abc", "99999", "0"])
def test_a_url_with_a_port_that_is_no_port_is_refused(port: str) -> None:
    """A port that is not a number from 1 to 65535 is told at load, not at the first call."""
    error = error_of(MINIMAL.replace("https://a.example.com/x/", f"https://a.example.com:{port}"))
    assert "the port must be a number from 1 to 65535" in str(error)
    assert error.line == 8


def test_missing_auth_profile_suggests_a_name() -> None:
    """A deployment naming an unknown profile gets a did-you-mean."""
    error = error_of(MINIMAL + "    auth: tt\n")
    assert "auth profile 'tt' is not defined (did you mean 't'?)" in str(error)
    assert error.line == 9


def test_malformed_yaml_has_a_line() -> None:
    """Broken YAML is a ConfigError at its line, not a yaml exception."""
    error = error_of("version: 1\ndeployments:\n  - name: [a\n")
    assert error.line is not None
    assert "not valid YAML" in str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("version: 2\ndeployments: []\n", "version"),
        ("version: 1\n", "no deployments: list them under 'deployments'"),
        ("version: 1\ndeployments: []\n", "or discover them"),
        ("version: 1\nversion: 1\n", "duplicate key 'version'"),
    ],
)
def test_structural_errors(text: str, message: str) -> None:
    """Empty files, wrong shapes and wrong versions are one-line ConfigErrors."""
    assert message in str(error_of(text))


def test_missing_file_says_how_to_point_elsewhere(tmp_path: Path) -> None:
    """A missing file names the path and the -c / $AIRFLEET_CONFIG fix."""
    with pytest.raises(ConfigError, match="AIRFLEET_CONFIG") as caught:
        load_fleet(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(caught.value)


def test_secrets_never_appear_in_errors_or_reprs() -> None:
    """A secret of the wrong type is not echoed; Secret and Fleet reprs hide values."""
    text = MINIMAL.replace("${TOKEN}", "[s3cr3t-list-value]")
    assert "s3cr3t" not in str(error_of(text))
    fleet = parse_fleet(
        "version: 1\nauth:\n  c:\n    kind: client-credentials\n    token_url: https://auth.example.com/t\n"
        "    client_id: id\n    client_secret: ${S}\ndeployments:\n  - name: a\n    url: https://a.example.com\n",
        env={"S": "super-secret-value"},
    )
    profile = fleet.auth["c"]
    assert isinstance(profile, ClientCredentialsAuth)
    assert "super-secret-value" not in repr(fleet.auth) + str(profile.client_secret) + repr(profile)
    assert profile.client_secret.reveal() == "super-secret-value"


def test_single_profile_is_the_default() -> None:
    """With exactly one profile and no defaults.auth, deployments use it."""
    assert parse_fleet(MINIMAL, env={"TOKEN": "x"}).deployments[0].auth == "t"


def test_profile_timeout_and_retries_inherit_the_defaults_section() -> None:
    """A profile without timeout_s / retries takes the defaults section's, else the built-ins."""
    profile = parse_fleet(MINIMAL, env={"TOKEN": "x"}).auth["t"]
    assert (profile.timeout_s, profile.retries) == (DEFAULT_TIMEOUT_S, DEFAULT_RETRIES)
    text = MINIMAL.replace(
        "deployments:", "defaults:\n  timeout_s: 7.5\n  retries: 2\ndeployments:"
    )
    fleet = parse_fleet(text, env={"TOKEN": "x"})
    assert (fleet.auth["t"].timeout_s, fleet.auth["t"].retries) == (7.5, 2)
    assert (fleet.deployments[0].timeout_s, fleet.deployments[0].retries) == (7.5, 2)


@pytest.mark.parametrize("kind", ["token", "client-credentials", "password"])
def test_profile_timeout_and_retries_set_on_the_profile_win(kind: str) -> None:
    """timeout_s / retries on a profile override the defaults section, for every kind."""
    profile_keys = {
        "token": "    token: ${S}\n",
        "client-credentials": "    token_url: https://auth.example.com/t\n"
        "    client_id: id\n    client_secret: ${S}\n",
        "password": "    username: u\n    password: ${S}\n",
    }[kind]
    text = (
        "version: 1\ndefaults:\n  timeout_s: 7.5\n  retries: 2\n"
        f"auth:\n  p:\n    kind: {kind}\n{profile_keys}    timeout_s: 3\n    retries: 0\n"
        "deployments:\n  - name: a\n    url: https://a.example.com\n"
    )
    fleet = parse_fleet(text, env={"S": "secret-value"})
    profile = fleet.auth["p"]
    assert profile.kind == kind
    assert (profile.timeout_s, profile.retries) == (3.0, 0)
    assert (fleet.deployments[0].timeout_s, fleet.deployments[0].retries) == (7.5, 2)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("    timeout_s: 0\n", "auth.t.timeout_s"),
        ("    timeout_s: soon\n", "auth.t.timeout_s"),
        ("    retries: -1\n", "auth.t.retries"),
        ("    retries: 21\n", "auth.t.retries"),
        ("    retries: '3'\n", "auth.t.retries"),
    ],
)
def test_bad_profile_timeout_or_retries_names_the_line(line: str, key: str) -> None:
    """A bad timeout_s / retries on a profile is a ConfigError at its own line and key."""
    error = error_of(MINIMAL.replace("    token: ${TOKEN}\n", "    token: ${TOKEN}\n" + line))
    assert error.line == 6
    assert error.key == key
    assert str(error).startswith(f"fleet.yaml:6: {key}:")


def test_two_profiles_without_default_is_an_error() -> None:
    """With several profiles, a deployment must say which it uses."""
    text = MINIMAL.replace("deployments:", "  u:\n    kind: token\n    token: y\ndeployments:")
    assert "no auth profile" in str(error_of(text))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_config_error(text: str) -> None:
    """Fuzz: whatever the text, the loader returns a Fleet or raises ConfigError."""
    with contextlib.suppress(ConfigError):
        parse_fleet(text, env={})


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, 2, "1"])},
        optional={
            "deployments": _values,
            "auth": _values,
            "defaults": _values,
            "limits": _values,
            "extra": _values,
        },
    )
)
def test_arbitrary_structures_only_ever_raise_config_error(document: dict[str, object]) -> None:
    """Fuzz: YAML-shaped documents of any structure give a Fleet or a ConfigError."""
    import yaml

    with contextlib.suppress(ConfigError):
        parse_fleet(yaml.safe_dump(document), env={})
