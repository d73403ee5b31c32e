"""Flow test results as JUnit XML (``ivr test --junit FILE``), the report CI systems read:
one ``<testsuite>`` per flow, one ``<testcase>`` per case, a ``<failure>`` with the mismatches
(or an ``<error>`` for a case that could not run, or a test file that could not be read)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ivr.errors import FlowError
from ivr.runtime.flow_tests import CaseResult

__all__ = ["junit_xml"]


def junit_xml(results: Sequence[CaseResult], errors: Sequence[FlowError] = ()) -> str:
    """The XML document (UTF-8 text, with its declaration)."""
    root = ET.Element("testsuites", name="ivr flow tests")
    by_flow: dict[str, list[CaseResult]] = {}
    for result in results:
        by_flow.setdefault(result.flow, []).append(result)
    for flow, cases in by_flow.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=flow,
            tests=str(len(cases)),
            failures=str(sum(bool(r.failures) for r in cases)),
            errors=str(sum(bool(r.error) for r in cases)),
            time=f"{sum(r.seconds for r in cases):.4f}",
        )
        for r in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"flows.{flow}",
                name=r.case.name,
                file=r.case.file,
                line=str(r.case.line),
                time=f"{r.seconds:.4f}",
            )
            if r.error:
                ET.SubElement(case, "error", message=r.error).text = r.error
            elif r.failures:
                failure = ET.SubElement(case, "failure", message=r.failures[0].splitlines()[0])
                failure.text = "\n".join(r.failures)
                ET.SubElement(case, "system-out").text = "\n".join(r.transcript)
    if errors:
        suite = ET.SubElement(root, "testsuite", name="test files", tests=str(len(errors)))
        suite.set("errors", str(len(errors)))
        for error in errors:
            case = ET.SubElement(suite, "testcase", classname="flows", name=error.file)
            ET.SubElement(case, "error", message=error.message).text = str(error)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
