"""The ``tf-rl-text`` command end to end: every subcommand in a subprocess on one tiny run (trained
once per module, not mutated), config mistakes (exit 2, one line naming the field), the plot's
curves and pixels, and the serving-only export (smaller, same tokens)."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

import tf_rl_text
from tf_rl_text import cli, configfile, configsections, metrics, workflow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_NOISE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [EWI] |WARNING: All log messages|I0000 |TensorFlow and JAX)")
STEPS = 3
TINY = {
    "algorithm": "reinforce",
    "model": {"layers": 1, "width": 32},
    "data": {"source": "prompts"},
    "reward": {"name": "sentiment"},
    "trainer": {"learning_rate": 1e-3, "baseline": "rloo", "num_samples_per_prompt": 2, "kl_coef": 0.05},
    "run": {"steps": 10, "warm_start_steps": 5, "batch_size": 2, "max_new_tokens": 6, "seed": 0},
    "quick": {"run": {"steps": STEPS}},
}


def tf_rl_text_cmd(*args, stdin=None, timeout=300):
    """``python -m tf_rl_text ARGS`` in a fresh process; (returncode, stdout, stderr without TF's start-up lines)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "tf_rl_text", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)
    err = "\n".join(line for line in proc.stderr.splitlines() if line.strip() and not TF_NOISE.match(line))
    return proc.returncode, proc.stdout, err


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


@pytest.fixture(scope="module")
def run(config_file, tmp_path_factory):
    """One tiny run: `tf-rl-text train tiny.yaml --quick --run-dir D` (3 REINFORCE steps)."""
    run_dir = str(tmp_path_factory.mktemp("run") / "tiny")
    rc, out, err = tf_rl_text_cmd("train", config_file, "--quick", "--run-dir", run_dir, "--no-progress")
    assert rc == 0, err[-3000:]
    return run_dir, out


def test_train_writes_the_run_folder_and_a_summary_table(run):
    run_dir, out = run
    assert re.search(rf"^\s+steps\s+{STEPS}$", out, re.M), out
    assert re.search(r"^\s+reward_after\s+-?\d\.\d{4}$", out, re.M), out
    records = workflow.read_metrics(run_dir)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert all(-1.0 <= r["reward_mean"] <= 1.0 and r["kl"] >= 0 for r in records)
    ran = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))
    assert ran["run"]["steps"] == STEPS and ran["trainer"]["baseline"] == "rloo"  # quick merged, every field written
    assert ran["trainer"]["entropy_coef"] == tf_rl_text.ReinforceConfig().entropy_coef
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", f"ckpt-{STEPS}.index"))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(run_dir, "tensorboard")))
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["steps"] == STEPS and summary["export"] == os.path.join(run_dir, "export")
    assert tf_rl_text.load(os.path.join(run_dir, "export")).metadata["updates"] == STEPS


def test_generate_prints_the_exports_completions_from_arguments_and_stdin(run):
    run_dir, _ = run
    export = os.path.join(run_dir, "export")
    prompts = ["the movie was", "my day"]
    expected = tf_rl_text.load(export).generate(prompts)  # greedy, in this process
    rc, out, err = tf_rl_text_cmd("generate", export, *prompts, "--json")
    assert rc == 0, err
    assert json.loads(out) == [{"prompt": p, "completion": c} for p, c in zip(prompts, expected)]
    rc, out, err = tf_rl_text_cmd("generate", export, "--max-new-tokens", "2", stdin="the movie was\n")
    assert rc == 0, err
    policy = tf_rl_text.load(export)
    first_two = policy.tokenizer.decode(policy.tokenizer(expected[0], add_special_tokens=False)["input_ids"][:2])
    assert out.splitlines() == ["the movie was" + first_two]


def test_evaluate_scores_the_export_as_the_metrics_module_does(run, tmp_path):
    run_dir, _ = run
    export = os.path.join(run_dir, "export")
    prompts = ["the movie was", "my day", "the food"]
    completions = tf_rl_text.load(export).generate(prompts)
    references = ["it was a lovely film .", completions[1] + " and more", "the food was cold and bland"]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "reference": r}) + "\n" for p, r in zip(prompts, references)))
    rc, out, err = tf_rl_text_cmd("evaluate", export, "--data", str(data), "--metrics", "bleu,sacrebleu,length,perplexity",
                                  "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["bleu"] == pytest.approx(metrics.corpus_bleu(completions, references), abs=1e-9)
    assert result["sacrebleu"] == pytest.approx(metrics.sacrebleu_corpus(completions, references), abs=1e-9)
    assert result["mean_length"] == pytest.approx(metrics.mean_length(completions))
    assert 1.0 < result["perplexity"] < 512  # the embedded vocabulary: a uniform model scores exactly 512
    assert result["num_examples"] == 3


def test_export_serving_only_is_smaller_and_gives_the_same_tokens(run, tmp_path):
    from transformers import AutoTokenizer

    run_dir, _ = run
    out = str(tmp_path / "serving")
    rc, stdout, err = tf_rl_text_cmd("export", run_dir, out, "--serving-only")
    assert rc == 0, err
    assert "serving-only SavedModel" in stdout
    size = lambda p: sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(p, "variables"))
                         for f in fs)
    full = os.path.join(run_dir, "export")
    assert size(out) < 0.45 * size(full), (size(out), size(full))  # Adam's two slots per weight are gone
    a, b = tf_rl_text.load(full), tf_rl_text.load(out)
    assert not hasattr(b.module, "train_step") and not hasattr(b.module, "optimizer") and hasattr(a.module, "train_step")
    assert b.metadata["serving_only"] is True and b.metadata["updates"] == STEPS
    prompts = ["the movie was", "my day", "i really enjoyed the"]
    assert b.generate(prompts) == a.generate(prompts)
    assert b.generate(prompts, greedy=False, seed=5) == a.generate(prompts, greedy=False, seed=5)
    for va, vb in zip(a.module.model_variables, b.module.model_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "assets", "tokenizer"))
    assert tok.padding_side == "left"  # the causal model's side, whatever the tokenizer object had
    # docs/export-and-serving.md reports these two sizes: they are what this run writes
    total = lambda p: sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs) / 1e6
    with open(os.path.join(REPO, "docs", "export-and-serving.md"), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    found = re.search(r"the full export is ([\d.]+) MB and the serving-only one ([\d.]+) MB", text)
    # within 0.02 MB: the bytes move by a few kB between machines (1.88/1.21 here, 1.89/1.22 on CI's)
    assert found, "docs/export-and-serving.md no longer states the two export sizes"
    assert abs(float(found[1]) - total(full)) <= 0.02 and abs(float(found[2]) - total(out)) <= 0.02, \
        (found[1], found[2], total(full), total(out))
    assert tok(["the movie was", "my"], padding=True)["attention_mask"][1][0] == 0


def test_plot_writes_a_png_of_the_runs_curves(run, tmp_path):
    import matplotlib.image

    run_dir, _ = run
    png = str(tmp_path / "curves.png")
    rc, out, err = tf_rl_text_cmd("plot", run_dir, "-o", png)
    assert rc == 0, err
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (780, 700)  # 3 panels of 2.6 x 7 inches at 100 dpi
    assert image[..., :3].std() > 0.05 and (image[..., :3] < 0.5).mean() > 0.005  # lines and text, not blank
    assert "reward_mean" in out and "kl" in out and "policy_loss" in out
    curves = workflow.plot_run(run_dir, str(tmp_path / "again.png"))["curves"]
    records = workflow.read_metrics(run_dir)
    assert list(curves) == [title for title, _ in workflow.PANELS]
    assert curves["reward"]["reward_mean"] == ([1, 2, 3], [r["reward_mean"] for r in records])
    assert curves["KL to the reference (nats per completion)"]["kl"][1] == [r["kl"] for r in records]
    assert curves["losses"]["policy_loss"][1] == [r["policy_loss"] for r in records]


def test_plot_draws_a_reward_kl_frontier_from_its_json(tmp_path, capsys):
    import matplotlib.image

    points = [{"method": "dpo", "setting": 0.1, "seed": s, "reward": r, "kl": k}
              for s, (r, k) in enumerate([(0.5, 1.0), (0.7, 2.0)])]
    points += [{"method": "dpo", "setting": 1.0, "seed": 0, "reward": 0.4, "kl": 0.5},
               {"method": "ppo", "setting": 0.05, "seed": 0, "reward": 0.6, "kl": 3.0}]
    path = tmp_path / "frontier.json"
    path.write_text(json.dumps({"points": points}))
    assert cli.main(["plot", str(path)]) == 0
    assert "dpo, ppo" in capsys.readouterr().out and os.path.exists(tmp_path / "frontier_frontier.png")
    image = matplotlib.image.imread(str(tmp_path / "frontier_frontier.png"))
    assert image[..., :3].std() > 0.05  # drawn, not blank
    curves = workflow.plots.frontier_curves(points)
    # means over seeds, sorted by KL; the bars are the seed range
    assert curves["dpo"] == [(1.0, 0.5, 0.4, 0.4, 0.4), (0.1, 1.5, 0.6, 0.5, 0.7)]
    assert curves["ppo"] == [(0.05, 3.0, 0.6, 0.6, 0.6)]
    (tmp_path / "bad.json").write_text(json.dumps({"runs": []}))
    assert cli.main(["plot", str(tmp_path / "bad.json")]) == cli.EXIT_USAGE == 2
    assert "no 'points' list" in capsys.readouterr().err


def test_train_resumes_from_the_run_folders_checkpoint(run, tmp_path, config_file):
    run_dir, _ = run
    copy = str(tmp_path / "resumed")
    shutil.copytree(run_dir, copy)  # the shared run stays as it is
    rc, out, err = tf_rl_text_cmd("train", config_file, "--quick", "--set", "run.steps=5", "--run-dir", copy,
                                  "--no-progress")
    assert rc == 0, err
    assert f"resumed from {os.path.join(copy, 'checkpoints', f'ckpt-{STEPS}')} at step {STEPS}" in err
    assert "warm start" not in err  # the weights come from the checkpoint
    assert [r["step"] for r in workflow.read_metrics(copy)] == [1, 2, 3, 4, 5]
    assert re.search(r"^\s+resumed_from_step\s+3$", out, re.M)
    assert tf_rl_text.load(os.path.join(copy, "export")).metadata["updates"] == 5


def test_a_run_stopped_at_step_2_and_continued_ends_as_the_straight_run(run, tmp_path, config_file, monkeypatch):
    """Exact resume through the trainer base: `train --set run.steps=2`, then the module's own command
    (`--quick`, 3 steps) on the same folder, gives the straight 3-step run's metrics.jsonl (rewards,
    KL, losses, bit for bit) and the same exported weights and greedy tokens. In-process (the same
    workflow.train_run the CLI calls) to keep it cheap; the straight run is the module's subprocess run.
    The first part skips its export (as a run killed right after its step-2 checkpoint would)."""
    from tf_rl_text.trainers.base import Trainer

    straight_dir, _ = run
    stopped = str(tmp_path / "stopped")
    logs = []
    with monkeypatch.context() as m:
        m.setattr(Trainer, "export", lambda self, path=None, **kwargs: path)
        first = workflow.train_run(configfile.load_config(config_file, ["run.steps=2"], quick=True), stopped,
                                   progress=False, log=logs.append)
    assert first["steps"] == 2 and first["resumed_from_step"] is None and any("warm start" in m for m in logs)
    assert not os.path.exists(os.path.join(stopped, "export"))
    assert [r["step"] for r in workflow.read_metrics(stopped)] == [1, 2]
    logs.clear()
    second = workflow.train_run(configfile.load_config(config_file, quick=True), stopped, progress=False,
                                log=logs.append)
    assert second["steps"] == STEPS and second["resumed_from_step"] == 2
    assert f"resumed from {os.path.join(stopped, 'checkpoints', 'ckpt-2')} at step 2" in logs
    assert not any("warm start" in m for m in logs), logs  # the weights come from the checkpoint
    straight, resumed = workflow.read_metrics(straight_dir), workflow.read_metrics(stopped)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    for key in ("reward_mean", "kl", "policy_loss", "loss", "grad_norm"):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key
    a, b = tf_rl_text.load(os.path.join(straight_dir, "export")), tf_rl_text.load(os.path.join(stopped, "export"))
    assert b.metadata["updates"] == a.metadata["updates"] == STEPS
    for va, vb in zip(a.module.model_variables, b.module.model_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    prompts = ["the movie was", "my day", "i really enjoyed the"]
    assert b.generate(prompts) == a.generate(prompts)
    assert second["samples"] == json.load(open(os.path.join(straight_dir, "summary.json")))["samples"]


def test_unknown_field_exits_2_with_one_line_naming_it(config_file):
    rc, out, err = tf_rl_text_cmd("train", config_file, "--set", "no_such_field=1")
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and "no_such_field" in err and "Traceback" not in err, err


# --------------------------------------------------------------------------- in-process: the same main()
def _main(capsys, *argv):
    rc = cli.main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("edit, expected", [
    ({"trainer": {"learning_rate": "fast"}}, "trainer.learning_rate must be a number, got 'fast'"),
    ({"trainer": {"num_samples_per_prompt": 1.5}}, "trainer.num_samples_per_prompt must be an integer, got 1.5"),
    ({"trainer": {"baseline": "best"}}, "baseline must be one of"),
    ({"trainer": {"kl_coeff": 0.1}}, "unknown field trainer.kl_coeff (value 0.1); did you mean trainer.kl_coef?"),
    ({"run": {"steps": -1}}, "run: steps must be >= 0, got -1"),
    ({"run": {"batch_size": True}}, "run.batch_size must be an integer, got True"),
    ({"trainer": {"normalize_advantages": "yes"}}, "trainer.normalize_advantages must be true or false, got 'yes'"),
    ({"data": {"source": "file", "path": "no/such/file.jsonl"}}, "data.path"),
    ({"model": {"path": "no/such/folder"}}, "model.path"),
    ({"reward": {"name": "happiness"}}, "reward.name 'happiness' is not a reward"),
    ({"algorithm": "sarsa"}, "algorithm must be one of"),
    ({"runs": {}}, "unknown section 'runs'; did you mean run?"),
])
def test_config_mistakes_exit_2_with_one_line_naming_field_value_and_file(tmp_path, capsys, edit, expected):
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    for section, value in edit.items():
        raw[section] = {**raw[section], **value} if isinstance(value, dict) and section in raw else value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    rc, out, err = _main(capsys, "train", str(path), "--run-dir", str(tmp_path / "never"))
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err and str(path) in err, err
    assert not os.path.exists(tmp_path / "never")  # nothing ran


def test_set_values_are_typed_and_routed_to_their_section(config_file):
    cfg = configfile.load_config(config_file, ["trainer.kl_coef=0.2", "steps=7", "normalize_advantages=true",
                                               "trainer.max_grad_norm=null"])
    assert cfg.trainer.kl_coef == 0.2 and cfg.run.steps == 7 and cfg.trainer.normalize_advantages is True
    assert cfg.trainer.max_grad_norm is None
    assert configfile.load_config(config_file, quick=True).run.steps == STEPS
    with pytest.raises(configfile.ConfigError, match=r"learning_rate.*several sections|no section"):
        configfile.load_config(config_file, ["learning_rat=1"])


def test_json_configs_and_the_field_reference(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({**TINY, "algorithm": "ppo", "trainer": {"num_epochs": 2, "clip_range": 0.1}}))
    cfg = configfile.load_config(str(path))
    assert isinstance(cfg.trainer, tf_rl_text.PPOConfig) and cfg.trainer.clip_range == 0.1
    rc, out, _ = _main(capsys, "config", "ppo")
    assert rc == 0
    doc = configsections.field_docs(tf_rl_text.PPOConfig)["clip_range"]
    assert "clip_range (float, default 0.2)" in out and doc.split()[0] in out  # the docstring is the help
    assert "warm_start_steps (int, default 300)" in out and "classifier:" in out


def test_help_at_every_level_and_version(capsys):
    for argv in ([], ["train"], ["generate"], ["evaluate"], ["export"], ["plot"], ["config"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv + ["--help"])
        assert e.value.code == 0
        assert "usage: tf-rl-text" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"tf-rl-text {cli._version()}"


def test_every_shipped_config_validates_plain_and_quick():
    folder = os.path.join(REPO, "configs")
    files = sorted(f for f in os.listdir(folder) if f.endswith((".yaml", ".yml", ".json")))
    assert {"train_text_rl.yaml", "train_ppo.yaml", "train_q_learning.yaml", "positive_reviews.yaml",
            "translation.yaml", "summarization.yaml", "dialogue.yaml"} <= set(files)
    for name in files:
        for quick in (False, True):
            try:
                cfg = configfile.load_config(os.path.join(folder, name), quick=quick)
            except configfile.ConfigError as e:  # only real data that is not on this machine may be missing
                assert "TF_RL_TEXT_DATA" in str(e) or "does not exist" in str(e), e
                continue
            assert cfg.run.steps >= 1
