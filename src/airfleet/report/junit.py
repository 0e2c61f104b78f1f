"""JUnit XML: one testcase per call, so CI systems show a fleet job as test results."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TextIO

from airfleet.results import Outcome, Result, Summary

# Characters XML 1.0 cannot carry at all (ElementTree would write them anyway).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def render_junit(summary: Summary, results: Sequence[Result], out: TextIO) -> None:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"airfleet {summary.operation}",
        tests=str(summary.total),
        failures=str(summary.failed),
        errors="0",
        skipped=str(summary.skipped),
        time=f"{summary.duration_s:.3f}",
        timestamp=summary.started_at.isoformat(timespec="seconds"),
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_x(result.deployment),
            name=_x(f"{result.operation} {result.target or result.deployment}"),
            time=f"{result.latency_ms / 1000:.3f}",
        )
        details = json.dumps(
            {"status": result.status, "attempts": result.attempts, "data": dict(result.data)},
            sort_keys=True,
            default=str,
        )
        if result.outcome is Outcome.FAILED:
            failure = ET.SubElement(case, "failure", message=_x(result.error or "failed"))
            failure.text = _x(details)
        elif result.outcome is Outcome.SKIPPED:
            ET.SubElement(case, "skipped", message=_x(result.error or "skipped"))
        else:
            ET.SubElement(case, "system-out").text = _x(details)
    ET.indent(suites)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(suites, encoding="unicode") + "\n")
