"""Every ```python block of README.md (and of docs/*.md) runs as printed.

The blocks are read from the files themselves, so a doc change that breaks one fails here. Each
block runs in a fresh namespace with a temporary working directory (files it writes, such as
saved_models/..., land there). Markers, comment lines a reader sees in the block (docs/doc-blocks.md):

* ``# continues the ... block above ...`` (``# continues the block above``, ``# continues the
  A2C block above (its env)``): runs right after the previous Python block of the same file, in
  its namespace (and is skipped if that one is);
* ``# needs: a fresh process ...``: runs alone in a new Python process (``use_cores()`` must come
  before TensorFlow runs anything);
* ``# needs: <anything else>`` (real data, minutes, files another skipped block writes): skipped,
  with the marker as the reason.
"""
import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

CONTINUES = re.compile(r"^# continues the\b.*\bblock above\b")
NEEDS = "# needs:"
FRESH_PROCESS = "# needs: a fresh process"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(path):
    """[(first line number, code)] of the ```python blocks of a Markdown file."""
    text = open(path, encoding="utf-8").read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


def markers(code):
    return [line.strip() for line in code.splitlines() if line.strip().startswith("#")]


def chains(path):
    """Blocks grouped into runs: a block that continues the one above joins its chain."""
    groups = []
    for line, code in python_blocks(path):
        if any(CONTINUES.match(m) for m in markers(code)):
            assert groups, f"{path}:{line}: the first Python block cannot continue a block above"
            groups[-1].append((line, code))
        else:
            groups.append([(line, code)])
    return groups


def doc_files():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


CASES = [pytest.param(path, chain, id=f"{os.path.relpath(path, REPO)}:{chain[0][0]}")
         for path in doc_files() for chain in chains(path)]


def test_the_extractor_finds_the_readmes_blocks_and_markers(tmp_path):
    """Guards the test itself: it sees every ```python fence, and the markers in them."""
    files = doc_files()  # the README's blocks live in README.md and docs/*.md since the README was split up
    fences = sum(1 for path in files for line in open(path, encoding="utf-8") if line.startswith("```python"))
    assert fences >= 8 and sum(len(python_blocks(path)) for path in files) == fences
    sample = "x = 1\n# continues the A2C block above (its x)\n  # needs: shared data\n"
    assert markers(sample) == ["# continues the A2C block above (its x)", "# needs: shared data"]
    assert CONTINUES.match(markers(sample)[0]) and not CONTINUES.match("# continues below")
    two = "```python\na = 1\n```\ntext\n```python\n# continues the block above\nb = a\n```\n"
    (tmp_path / "two.md").write_text(two)
    assert [[line for line, _ in c] for c in chains(str(tmp_path / "two.md"))] == [[2, 6]]


@pytest.mark.parametrize("path, chain", CASES)
def test_doc_python_block_runs_as_printed(path, chain, tmp_path, monkeypatch):
    where = f"{os.path.relpath(path, REPO)}, block at line {chain[0][0]}"
    needs = [m for _, code in chain for m in markers(code) if m.startswith(NEEDS)]
    skipped = [m for m in needs if not m.startswith(FRESH_PROCESS)]
    if skipped:
        pytest.skip(f"{where}: {skipped[0]}")
    if any(re.search(r"^\s*(import|from) keras_hub\b", code, re.M) for _, code in chain):
        pytest.importorskip("keras_hub", reason=f"{where} uses KerasHub: the [keras-hub] extra (Python 3.11+)")
    monkeypatch.chdir(tmp_path)
    if needs:  # a fresh process
        script = tmp_path / "block.py"
        script.write_text("\n".join(code for _, code in chain))
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, f"{where} failed:\n{proc.stderr[-3000:]}"
        return
    from tf_rl_text.data import tasks
    from tf_rl_text.trainers import registry

    # a block may register an algorithm or a task (docs/architecture.md does): put the tables back after it
    saved = [(table, dict(table)) for table in (registry.ALGORITHMS, tasks.TASKS)]
    namespace = {"__name__": "__main__"}
    try:
        for line, code in chain:
            # padded so that a traceback names the line of the Markdown file
            exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)  # noqa: S102
            check_actor_critic_demo(namespace.get("trainer"), f"{os.path.relpath(path, REPO)}:{line}")
    finally:
        for table, contents in saved:
            table.clear()
            table.update(contents)


def check_actor_critic_demo(trainer, where):
    """An A2C/PPO demo must show learning from a signal: some reward and policy/value losses are non-zero
    (on the untrained default model every reward, and so every loss, is exactly 0)."""
    from tf_rl_text import A2CTrainer, PPOTrainer

    if not isinstance(trainer, (A2CTrainer, PPOTrainer)) or not trainer.history:
        return
    for key in ("reward_mean", "policy_loss", "value_loss"):
        assert any(abs(h[key]) > 1e-6 for h in trainer.history), f"{where}: every {key} is 0: the demo learns nothing"


def test_the_readmes_layout_names_every_module_and_example():
    """The Layout block lists every module of the package and every example script (a module added or moved
    without the README saying so fails here)."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    words = set(re.findall(r"[\w.]+", layout))
    modules = [os.path.basename(p) for p in glob.glob(os.path.join(REPO, "tf_rl_text", "*.py"))]
    missing = [m for m in modules if m not in words and m not in ("__init__.py", "__main__.py", "_compat.py")]
    missing += [os.path.basename(p) for p in glob.glob(os.path.join(REPO, "examples", "*.py"))
                if os.path.basename(p) not in words]
    trainers = [os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "tf_rl_text", "trainers", "*.py"))]
    missing += [f"trainers/{t}" for t in trainers if t != "__init__" and t not in words]
    assert not missing, f"README.md's Layout does not name: {missing}"
