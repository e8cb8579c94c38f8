"""CI's second-Python selection (.ci/pick_files.py): the files it runs fit the time left by the first suite's
per-file times, in priority order, and every file .ci/run names exists."""
import importlib.util
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pick_files():
    spec = importlib.util.spec_from_file_location("pick_files", os.path.join(REPO, ".ci", "pick_files.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_second_python_runs_what_fits_in_the_time_left_in_priority_order(tmp_path):
    report = tmp_path / "first.xml"
    cases = [("tests.test_a", 100.0), ("tests.test_a.TestX", 20.0), ("tests.test_b", 300.0), ("tests.test_c", 50.0),
             ("tests.test_d", 900.0)]
    report.write_text('<?xml version="1.0"?><testsuites><testsuite>' + "".join(
        f'<testcase classname="{c}" name="t{i}" time="{t}"/>' for i, (c, t) in enumerate(cases)) + "</testsuite></testsuites>")
    m = pick_files()
    seconds = m.seconds_per_file(str(report))
    assert seconds == {"tests/test_a.py": 120.0, "tests/test_b.py": 300.0, "tests/test_c.py": 50.0,
                       "tests/test_d.py": 900.0}
    names = ["tests/test_a.py", "tests/test_b.py", "tests/test_d.py", "tests/test_c.py"]
    # two workers: a + b -> max(420 / 2, 300) + 60 = 360 s; + d would be 960 + 60; c still fits after it
    taken, dropped = m.pick(seconds, 400, 2, names)
    assert taken == ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py"]
    assert dropped == [("tests/test_d.py", 900.0)]
    assert m.estimate([120.0, 300.0, 50.0], 2) == 360.0
    assert m.pick(seconds, 10, 2, names)[0] == ["tests/test_a.py"]  # the first is always run
    assert m.pick(seconds, 10_000, 2, names)[0] == names


def test_every_file_ci_names_exists():
    with open(os.path.join(REPO, ".ci", "run")) as f:
        named = set(re.findall(r"tests/test_\w+\.py", f.read()))
    assert len(named) >= 9
    assert all(os.path.exists(os.path.join(REPO, name)) for name in named), sorted(named)
