"""A run folder under faults (issue 30): nothing trained is lost and nothing is silently wrong.

A damaged or missing checkpoint index, a deleted newest checkpoint, a resume with another algorithm,
a second process, a torn metrics line, a scratch folder reused three times, a serving export of a
run that kept an earlier step, a swapped tokenizer in an export, a YAML key given twice."""
import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import yaml

import tf_rl_text
from conftest import make_tiny_model
from tf_rl_text import A2CConfig, A2CTrainer, ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text.callbacks import JSONLLogger
from tf_rl_text.checkpoint import RunFolderLockedError, RunMismatchError, checkpoint_steps, run_folder_lock

PROMPTS = ["the movie was", "my day", "i think", "the food"]


def reward_fn(completions, prompts, references):
    return [len(c) / 10 for c in completions]


def make_trainer(tokenizer, run_dir, cls=ReinforceTrainer, config=None, **kwargs):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, reward_fn, batch_size=2, max_new_tokens=3, seed=0)
    config = config or ReinforceConfig(baseline="moving_average", learning_rate=1e-2)
    return cls(agent, env, config, run_dir=str(run_dir), checkpoint_every=1, **kwargs)


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory):
    """A REINFORCE run folder with checkpoints of steps 1, 2, 3 and a metrics.jsonl (never mutated)."""
    run_dir = tmp_path_factory.mktemp("runs") / "base"
    trainer = make_trainer(tokenizer, run_dir, keep_checkpoints=3)
    trainer.train(3, callbacks=[JSONLLogger()], progress=False)
    return str(run_dir), [w.copy() for w in trainer.agent.model.get_weights()]


def copy_run(trained, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(trained[0], run_dir)
    return run_dir


# --------------------------------------------------------------------------- the checkpoint index
@pytest.mark.parametrize("damage", ["missing", "empty", "garbage"])
def test_a_damaged_index_resumes_from_the_newest_checkpoint_files(trained, tmp_path, tokenizer, damage):
    run_dir = copy_run(trained, tmp_path)
    index = os.path.join(run_dir, "checkpoints", "checkpoint")
    if damage == "missing":
        os.remove(index)
    else:
        with open(index, "w") as f:
            f.write("" if damage == "empty" else "model_checkpoint_path: {{{ not a proto")
    with pytest.warns(UserWarning, match=r"checkpoints/checkpoint .*rebuilt it from the checkpoint files there "
                                         r"\(steps \[1, 2, 3\]\); the run resumes from step 3"):
        trainer = make_trainer(tokenizer, run_dir)
    assert trainer.global_step == 3 and trainer.restored_from.endswith("ckpt-3")
    for a, b in zip(trainer.agent.model.get_weights(), trained[1]):
        assert (a == b).all()
    assert checkpoint_steps(os.path.join(run_dir, "checkpoints")) == [1, 2, 3]


def test_a_rebuilt_index_still_lets_keep_checkpoints_delete_the_old_ones(trained, tmp_path, tokenizer):
    """An index rebuilt without timestamps made TensorFlow's CheckpointManager keep every checkpoint it named for
    ever: after a kill between a checkpoint's files and its index, old checkpoints piled up (the SIGKILL test)."""
    run_dir = copy_run(trained, tmp_path)
    os.remove(os.path.join(run_dir, "checkpoints", "checkpoint"))
    with pytest.warns(UserWarning, match="rebuilt it from the checkpoint files"):
        trainer = make_trainer(tokenizer, run_dir, keep_checkpoints=3)
    trainer.train(5, progress=False)
    assert checkpoint_steps(os.path.join(run_dir, "checkpoints")) == [3, 4, 5]  # 1 and 2 deleted, as keep says


def test_the_cli_check_and_the_restore_agree_when_the_newest_checkpoint_is_gone(trained, tmp_path, tokenizer):
    from tf_rl_text.workflow import has_checkpoint

    run_dir = copy_run(trained, tmp_path)
    for name in os.listdir(os.path.join(run_dir, "checkpoints")):
        if name.startswith("ckpt-3."):
            os.remove(os.path.join(run_dir, "checkpoints", name))
    with pytest.warns(UserWarning, match=r"names ckpt-3 .* the files on disk are \['ckpt-1', 'ckpt-2'\]"):
        assert has_checkpoint(run_dir)  # the CLI's question: yes, a run to resume
    trainer = make_trainer(tokenizer, run_dir)
    assert trainer.global_step == 2  # the trainer's answer: the same run, at its newest complete checkpoint


# --------------------------------------------------------------------------- resuming with other settings
def test_resuming_with_another_algorithm_or_baseline_is_refused_by_name(trained, tmp_path, tokenizer):
    run_dir = copy_run(trained, tmp_path)
    with pytest.raises(RunMismatchError, match=r"holds a REINFORCE run, and this is a A2C trainer \(A2CTrainer\)"):
        make_trainer(tokenizer, run_dir, A2CTrainer, A2CConfig())
    with pytest.raises(RunMismatchError, match=r"baseline: 'moving_average' in the checkpoint, 'none' now"):
        make_trainer(tokenizer, run_dir, config=ReinforceConfig(baseline="none", learning_rate=1e-2))
    assert make_trainer(tokenizer, run_dir).global_step == 3  # the same settings resume


# --------------------------------------------------------------------------- two processes
def test_a_second_process_on_a_run_folder_stops_naming_the_first(trained, tmp_path, tokenizer):
    run_dir = copy_run(trained, tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        import socket

        with open(os.path.join(run_dir, ".lock"), "w") as f:
            json.dump({"pid": other.pid, "host": socket.gethostname(), "since": "2026-12-06 10:00:00"}, f)
        trainer = make_trainer(tokenizer, run_dir)
        before = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
        with pytest.raises(RunFolderLockedError, match=rf"process {other.pid} has been training into it since "
                                                       r"2026-12-06 10:00:00"):
            trainer.train(5, progress=False)
        assert trainer.global_step == 3 and sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == before
    finally:
        other.kill()
        other.wait()
    # the holder was killed: its stale lock is taken over (with a warning), the run goes on, the lock goes away
    with pytest.warns(UserWarning, match=rf"taking over the lock of process {other.pid}, which no longer runs"):
        trainer.train(4, progress=False)
    assert trainer.global_step == 4 and not os.path.exists(os.path.join(run_dir, ".lock"))


def test_the_lock_is_reentrant_and_released(tmp_path):
    run_dir = str(tmp_path / "r")
    with run_folder_lock(run_dir):
        with open(os.path.join(run_dir, ".lock")) as f:
            assert json.load(f)["pid"] == os.getpid()
        with run_folder_lock(run_dir):  # the same process again (train_run, then trainer.train)
            pass
        assert os.path.exists(os.path.join(run_dir, ".lock"))
    assert not os.path.exists(os.path.join(run_dir, ".lock"))


# --------------------------------------------------------------------------- logs
def test_a_torn_metrics_line_is_rebuilt_from_the_checkpoint_on_resume(trained, tmp_path, tokenizer):
    from tf_rl_text.workflow import read_metrics

    run_dir = copy_run(trained, tmp_path)
    path = os.path.join(run_dir, "metrics.jsonl")
    lines = open(path).read().splitlines()
    original = [json.loads(x) for x in lines]
    with open(path, "w") as f:  # a kill while step 3's line was written
        f.write("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(UserWarning, match=r"metrics.jsonl, line 3: not a whole JSON line"):
        assert [r["step"] for r in read_metrics(run_dir)] == [1, 2]  # the plot skips it, saying so
    trainer = make_trainer(tokenizer, run_dir)
    with pytest.warns(UserWarning, match=r"metrics.jsonl, line 3: not a whole JSON line .* rebuilt from the checkpoint"):
        trainer.train(4, callbacks=[JSONLLogger()], progress=False)
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[2] == original[2]  # step 3, exactly as it was logged, back from the checkpoint's history


# --------------------------------------------------------------------------- config files
def test_a_yaml_key_given_twice_is_refused_with_its_lines(tmp_path):
    from tf_rl_text.configfile import ConfigError, read_file

    path = tmp_path / "dup.yaml"
    path.write_text("algorithm: reinforce\ntrainer:\n  learning_rate: 1.0e-3\nrun:\n  steps: 3\n"
                    "trainer:\n  kl_coef: 0.1\n")
    with pytest.raises(ConfigError, match=r"dup.yaml, line 6: 'trainer' is given twice \(first on line 2\)"):
        read_file(str(path))
    path.write_text("run:\n  steps: 3\n  steps: 4\n")
    with pytest.raises(ConfigError, match=r"line 3: 'steps' is given twice \(first on line 2\)"):
        read_file(str(path))
    (tmp_path / "dup.json").write_text('{"run": {"steps": 3}, "run": {"steps": 4}}')
    with pytest.raises(ConfigError, match=r"'run' is given twice"):
        read_file(str(tmp_path / "dup.json"))


# --------------------------------------------------------------------------- exports
def test_an_export_with_a_swapped_or_edited_tokenizer_is_refused_at_load(tokenizer, tmp_path):
    from tf_rl_text.defaults import train_tokenizer
    from tf_rl_text.export import TOKENIZER_DIR, export_policy

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    path = export_policy(agent, str(tmp_path / "export"), max_new_tokens=3)
    assert tf_rl_text.load(path).generate(["the movie was"]) == agent.generate_text(["the movie was"], 3)
    folder = os.path.join(path, TOKENIZER_DIR)
    # swapped: another tokenizer of another size
    saved = str(tmp_path / "saved_tok")
    shutil.copytree(folder, saved)
    other = train_tokenizer(["a b c d e f g", "h i j k"] * 10, vocab_size=300)
    shutil.rmtree(folder)
    other.save_pretrained(folder)
    with pytest.raises(ValueError, match=r"the tokenizer in assets/tokenizer has \d+ tokens, the model was exported "
                                         r"with a tokenizer of 512"):
        tf_rl_text.load(path)
    # edited: the same size, two tokens' ids swapped
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    spec = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    a, b = sorted(vocab, key=vocab.get)[100:102]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    json.dump(spec, open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8"))
    with pytest.raises(ValueError, match=r"is not the one the model was exported with \(its vocabulary differs"):
        tf_rl_text.load(path)


# --------------------------------------------------------------------------- the workflow (the CLI's code path)
TINY = {
    "algorithm": "reinforce",
    "model": {"layers": 1, "width": 32},
    "data": {"source": "prompts"},
    "reward": {"name": "sentiment"},
    "trainer": {"learning_rate": 1e-3, "baseline": "rloo", "num_samples_per_prompt": 2},
    "run": {"steps": 2, "warm_start_steps": 3, "batch_size": 2, "max_new_tokens": 4, "seed": 0, "checkpoint_every": 1,
            "eval_metrics": "reward", "keep_best": "reward", "eval_every": 1},
}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


def test_a_run_whose_index_is_damaged_resumes_through_the_workflow_without_a_new_before(config_file, tmp_path):
    from tf_rl_text import configfile, workflow

    run_dir = str(tmp_path / "run")
    workflow.train_run(configfile.load_config(config_file), run_dir, progress=False, log=lambda *a: None)
    before = open(os.path.join(run_dir, "before.json")).read()
    os.remove(os.path.join(run_dir, "checkpoints", "checkpoint"))
    logs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = workflow.train_run(configfile.load_config(config_file, ["run.steps=3"]), run_dir, progress=False,
                                     log=logs.append)
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 3
    assert not any(m.startswith("warm start") for m in logs), logs  # the weights came from the checkpoint
    assert open(os.path.join(run_dir, "before.json")).read() == before  # the run's own "before" is kept
    assert [r["step"] for r in workflow.read_metrics(run_dir) if "eval" not in r] == [1, 2, 3]


def test_a_run_that_trained_but_has_no_complete_checkpoint_is_not_overwritten(config_file, tmp_path):
    from tf_rl_text import configfile, workflow
    from tf_rl_text.configfile import ConfigError

    run_dir = str(tmp_path / "run")
    workflow.train_run(configfile.load_config(config_file), run_dir, progress=False, log=lambda *a: None)
    for name in os.listdir(os.path.join(run_dir, "checkpoints")):
        if ".data-" in name:
            os.remove(os.path.join(run_dir, "checkpoints", name))
    metrics = open(os.path.join(run_dir, "metrics.jsonl")).read()
    with pytest.raises(ConfigError, match=r"holds a run \(checkpoint files in .*, none complete\) but no complete "
                                          r"checkpoint to resume it from"):
        workflow.train_run(configfile.load_config(config_file), run_dir, progress=False, log=lambda *a: None)
    assert open(os.path.join(run_dir, "metrics.jsonl")).read() == metrics


def test_a_scratch_folder_keeps_every_earlier_run(config_file, tmp_path):
    from tf_rl_text import configfile, workflow

    run_dir = str(tmp_path / "example")
    cfg = configfile.load_config(config_file)
    logs = []
    for _ in range(3):
        workflow.train_run(cfg, run_dir, progress=False, log=logs.append, scratch=True)
    assert sorted(os.listdir(tmp_path)) == ["example", "example.old", "example.old2"]
    assert f"{run_dir} held a finished run; moved it to {run_dir}.old2 (nothing deleted) and starting a new run" in logs


def test_the_serving_export_of_a_run_is_the_model_the_run_kept(config_file, tmp_path, monkeypatch):
    """keep_best kept the warm start (every RL step scored lower); `tf-rl-text export --serving-only` exported the
    latest checkpoint instead. Now both exports are the kept model, and say which step it is."""
    from tf_rl_text import configfile, workflow
    from tf_rl_text.trainers.base import Trainer

    monkeypatch.setattr(Trainer, "evaluate", lambda self, *a, **k: -float(self.global_step))  # dev falls with RL
    run_dir = str(tmp_path / "run")
    summary = workflow.train_run(configfile.load_config(config_file), run_dir, progress=False, log=lambda *a: None)
    assert summary["kept"] == "the warm-started model" and summary["rl_discarded"] is True
    logs = []
    out = workflow.export_run(run_dir, str(tmp_path / "serving"), serving_only=True, log=logs.append)
    assert any("exporting the model the run kept: step 0" in m for m in logs), logs
    own, serving = tf_rl_text.load(summary["export"]), tf_rl_text.load(out)
    assert (own.metadata["step"], own.metadata["latest_step"]) == (0, 2)
    assert (serving.metadata["step"], serving.metadata["latest_step"]) == (0, 2)
    for a, b in zip(own.module.model_variables, serving.module.model_variables):
        assert (a.numpy() == b.numpy()).all()


def test_a_tie_on_the_kept_metric_says_rl_was_discarded_and_why(config_file, tmp_path, monkeypatch):
    from tf_rl_text import configfile, workflow
    from tf_rl_text.trainers.base import Trainer

    monkeypatch.setattr(Trainer, "evaluate", lambda self, *a, **k: 0.0)  # unsmoothed BLEU on a small dev set
    summary = workflow.train_run(configfile.load_config(config_file), str(tmp_path / "run"), progress=False,
                                 log=lambda *a: None)
    assert summary["rl_discarded"] is True
    assert "RL was discarded on a tie: every dev check, the warm start's included, scored exactly 0.0000" in \
        summary["rl_note"]


# --------------------------------------------------------------------------- a reward that never returns
def hanging_after(n, send_signal=False):
    calls = {"n": 0}

    def slow_reward(completions, prompts, references):
        import signal
        import time

        calls["n"] += 1
        if calls["n"] > n:
            if send_signal:
                os.kill(os.getpid(), signal.SIGTERM)  # the job scheduler's SIGTERM, while the reward hangs
            time.sleep(30)
        return [len(c) / 10 for c in completions]

    return slow_reward


def test_a_hung_reward_fails_the_batch_by_name_after_reward_timeout_s(tokenizer):
    import time

    from tf_rl_text.env import RewardTimeoutError

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, hanging_after(1), batch_size=2, max_new_tokens=3,
                            reward_timeout_s=0.5)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="none"))
    trainer.train(1, progress=False)
    start = time.monotonic()
    with pytest.raises(RewardTimeoutError, match=r"reward_fn slow_reward did not return within reward_timeout_s=0.5 s "
                                                 r"on batch 2; nothing was trained on this batch"):
        trainer.train(1, progress=False)
    assert time.monotonic() - start < 10 and trainer.global_step == 1
    with pytest.raises(ValueError, match=r"reward_timeout_s must be a number of seconds > 0 .* got 0"):
        TextGenerationEnv(PROMPTS, tokenizer, reward_fn, reward_timeout_s=0)


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_sigterm_during_a_hung_reward_saves_the_last_complete_step(tokenizer, tmp_path, timeout):
    """Without a timeout the signal interrupts the reward function itself; with one, the wait for its thread. Either
    way the abandoned batch leaves no trace: the checkpoint is step 2's state, the env's cursor included."""
    run_dir = tmp_path / "run"
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, hanging_after(2, send_signal=True), batch_size=2, max_new_tokens=3,
                            seed=0, reward_timeout_s=timeout)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="none"), run_dir=str(run_dir),
                               checkpoint_every=10)
    with pytest.raises(SystemExit) as stop:
        trainer.train(5, progress=False)
    assert stop.value.code == 143
    assert checkpoint_steps(str(run_dir / "checkpoints")) == [2]
    straight = make_trainer(tokenizer, tmp_path / "straight", config=ReinforceConfig(baseline="none"))
    straight.train(2, progress=False)
    resumed = make_trainer(tokenizer, run_dir, config=ReinforceConfig(baseline="none"))
    assert resumed.global_step == 2 and resumed.env.state_dict() == straight.env.state_dict()
    for a, b in zip(resumed.agent.model.get_weights(), straight.agent.model.get_weights()):
        assert (a == b).all()


# --------------------------------------------------------------------------- clear errors
@pytest.fixture(scope="module")
def wf_run(config_file, tmp_path_factory):
    from tf_rl_text import configfile, workflow

    run_dir = str(tmp_path_factory.mktemp("wf") / "run")
    workflow.train_run(configfile.load_config(config_file), run_dir, progress=False, log=lambda *a: None)
    return run_dir


def test_a_missing_or_damaged_config_yaml_is_named(wf_run, config_file, tmp_path):
    from tf_rl_text import configfile, workflow
    from tf_rl_text.configfile import ConfigError

    run_dir = str(tmp_path / "run")
    shutil.copytree(wf_run, run_dir)
    record = os.path.join(run_dir, "config.yaml")
    with open(record, "w") as f:
        f.write("run: {steps: [1, 2\n")
    cfg = configfile.load_config(config_file)
    with pytest.raises(ConfigError, match=r"config.yaml is damaged \(.*\); put back the run's config.yaml"):
        workflow.claim_run_dir(cfg, run_dir)
    os.remove(record)
    with pytest.raises(ConfigError, match=r"holds checkpoints but no config.yaml"):
        workflow.claim_run_dir(cfg, run_dir)


def test_export_into_the_run_folder_itself_is_refused(wf_run):
    from tf_rl_text import cli

    assert cli.main(["export", wf_run, wf_run]) == 2
    assert os.path.exists(os.path.join(wf_run, "checkpoints"))


def test_a_relative_data_variable_is_read_from_the_working_directory(tmp_path, monkeypatch):
    from tf_rl_text.configfile import _resolve_path

    (tmp_path / "work" / "data").mkdir(parents=True)
    (tmp_path / "configs").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("TF_RL_TEXT_DATA", "data")
    got = _resolve_path("$TF_RL_TEXT_DATA/multi30k", str(tmp_path / "configs"))
    assert got == str(tmp_path / "work" / "data" / "multi30k")


def test_a_full_disk_during_export_is_an_oserror_that_keeps_the_previous_export(tokenizer, tmp_path, monkeypatch):
    import errno

    from tf_rl_text._compat import tf
    from tf_rl_text.export import export_policy

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    path = export_policy(agent, str(tmp_path / "export"), max_new_tokens=2)

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "tmp/variables.data: No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", full)
    with pytest.raises(OSError, match=r"no space left on the device while exporting .* the previous export at that "
                                      r"path is kept") as err:
        export_policy(agent, path, max_new_tokens=2)
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert tf_rl_text.load(path).generate(["my day"]) == agent.generate_text(["my day"], 2)


def test_generate_text_names_a_none_prompt(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    with pytest.raises(ValueError, match=r"prompts\[1\] must be a string, got NoneType"):
        agent.generate_text(["my day", None], 2)


# --------------------------------------------------------------------------- a user's own reward in a config
def test_a_custom_reward_named_module_colon_function_runs_the_whole_cli_path(tmp_path):
    from tf_rl_text import configfile, workflow
    from tf_rl_text.configfile import ConfigError

    (tmp_path / "my_rewards.py").write_text(
        "def letters(completions, prompts, references, letter='e', scale=1.0):\n"
        "    return [scale * c.count(letter) for c in completions]\n\n"
        "class Length:\n"
        "    def __init__(self, per_char=0.1):\n"
        "        self.per_char = per_char\n"
        "    def __call__(self, completions, prompts, references):\n"
        "        return [self.per_char * len(c) for c in completions]\n")
    spec = dict(TINY, reward={"name": "my_rewards:letters", "letter": "a", "scale": 2.0})
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(spec))
    cfg = configfile.load_config(str(path))  # the module sits beside the config: found there
    reward = workflow.build_reward(cfg.reward, cfg, log=lambda *a: None)
    assert reward(["banana", "kiwi"], ["p", "q"], [None, None]) == [6.0, 0.0] and reward.__name__ == "letters"
    cls = workflow.build_reward({"name": "my_rewards:Length", "per_char": 0.5}, cfg)
    assert cls(["abcd"], ["p"], [None]) == [2.0]
    summary = workflow.train_run(cfg, str(tmp_path / "run"), progress=False, log=lambda *a: None)
    assert summary["steps"] == 2 and "reward_after" in summary
    out = workflow.export_run(str(tmp_path / "run"), str(tmp_path / "serving"), serving_only=True, log=lambda *a: None)
    assert tf_rl_text.load(out).metadata["latest_step"] == summary["steps"]
    for name, message in (("no_such_module:f", r"no module 'no_such_module'"),
                          ("my_rewards:nothing", r"my_rewards has no 'nothing' \(it defines Length, letters\)"),
                          ("my rewards:f", r"is not MODULE:NAME")):
        with pytest.raises(ConfigError, match=message):
            bad = tmp_path / "bad.yaml"
            bad.write_text(yaml.safe_dump(dict(TINY, reward={"name": name})))
            workflow.build_reward(configfile.load_config(str(bad)).reward, configfile.load_config(str(bad)))


# --------------------------------------------------------------------------- the CLI as a user meets it
def test_evaluate_reads_a_headerless_tsv_and_truncates_as_train_did(wf_run, tmp_path, capsys):
    from tf_rl_text import cli

    export = os.path.join(wf_run, "export")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("the movie was really very good and long\ta great film\nmy day\twas fine\n")
    assert cli.main(["evaluate", export, "--data", str(tsv), "--no-header", "--metrics", "length", "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["num_examples"] == 2.0
    assert cli.main(["evaluate", export, "--data", str(tsv), "--no-header", "--max-source-tokens", "2", "--metrics",
                     "sacrebleu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_examples"] == 2.0
    # with a header row expected, the first line's cells are taken as column names, and the error shows them
    assert cli.main(["evaluate", export, "--data", str(tsv), "--metrics", "length"]) == 2
    assert "column 'prompt' not found; columns present: ['the movie was really very good and long', 'a great film']" \
        in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["evaluate", export, "--data", str(tsv), "--temperature", "0.5"])  # greedy only: no such flag
    assert "unrecognized arguments: --temperature" in capsys.readouterr().err


def test_a_bad_set_value_is_blamed_on_the_set_not_the_file(config_file):
    from tf_rl_text import configfile
    from tf_rl_text.configfile import ConfigError

    with pytest.raises(ConfigError, match=r"^--set run.steps=-3: run: steps must be >= 0, got -3 \(the value comes from "
                                          r"--set, not from .*tiny.yaml\)"):
        configfile.load_config(config_file, ["run.steps=-3"])
    with pytest.raises(ConfigError, match=r"^--set run.batch_size=two: run.batch_size must be an integer"):
        configfile.load_config(config_file, ["run.steps=5", "run.batch_size=two"])


def test_the_plot_shows_the_dev_evaluations_and_says_when_there_is_no_kl_penalty(wf_run, tmp_path):
    from tf_rl_text import workflow

    out = workflow.plot_run(wf_run, str(tmp_path / "p.png"))
    curves = out["curves"]
    assert curves["KL to the reference (nats per completion)"] == {}  # kl_coef 0: a note, not a flat line
    dev = curves["held-out evaluation (dev set)"]["reward"]
    evals = [r for r in workflow.read_metrics(wf_run) if "eval" in r]
    assert dev == ([r["step"] for r in evals], [r["eval"]["reward"] for r in evals]) and dev[0][0] == 0
    assert os.path.getsize(out["path"]) > 10_000


def test_the_kl_panel_reads_kl_coef_from_the_logs_of_every_algorithm(tmp_path):
    """kl_coef is the one name every algorithm logs its KL coefficient under (GRPO's too, whose config also
    accepts TRL's beta): the plot draws the KL of a run that logged one > 0 and says "no KL penalty" for a run
    without one (kl_coef 0, or an algorithm such as Q-learning that logs none)."""
    import json

    from tf_rl_text import workflow

    runs = {"grpo": [{"step": s, "reward_mean": 0.1 * s, "kl": 0.01 * s, "kl_coef": 0.04, "loss": 1.0}
                     for s in (1, 2)],
            "q_learning": [{"step": s, "reward_mean": 0.1 * s, "loss": 1.0, "td_error": 0.5} for s in (1, 2)]}
    for name, records in runs.items():
        os.makedirs(tmp_path / name)
        with open(tmp_path / name / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    grpo = workflow.plot_run(str(tmp_path / "grpo"), str(tmp_path / "g.png"))["curves"]
    assert grpo["KL to the reference (nats per completion)"]["kl"] == ([1, 2], [0.01, 0.02])
    q = workflow.plot_run(str(tmp_path / "q_learning"), str(tmp_path / "q.png"))["curves"]
    assert q["KL to the reference (nats per completion)"] == {}


def test_the_progress_rate_leaves_out_the_first_traced_step():
    import time

    from tf_rl_text.callbacks import ProgressBar

    class Run:
        global_step, target_step, algorithm = 0, 50, "REINFORCE"

    bar = ProgressBar()
    bar.on_train_begin(Run())
    time.sleep(0.5)  # the first step: tracing
    bar.on_step_end(1, {})
    for step in range(2, 6):
        time.sleep(0.01)
        bar.on_step_end(step, {})
    d = bar.bar.format_dict
    assert d["initial"] == 1 and d["n"] == 5 and d["elapsed"] < 0.4  # the clock restarted after step 1
    bar.on_train_end({})


def test_one_registry_of_algorithms_feeds_the_config_loader_and_the_cli():
    from tf_rl_text import A2CConfig, PPOTrainer, QLearningConfig, ReinforceTrainer, cli, configsections
    from tf_rl_text.trainers import registry

    assert registry.names() == ("reinforce", "a2c", "ppo", "q_learning", "grpo", "online_dpo", "dpo")
    assert registry.trainer_class("ppo") is PPOTrainer and registry.trainer_class("reinforce") is ReinforceTrainer
    assert registry.config_class("a2c") is A2CConfig and configsections.algorithm_config_class("q_learning") is QLearningConfig
    with pytest.raises(ValueError, match=r"algorithm must be one of \['reinforce', 'a2c', 'ppo', 'q_learning', 'grpo', 'online_dpo', 'dpo'\], "
                                         r"got 'dqn'"):
        registry.trainer_class("dqn")
    parser = cli.build_parser()
    config_cmd = parser._subparsers._group_actions[0].choices["config"]
    assert [a for a in config_cmd._actions if a.dest == "algorithm"][0].choices == list(registry.names())


def test_one_registry_of_rewards_feeds_the_config_loader_the_help_and_the_run_builder(tmp_path):
    from tf_rl_text import configfile, configsections
    from tf_rl_text.configfile import ConfigError
    from tf_rl_text.rewards import registry

    assert registry.names() == ("sentiment", "lexicon", "bleu", "rouge", "similarity", "classifier", "reward_model",
                                "composite")
    help_text = configsections.describe("reinforce")
    assert all(f"\n  {name}: {entry.help}" in help_text for name, entry in registry.REWARDS.items())
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: reinforce\nreward: {name: blue}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: reward.name 'blue' is not a reward; choose from \['sentiment'"):
        configfile.load_config(str(bad))
    bleu = registry.build({"name": "bleu", "max_n": 2, "scale": 3.0})
    assert (bleu.max_n, bleu.scale) == (2, 3.0) and bleu(["a b c"], None, ["a b c"]) == [pytest.approx(3.0)]
    mixed = registry.build({"name": "composite", "components": [
        {"name": "lexicon", "positive": ["good"], "negative": ["bad"]},
        {"name": "lexicon", "positive": ["fine"], "weight": 0.5}]})
    assert mixed(["good", "bad fine", "fine"], None, None) == pytest.approx([1.0, -0.5, 0.5])  # 1*lex1 + 0.5*lex2
    with pytest.raises(ConfigError, match=r"x.yaml: reward lexicon: .*unexpected keyword argument 'postive'"):
        registry.build({"name": "lexicon", "postive": ["good"]}, registry.BuildContext(source="x.yaml"))
