"""Which test files the second Python runs within the time left (called by .ci/run).

    python .ci/pick_files.py JUNIT_XML SECONDS_LEFT WORKERS FILE...

JUNIT_XML is the first suite's report (pytest --junitxml): each file's measured seconds. FILE... are the
candidates in priority order. A file is taken when the estimated wall time of the files taken so far and
it still fits in SECONDS_LEFT: with pytest-xdist's --dist loadfile over WORKERS workers, about the larger
of (their summed seconds / WORKERS) and the longest file, plus a minute of start-up. The first candidate is
always taken. Prints the files taken on stdout (one line) and what was left out, and why, on stderr.
"""
from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET

START_UP_S = 60.0


def seconds_per_file(report: str) -> dict:
    """{"tests/test_x.py": seconds} from a junit XML report (testcase classname "tests.test_x[.Class]")."""
    seconds = collections.Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        if len(parts) >= 2:
            seconds[f"{parts[0]}/{parts[1]}.py"] += float(case.get("time", 0) or 0)
    return dict(seconds)


def estimate(seconds: list, workers: int) -> float:
    return max(sum(seconds) / workers, max(seconds, default=0.0)) + START_UP_S


def pick(measured: dict, left: float, workers: int, candidates: list) -> tuple:
    taken, dropped = [], []
    for i, name in enumerate(candidates):
        cost = measured.get(name, 0.0)
        if i == 0 or estimate([measured.get(t, 0.0) for t in taken] + [cost], workers) <= left:
            taken.append(name)
        else:
            dropped.append((name, cost))
    return taken, dropped


def main(argv):
    report, left, workers, candidates = argv[0], float(argv[1]), int(argv[2]), argv[3:]
    measured = seconds_per_file(report)
    taken, dropped = pick(measured, left, workers, candidates)
    cost = estimate([measured.get(t, 0.0) for t in taken], workers)
    print(f"!! {len(taken)} files, about {cost / 60:.0f} min by the first suite's times, in the {left / 60:.0f} min "
          f"left", file=sys.stderr)
    for name, s in dropped:
        print(f"!! left out (it would end past the budget): {name} ({s:.0f} s in the first suite)", file=sys.stderr)
    print(" ".join(taken))


if __name__ == "__main__":
    main(sys.argv[1:])
