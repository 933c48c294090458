#!/usr/bin/env python3
"""Counts one ctest run's outcomes from its JUnit report (ctest --output-junit).

Usage: ctest_summary.py REPORT.xml

Prints one line per skipped test ("skipped: NAME: reason") and, last, the
machine-readable line "counts PASSED FAILED SKIPPED". A test counts as:
  passed   status "run" (it ran and met its pass condition);
  skipped  status "disabled", or "notrun" because it asked to be skipped
           (GTEST_SKIP matched by gtest_discover_tests' SKIP_REGULAR_EXPRESSION,
           or a SKIP_RETURN_CODE);
  failed   everything else, including "notrun" for a missing executable or
           a failed fixture (ctest counts those as failures too).
A skipped test is never counted as passed. Exit status 0 unless the report
cannot be read (then 2, and the caller counts the stage as failed).
"""
import sys
import xml.etree.ElementTree as ET

SKIP_MESSAGES = ("SKIP_REGULAR_EXPRESSION_MATCHED", "SKIP_RETURN_CODE")


def skip_reason(case):
    """The GTEST_SKIP message (the line after "...: Skipped"), else ctest's."""
    out = (case.findtext("system-out") or "").splitlines()
    for i, line in enumerate(out):
        if line.rstrip().endswith(": Skipped") and i + 1 < len(out) and out[i + 1].strip():
            return out[i + 1].strip()
    if case.get("status") == "disabled":
        return "disabled in CMake"
    skipped = case.find("skipped")
    return skipped.get("message", "") if skipped is not None else ""


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"ctest_summary: cannot read {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        status = case.get("status", "")
        skip = case.find("skipped")
        if status == "run":
            passed += 1
        elif status == "disabled" or (
            status == "notrun"
            and skip is not None
            and skip.get("message", "").startswith(SKIP_MESSAGES)
        ):
            skipped += 1
            # Parameterised gtest names carry "  # GetParam() = <bytes>": drop it.
            name = case.get("name", "").split("  # GetParam()")[0]
            print(f"skipped: {name}: {skip_reason(case)}")
        else:
            failed += 1
    print(f"counts {passed} {failed} {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
