"""JUnit XML: one testcase per call, so CI systems show a fleet job as test results.

The file follows the Apache Ant JUnit schema (the one Jenkins, GitLab and
most report viewers read; tests/fixtures/junit/JUnit.xsd checks it):

- one ``testcase`` per call; ``classname`` is ``airfleet.<operation or step
  id>.<deployment>`` and ``name`` is ``<operation> <target>``, so Jenkins
  groups a run by operation (a job by step), then deployment. Jenkins
  splits a classname at its dots, so a dot inside a deployment name or step
  id is written as U+2024 (ONE DOT LEADER, "\u2024"): ``prod.eu`` reads the same
  and stays one class. A pair that would still repeat gets `` #2``, `` #3``.
- a failed call is a ``failure``; a call whose effect is unknown
  (``data.effect == "unknown"``) or that was interrupted (``data.interrupted``,
  or skipped because the run was) is an ``error``: CI shows it as "needs a
  look", not "the server said no". Other skipped calls are ``skipped``.
- ``timestamp`` is the run's start in UTC without a zone, as the schema
  requires; the counts are those of the testcases written.
- what each call returned (status, attempts, data) is in the suite's
  ``system-out``, one line per call (the schema allows no output per
  testcase), and in the text of its failure or error.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import UTC
from typing import TextIO

from airfleet.report._rows import run_ids
from airfleet.results import Outcome, Result, Summary

__all__ = ["classname", "render_junit"]

# Characters XML 1.0 cannot carry at all (ElementTree would write them anyway).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Jenkins reads "a.b.c" as package "a.b", class "c".
_DOT_LEADER = "\u2024"


def _x(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _part(text: str) -> str:
    return _x(text).replace(".", _DOT_LEADER)


def classname(result: Result) -> str:
    """``airfleet.<operation or step id>.<deployment>``, each part free of dots."""
    return f"airfleet.{_part(result.step or result.operation)}.{_part(result.deployment)}"


def _unsettled(result: Result) -> str | None:
    """Why a call is a JUnit error (nobody knows what it did, or it was cut short), if it is.

    A call cut short in flight, and one an interruption never started, both
    carry ``data.interrupted``.
    """
    data = result.data
    if data.get("effect") == "unknown":
        return "effect unknown"
    if data.get("interrupted"):
        return "interrupted"
    return None


def _unique(used: set[tuple[str, str]], cls: str, name: str) -> str:
    """``name``, or ``name #2``, ``#3``...: the first not yet used in ``cls``."""
    candidate, n = name, 1
    while (cls, candidate) in used:
        n += 1
        candidate = f"{name} #{n}"
    used.add((cls, candidate))
    return candidate


def _timestamp(summary: Summary) -> str:
    started = summary.started_at
    if started.tzinfo is not None:
        started = started.astimezone(UTC).replace(tzinfo=None)
    return started.isoformat(timespec="seconds")


def render_junit(
    summary: Summary, results: Sequence[Result], out: TextIO, *, hostname: str | None = None
) -> None:
    """Write one testsuite with a testcase per result (``hostname``: default, this host's)."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=_x(f"airfleet {summary.operation}"),
        package="airfleet",
        id="0",
        timestamp=_timestamp(summary),
        hostname=_x(hostname or socket.gethostname() or "localhost"),
        time=f"{summary.duration_s:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("operation", summary.operation),
        ("interrupted", "true" if summary.interrupted else "false"),
        *(("run_id", run_id) for run_id in run_ids(results)),
    ):
        ET.SubElement(properties, "property", name=name, value=_x(value))
    counts: Counter[str] = Counter()
    used: set[tuple[str, str]] = set()
    lines: list[str] = []
    for result in results:
        cls = classname(result)
        name = _unique(used, cls, _x(" ".join(p for p in (result.operation, result.target) if p)))
        case = ET.SubElement(
            suite, "testcase", name=name, classname=cls, time=f"{result.latency_ms / 1000:.3f}"
        )
        details = json.dumps(
            {"status": result.status, "attempts": result.attempts, "data": dict(result.data)},
            sort_keys=True,
            default=str,
        )
        lines.append(_x(f"{cls} {name}: {result.outcome.value} {details}"))
        unsettled = _unsettled(result)
        if unsettled is not None:
            kind = "error"
            element = ET.SubElement(
                case, "error", type=unsettled, message=_x(result.error or unsettled)
            )
            element.text = _x(details)
        elif result.outcome is Outcome.FAILED:
            kind = "failure"
            element = ET.SubElement(
                case, "failure", type="failed", message=_x(result.error or "failed")
            )
            element.text = _x(details)
        elif result.outcome is Outcome.SKIPPED:
            kind = "skipped"
            ET.SubElement(case, "skipped", message=_x(result.error or "skipped"))
        else:
            kind = "ok"
        counts[kind] += 1
    suite.set("tests", str(len(results)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    ET.SubElement(suite, "system-out").text = "\n".join(lines) + "\n" if lines else ""
    ET.SubElement(suite, "system-err")
    ET.indent(suites)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(suites, encoding="unicode") + "\n")
