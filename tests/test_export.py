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


def test_loaded_policy_and_agent_share_one_greedy_vs_sampling_rule(exported):
    """Greedy by default for both; any sampling argument samples; the loaded policy's sampled tokens are
    the live agent's for the same seed and temperature, and max_new_tokens cuts to a shorter run's tokens."""
    agent, _, path = exported
    policy = tf_rl_text.load(path)
    greedy = agent.generate_text(PROMPTS, max_new_tokens=7, greedy=True)
    assert agent.generate_text(PROMPTS, max_new_tokens=7) == greedy == policy.generate(PROMPTS)
    hot = policy.generate(PROMPTS, temperature=1.5)                    # a sampling argument: sampled, seed 0
    assert hot == policy.sample(PROMPTS, seed=0, temperature=1.5) == policy.generate(PROMPTS, greedy=False,
                                                                                     temperature=1.5)
    assert hot == agent.generate_text(PROMPTS, max_new_tokens=7, seed=0, temperature=1.5)  # the live agent's tokens
    assert hot != greedy                                               # not greedy text in disguise
    assert policy.sample(PROMPTS, seed=3) == policy.generate(PROMPTS, seed=3) == \
        agent.generate_text(PROMPTS, max_new_tokens=7, seed=3)         # temperature: the agent's 1.0
    assert policy.sample(PROMPTS, seed=3, top_k=0) == policy.sample(PROMPTS, seed=3)  # the exported top_k (0)
    # max_new_tokens below the exported 7: the same tokens as a 3-token run of the live agent
    assert policy.sample(PROMPTS, seed=3, max_new_tokens=3) == agent.generate_text(PROMPTS, max_new_tokens=3, seed=3)
    assert policy.generate(PROMPTS, max_new_tokens=2) == agent.generate_text(PROMPTS, max_new_tokens=2)
    assert policy.generate([]) == [] and len(policy.generate("the movie was")) == 1


@pytest.mark.parametrize("call, message", [
    (lambda p: p.generate(PROMPTS, temperature=0.0), r"temperature must be a finite number > 0 .*got 0\.0"),
    (lambda p: p.generate(PROMPTS, greedy=False, temperature=-1.0), r"temperature must be .*got -1\.0"),
    (lambda p: p.sample(PROMPTS, temperature=float("nan")), r"temperature must be a finite number > 0.*got nan"),
    (lambda p: p.generate(PROMPTS, greedy=True, temperature=1.5),
     r"temperature=1\.5 only applies to sampling, but greedy=True; pass greedy=False"),
    (lambda p: p.generate(PROMPTS, top_k=-1), r"top_k must be an integer >= 0 .*got -1"),
    (lambda p: p.sample(PROMPTS, top_k=5), r"top_k=5: this export's sample signature has no top_k input, its "
                                           r"top_k is fixed at 0 when it was exported.*RLAgent\(\.\.\., top_k=5\)"),
    (lambda p: p.generate(PROMPTS, max_new_tokens=0), r"max_new_tokens must be >= 1, got 0"),
    (lambda p: p.sample(PROMPTS, max_new_tokens=8), r"max_new_tokens must be <= 7 \(the most this policy was "
                                                    r"exported to generate; export again .*got 8"),
    (lambda p: p.sample(PROMPTS, seed=2**40), r"seed must be an integer in \[-2\*\*31, 2\*\*31\), got 1099511627776"),
    (lambda p: p.agent.generate_text(PROMPTS, temperature=-1.0), r"temperature must be .*got -1\.0"),
    (lambda p: p.agent.generate_text(PROMPTS, greedy=True, top_k=3), r"top_k=3 only applies to sampling"),
])
def test_loaded_policy_and_agent_refuse_bad_sampling_arguments_by_name(exported, call, message):
    agent, _, path = exported
    policy = _loaded(path)
    policy.agent = agent
    with pytest.raises(ValueError, match=message):
        call(policy)


_LOADED = {}


def _loaded(path):
    if path not in _LOADED:
        _LOADED[path] = tf_rl_text.load(path)
    return _LOADED[path]


def test_an_export_that_records_no_sampling_settings_still_loads_and_samples(exported, tmp_path):
    """Exports written before the description recorded temperature/top_k: sampling works with temperature 1.0,
    and a top_k it cannot honour is refused rather than ignored."""
    import shutil

    agent, _, path = exported
    old = str(tmp_path / "old")
    shutil.copytree(path, old)
    meta_file = os.path.join(old, "assets", "tf_rl_text.json")
    meta = json.load(open(meta_file))
    del meta["temperature"], meta["top_k"]
    json.dump(meta, open(meta_file, "w"))
    policy = tf_rl_text.load(old)
    assert policy.sample(PROMPTS, seed=3) == agent.generate_text(PROMPTS, max_new_tokens=7, seed=3)
    with pytest.raises(ValueError, match=r"top_k=2: .*fixed when it was exported \(this export does not record"):
        policy.sample(PROMPTS, top_k=2)


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
