"""Callbacks: TensorBoard scalars and text samples, the JSONL log across a resume, EvalCallback
keeping the best weights, the hook order."""
import glob
import json
import os

import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.callbacks import Callback, EvalCallback, JSONLLogger, LambdaCallback, TensorBoard

PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed"]


def length_reward(completions, prompts, references):
    return [len(c.split()) / 4.0 for c in completions]


def reinforce(tokenizer, run_dir=None):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=4, seed=0)
    return ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, kl_coef=0.1), run_dir=run_dir,
                            checkpoint_every=1)


def read_events(folder):
    scalars, texts = {}, {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "text":
                    texts.setdefault(value.tag, {})[event.step] = tensor.item().decode()
                else:
                    scalars.setdefault(value.tag, {})[event.step] = float(tensor)
    return scalars, texts


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        self.calls.append("begin")

    def on_step_end(self, step, logs):
        self.calls.append(("step", step, logs["update"]))

    def on_train_end(self, logs):
        self.calls.append(("end", logs["update"]))


def test_tensorboard_scalars_and_samples_and_the_hook_order(tokenizer, tmp_path):
    trainer = reinforce(tokenizer, run_dir=str(tmp_path / "run"))
    recorder, old = Recorder(), []
    out = trainer.train(2, progress=False, callbacks=[TensorBoard(samples_every=2), recorder,
                                                      LambdaCallback(on_step_end=lambda step, logs: old.append(logs))])
    assert recorder.calls == ["begin", ("step", 1, 1), ("step", 2, 2), ("end", 2)]
    assert old == out == trainer.history  # a plain function, wrapped
    with pytest.raises(TypeError, match="wrap a function in LambdaCallback"):
        trainer.train(3, progress=False, callbacks=[print])
    scalars, texts = read_events(str(tmp_path / "run" / "tensorboard"))
    for tag in ("rollout/reward_mean", "objective/kl", "loss/policy", "policy/entropy", "time/step_s", "lr",
                "optim/grad_norm"):
        assert sorted(scalars[tag]) == [1, 2], tag
    assert scalars["rollout/reward_mean"][2] == pytest.approx(trainer.history[1]["reward_mean"])
    assert scalars["objective/kl"][2] == pytest.approx(trainer.history[1]["kl"]) and scalars["objective/kl"][2] > 0
    assert scalars["lr"][1] == pytest.approx(1e-2)
    table = texts["samples/completions"][2]
    assert table.startswith("| prompt | completion | reward |") and trainer.env.completions[0] in table


def test_jsonl_log_drops_the_lines_a_resumed_run_replays(tokenizer, tmp_path):
    run = str(tmp_path / "run")
    path = os.path.join(run, "metrics.jsonl")
    first = reinforce(tokenizer, run_dir=run)
    first.train(2, progress=False, callbacks=[JSONLLogger()])
    with open(path, "a") as f:  # a crash after step 3 was logged but before its checkpoint was written
        f.write(json.dumps({"step": 3, "reward_mean": 123.0}) + "\n" + '{"step": 4, "rew')
    resumed = reinforce(tokenizer, run_dir=run)
    resumed.train(3, progress=False, callbacks=[JSONLLogger()])
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[2]["reward_mean"] == pytest.approx(resumed.history[2]["reward_mean"]) != 123.0
    assert rows[0]["loss"] == pytest.approx(first.history[0]["loss"])


def test_eval_callback_keeps_and_restores_the_best_weights(tokenizer, tmp_path, with_run_dir=True):
    trainer = reinforce(tokenizer, run_dir=str(tmp_path / "run") if with_run_dir else None)
    scores = iter([0.5, 0.9, 0.1, 0.3])  # at the start, after steps 1, 2, 3: step 1 is the best
    weights = {}

    def score(t):
        weights[t.global_step] = [v.numpy() for v in t.agent.model.weights]
        return {"score": next(scores)}

    seen = []
    listener = LambdaCallback(on_eval_end=lambda step, logs: seen.append((step, logs["score"])))
    evaluation = EvalCallback(None, metrics=score, every=1, keep_best="score")
    trainer.train(3, progress=False, callbacks=[evaluation, listener])
    assert evaluation.best_step == 1 and evaluation.best_score == 0.9
    assert seen == [(0, 0.5), (1, 0.9), (2, 0.1), (3, 0.3)]
    for v, w in zip(trainer.agent.model.weights, weights[1]):
        np.testing.assert_array_equal(v.numpy(), w)
    assert not all(np.array_equal(a, b) for a, b in zip(weights[1], weights[3]))
    if with_run_dir:
        with open(tmp_path / "run" / "best" / "best.json") as f:
            assert json.load(f) == {"score": 0.9, "step": 1, "metric": "score"}
