"""JUnit XML for CI: one <testsuite> per tests file, one <testcase> per case run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .runner import Run

__all__ = ["write_junit"]


def write_junit(run: Run, path: str | Path) -> None:
    """Write `run` as JUnit XML to `path`."""
    root = ET.Element("testsuites", name="dialogue test")
    suites: dict[str, ET.Element] = {}
    for result in run.results:
        suite = suites.get(result.file)
        if suite is None:
            suite = suites[result.file] = ET.SubElement(root, "testsuite", name=result.file)
        name = result.name if not result.repeat else f"{result.name} [{result.repeat + 1}]"
        case = ET.SubElement(suite, "testcase", classname=Path(result.file).name, name=name,
                             time=f"{result.seconds:.3f}")
        if result.error:
            ET.SubElement(case, "error", message=result.error.splitlines()[0]).text = result.mismatch
        elif result.xfail is not None:
            if not result.passed:
                ET.SubElement(case, "skipped", message=f"xfail: {result.xfail}").text = result.mismatch
        elif not result.passed:
            ET.SubElement(case, "failure", message=result.mismatch.splitlines()[0]).text = result.mismatch
    for suite in suites.values():
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.indent(root)
    Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")
