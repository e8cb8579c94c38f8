"""SavedModel export: plain TensorFlow in a fresh process returns the live agent's tokens;
the exported train_step trains the loaded variables."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_rl_text
from conftest import make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text.rewards import TokenFrequencyReward

PROMPTS = ["the movie was", "my day", "i really enjoyed the"]

FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf          # plain TensorFlow: tf_rl_text is never imported here
path, data = sys.argv[1], json.load(open(sys.argv[2]))
m = tf.saved_model.load(path)
ids, mask = tf.constant(data["ids"], tf.int32), tf.constant(data["mask"], tf.int32)
out = m.signatures["serving_default"](input_ids=ids, attention_mask=mask)
seqs = m.generate(ids, mask)["sequences"].numpy().tolist()
comp, cmask = tf.constant(data["completion_ids"]), tf.constant(data["completion_mask"])
adv = tf.constant(data["advantages"], tf.float32)
lp = m.log_probs(ids, mask, comp, cmask)["log_probs"].numpy().tolist()
before = [v.numpy().copy() for v in m.model_variables]
losses = [float(m.train_step(ids, mask, comp, cmask, adv)["loss"]) for _ in range(3)]
changed = sum(not np.allclose(a, v.numpy()) for a, v in zip(before, m.model_variables))
assert "tf_rl_text" not in sys.modules
print(json.dumps({"serving": out["sequences"].numpy().tolist(), "generate": seqs, "losses": losses,
                  "changed": changed, "n_vars": len(before), "log_probs": lp}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, TokenFrequencyReward(tokenizer, 264), batch_size=3, max_new_tokens=7)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, baseline="none"))
    trainer.train(3, progress=False)
    path = str(tmp_path_factory.mktemp("export") / "policy")
    trainer.export(path)
    return agent, trainer, path


def test_fresh_process_gets_the_live_agents_greedy_tokens_and_can_train(exported, tmp_path):
    agent, trainer, path = exported
    ids, mask = agent.encode_prompts(PROMPTS)
    live = agent.generate(ids, mask, 7, greedy=True).completion_ids.numpy()
    cmask = np.ones_like(live)
    data = {"ids": ids.tolist(), "mask": mask.tolist(), "completion_ids": live.tolist(),
            "completion_mask": cmask.tolist(), "advantages": cmask.astype(float).tolist()}
    live_lp = agent.log_probs(ids, mask, live, cmask).numpy()
    data_file = tmp_path / "batch.json"
    data_file.write_text(json.dumps(data))
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(script), path, str(data_file)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(out["generate"]), live)
    np.testing.assert_array_equal(np.array(out["serving"]), live)
    np.testing.assert_allclose(np.array(out["log_probs"]), live_lp, atol=1e-5)
    losses = out["losses"]
    assert losses[1] < losses[0] and losses[2] < losses[1], losses  # positive advantages: -logp falls
    assert out["changed"] >= out["n_vars"] - 2
    # the live model was not touched by the loaded copy's training
    live_after = agent.generate(ids, mask, 7, greedy=True).completion_ids.numpy()
    np.testing.assert_array_equal(live_after, live)


def test_tf_rl_text_load_generates_text_like_the_live_agent(exported):
    agent, _, path = exported
    policy = tf_rl_text.load(path)
    assert policy.generate(PROMPTS) == agent.generate_text(PROMPTS, max_new_tokens=7, greedy=True)
    assert len(policy.generate(["the movie was"], greedy=False, seed=3)) == 1
    assert os.path.exists(os.path.join(path, "assets", "tokenizer", "tokenizer.json"))
    meta = json.load(open(os.path.join(path, "assets", "tf_rl_text.json")))
    assert meta["algorithm"] == "reinforce" and meta["max_new_tokens"] == 7 and meta["updates"] == 3
    assert {"generate", "serving_default", "sample", "log_probs", "train_step"} <= set(policy.module.signatures)


def test_loading_a_folder_that_is_not_an_export_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a tf_rl_text SavedModel"):
        tf_rl_text.load(str(tmp_path))


def test_sharded_agent_exports_the_same_greedy_and_seeded_samples(tokenizer, tmp_path):
    """An agent that decodes in per-core shards (use_cores) exports and reloads with identical output."""
    agent = RLAgent(make_tiny_model(tokenizer, seed=1), tokenizer, seed=0, generation_shards=2)
    path = tf_rl_text.export_policy(agent, str(tmp_path / "sharded"), max_new_tokens=6)
    policy = tf_rl_text.load(path)
    assert policy.generate(PROMPTS) == agent.generate_text(PROMPTS, max_new_tokens=6, greedy=True)
    assert policy.generate(PROMPTS, greedy=False, seed=3) == agent.generate_text(PROMPTS, max_new_tokens=6, seed=3)
    plain = RLAgent(agent.model, tokenizer, seed=0, generation_shards=1)  # greedy does not depend on shards
    assert policy.generate(PROMPTS) == plain.generate_text(PROMPTS, max_new_tokens=6, greedy=True)


def test_extra_objects_are_saved_by_name_and_clashing_names_are_refused(tokenizer, tmp_path):
    from tf_rl_text._compat import tf

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    counter = tf.Variable(7.0)
    path = tf_rl_text.export_policy(agent, str(tmp_path / "p"), max_new_tokens=3, extra_objects={"counter": counter})
    assert float(tf.saved_model.load(path).counter.numpy()) == 7.0
    with pytest.raises(ValueError, match="'generate' is taken"):
        tf_rl_text.export_policy(agent, str(tmp_path / "q"), max_new_tokens=3, extra_objects={"generate": counter})
