"""LoRA with the trainers that are not policy gradient: Q-learning (every TD target, q_values "logits" and
"head") and the choice trainers. Only adapters (and a Q head) train, the base stays bit-equal, the target
network is the frozen base with a copy of the adapters (no second copy of the base weights), the TD target
bootstraps from those target adapters (by hand), runs resume exactly, and exports are the merged plain model."""
import json
import os

import numpy as np
import pytest

from test_choice import CANDIDATES, PROMPTS as CHOICE_PROMPTS, positive_pick, tiny_classifier
from test_q_learning import WORDS, check_td_step, match_reward, seeded_model, word_tokenizer  # noqa: F401
from tf_rl_text import (QLearningConfig, QLearningTrainer, ReinforceConfig, ReinforceTrainer, RLAgent,
                        TextGenerationEnv)
from tf_rl_text._compat import tf
from tf_rl_text.choice import INPUT_NAMES, ChoiceEnv
from tf_rl_text.export import METADATA_FILE
from tf_rl_text.lora import AdapterCopy, adapters_off
from tf_rl_text.trainers.choice import ChoiceReinforceTrainer

SEQUENCE = ["x", "c", "a", "b", "<eos>"]  # the demonstration "x" -> "c a b <eos>"


def lora_trainer(tokenizer, run_dir=None, **overrides):
    """Q-learning on the 6-word MDP (tests/test_q_learning.py) with rank-4 adapters on c_attn and c_fc."""
    agent = RLAgent(seeded_model(tokenizer, n_positions=16), tokenizer, seed=0)
    agent.attach_lora(rank=4, alpha=8, targets=["c_attn", "c_fc"])
    env = TextGenerationEnv(["x"], tokenizer, match_reward, batch_size=2, max_new_tokens=3, seed=0)
    settings = dict(target="q_learning", learning_rate=1e-2, epsilon=0.5, epsilon_final=0.5, num_samples_per_prompt=2,
                    batch_size=4, updates_per_step=1, target_update_period=2, loss="mse")
    settings.update(overrides)
    return QLearningTrainer(agent, env, QLearningConfig(**settings), run_dir=run_dir, checkpoint_every=1)


def values(variables):
    return [v.numpy().copy() for v in variables]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind, overrides", [
    ("q_learning", {}),
    ("sarsa", {}),
    ("expected_sarsa", {"epsilon": 0.3, "epsilon_final": 0.3}),
    ("soft", {}),
])
def test_lora_td_update_bootstraps_from_the_target_adapters_by_hand(word_tokenizer, kind, overrides):
    """The online adapters are moved away from the target's copy (B = 0 there): the trainer's TD targets,
    Q(s_t, a_t) and loss equal hand-computed ones with bootstrap values from the base + target adapters; the
    update moves only the online adapters (base weights bit-equal, target adapters unchanged)."""
    gamma = 0.5
    trainer = lora_trainer(word_tokenizer, target=kind, gamma=gamma, collect_rollouts=False, target_update_period=100,
                           **overrides)
    agent, lora = trainer.agent, trainer.agent.lora
    assert isinstance(trainer.target_model, AdapterCopy) and trainer.target_model.model is agent.model
    assert trainer.policy.trainable_variables == lora.trainable_variables  # the adapters only
    base = values(agent.model.variables)
    trainer.add_demonstrations(["x"], ["c a b"], rewards=[1.0])  # every minibatch row is this episode
    for i, b in enumerate(lora.b):  # move the online adapters away from the target's copy (a seeded draw)
        b.assign(tf.random.stateless_normal(b.shape, [1, i]))
    online_adapters, target_adapters = values(lora.trainable_variables), values(trainer.target_model.variables)
    sequence = tf.constant([[WORDS.index(w) for w in SEQUENCE]])
    actions = [WORDS.index(w) for w in SEQUENCE[1:]]  # a_0..a_3; Q(s_t, .) is read at position t
    online = agent.model(sequence, training=False).logits[0].numpy()  # (5, V), the adapters on
    target = trainer.target_model(sequence, training=False).logits[0].numpy()
    with adapters_off():
        plain = agent.model(sequence, training=False).logits[0].numpy()
    np.testing.assert_allclose(target, plain, atol=1e-6)  # the target copy still has B = 0
    assert np.abs(online - plain).max() > 0.1  # the online adapters are not the target's
    stats, want, targets = check_td_step(trainer, online, target, actions, gamma, kind, overrides.get("epsilon"))
    # bootstrapping from the online adapters would show (a mean off by > 300x the tolerance above)
    assert abs(targets(online).mean() - want.mean()) > 0.01 and np.abs(targets(online) - want).max() > 0.05
    assert stats["target_synced"] == 0.0 and stats["grad_norm"] > 0
    assert_same(values(agent.model.variables), base)  # the base never moves
    assert_same(values(trainer.target_model.variables), target_adapters)  # nor the target, between syncs
    assert all(not np.array_equal(a, b) for a, b in zip(online_adapters, values(lora.trainable_variables)))


def test_lora_q_head_target_holds_adapters_and_head_only_syncs_and_exports_the_merged_policy(word_tokenizer,
                                                                                              tmp_path):
    trainer = lora_trainer(word_tokenizer, q_values="head", target="soft", learning_rate=3e-2)
    agent, lora, target = trainer.agent, trainer.agent.lora, trainer.target_model
    assert len(lora.paths) == 2  # c_attn, c_fc of the one block
    # the target network: a copy of A and B of each adapted projection and of the Q head, no base weight
    ids = {v.ref() for v in agent.model.variables}
    assert not any(v.ref() in ids for v in target.variables)
    assert isinstance(target.lm, AdapterCopy) and len(target.variables) == 2 * 2 + 2
    nbytes = lambda vs: sum(int(np.prod(v.shape)) * v.dtype.size for v in vs)  # noqa: E731
    head = trainer.q_model.head.variables
    # float32: c_attn 32x4 + 4x96, c_fc 32x4 + 4x128, the head 32x6 + 6
    assert nbytes(target.variables) == nbytes(lora.trainable_variables) + nbytes(head) == 4 * (512 + 640 + 198)
    # 5,400 of the model's 53,888 bytes (10.0% for this 32-wide toy; rank 8 on GPT-2 124M: ~0.3%); a whole
    # copy of the network, as without LoRA, would be 101.5%
    assert nbytes(agent.model.variables) == 53888 and nbytes(target.variables) < 0.11 * 53888
    assert [v.name for v in trainer.policy.trainable_variables] == [v.name for v in lora.trainable_variables + head]

    online_vars, target_vars = trainer._online_variables, trainer._target_variables  # the sync's pairs
    assert [v.name for v in target_vars] == [v.name for v in target.variables]
    base, start = values(agent.model.variables), values(target_vars)
    first = trainer.step()  # update 1 of target_update_period=2: no sync
    assert first["target_synced"] == 0.0
    assert_same(values(target_vars), start)
    moved = [not np.array_equal(a, b) for a, b in zip(start, values(online_vars))]
    assert moved == [False, False, True, True, True, True]  # A0, A1 get no gradient while B = 0; B0, B1, the head
    second = trainer.step()  # update 2: the target copies the online adapters and head
    assert second["target_synced"] == 1.0
    assert_same(values(target_vars), values(online_vars))
    assert all(not np.array_equal(a, b) for a, b in zip(start, values(online_vars)))  # the A's too, by now
    assert_same(values(agent.model.variables), base)

    ids_, mask = trainer.policy.encode_prompts(["x", "x b"])
    live = trainer.policy.generate(ids_, mask, 3, greedy=True).completion_ids.numpy()
    live_q = trainer.q_values(ids_, mask).numpy()
    with adapters_off():
        plain_q = trainer.q_values(ids_, mask).numpy()
    assert np.abs(live_q - plain_q).max() > 1e-3  # the adapters matter to Q: the export has to merge them
    path = trainer.export(str(tmp_path / "q"))
    loaded = tf.saved_model.load(path)
    assert {"generate", "q_values"} <= set(loaded.signatures) and "train_step" not in loaded.signatures
    assert "sync_target_network" not in loaded.signatures and not hasattr(loaded, "target_variables")
    assert len(loaded.model_variables) == len(agent.model.variables) + 2  # the plain LM + the Q head
    out = loaded.generate(tf.constant(ids_), tf.constant(mask))["sequences"].numpy()
    np.testing.assert_array_equal(out, live)
    np.testing.assert_allclose(loaded.q_values(tf.constant(ids_), tf.constant(mask))["q_values"].numpy(), live_q,
                               atol=1e-5)
    with open(os.path.join(path, METADATA_FILE)) as f:
        assert json.load(f)["lora"]["train_step"] == "left out: it trains adapters"
    assert_same(values(agent.model.variables), base)  # unmerged again after the export


def test_lora_q_learning_resumes_exactly(word_tokenizer, tmp_path):
    """Stopped after 1 step and resumed to 2 = 2 steps straight: online adapters, target adapters (synced at
    update 2), the optimizer's moments (else the step-2 update differs) and the logged statistics."""
    straight = lora_trainer(word_tokenizer)
    straight.train(2, progress=False)
    lora_trainer(word_tokenizer, run_dir=str(tmp_path)).train(1, progress=False)
    resumed = lora_trainer(word_tokenizer, run_dir=str(tmp_path))
    assert resumed.global_step == 1 and resumed.restored_from.endswith("ckpt-1")
    assert all(np.abs(b.numpy()).max() > 0 for b in resumed.agent.lora.b)  # the adapters came back
    resumed.train(2, progress=False)
    assert resumed.history[-1]["target_synced"] == 1.0
    for a, b in [(straight.agent.lora.trainable_variables, resumed.agent.lora.trainable_variables),
                 (straight.target_model.variables, resumed.target_model.variables)]:
        for x, y in zip(values(a), values(b)):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    last = {k: v for k, v in straight.history[-1].items() if k != "step_time_s"}
    np.testing.assert_allclose([resumed.history[-1][k] for k in sorted(last)], [last[k] for k in sorted(last)],
                               rtol=1e-6, atol=1e-6)
    assert straight.history[0]["loss"] != last["loss"]  # the two steps differ: the comparison can fail


def test_a_resumed_lora_reinforce_run_gets_its_adapters_back(word_tokenizer, tmp_path):
    """The checkpoint holds agent.lora (the model's variables do not include the adapters): before, a resumed
    LoRA REINFORCE run restarted at B = 0 while its global step said 1."""
    def build():
        agent = RLAgent(seeded_model(word_tokenizer, n_positions=16), word_tokenizer, seed=0)
        agent.attach_lora(rank=2, targets=["c_attn"])
        env = TextGenerationEnv(["x"], word_tokenizer, match_reward, batch_size=2, max_new_tokens=3, seed=0)
        return ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-2, num_samples_per_prompt=2),
                                run_dir=str(tmp_path), checkpoint_every=1)

    first = build()
    first.train(1, progress=False)
    resumed = build()
    assert resumed.global_step == 1
    assert np.abs(first.agent.lora.b[0].numpy()).max() > 0
    assert_same(values(resumed.agent.lora.trainable_variables), values(first.agent.lora.trainable_variables))


def test_choice_trainer_trains_adapters_and_exports_the_merged_classifier(tokenizer, tmp_path):
    import tf_rl_text

    agent = RLAgent(tiny_classifier(tokenizer), tokenizer, seed=0)
    lora = agent.attach_lora(rank=2)  # BERT's default targets: query and value
    assert [p.split("/")[-1] for p in lora.paths] == ["query", "value"]
    base = values(agent.model.variables)
    env = ChoiceEnv(CHOICE_PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=4, max_length=16)
    trainer = ChoiceReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-2))
    trainer.step()
    assert_same(values(agent.model.variables), base)
    assert all(np.abs(b.numpy()).max() > 0 for b in lora.b)
    for i, b in enumerate(lora.b):  # larger adapters, so merged vs unmerged shows in the probabilities
        b.assign(tf.random.stateless_normal(b.shape, [2, i]))
    prompts, cands = CHOICE_PROMPTS[:4], CANDIDATES[:4]
    inputs, choice_mask = agent.encode(prompts, cands)
    live = agent.probabilities(inputs, choice_mask)
    args = [tf.constant(inputs[k]) for k in INPUT_NAMES] + [tf.constant(choice_mask)]
    with adapters_off():  # eager: the switch acts (agent.probabilities runs a graph traced with the adapters on)
        plain = tf.nn.softmax(agent.choice_logits(*args)).numpy()
    assert np.abs(plain - live).max() > 2e-4  # small (the toy classifier's head starts near 0), 100x the tolerance
    path = trainer.export(str(tmp_path / "chooser"))  # failed before: the adapters were untracked in the graph
    loaded = tf_rl_text.load(path)
    np.testing.assert_allclose(loaded.scores(prompts, cands)["probabilities"], live, atol=2e-6)
    assert "train_step" not in tf.saved_model.load(path).signatures
    assert loaded.metadata["lora"]["merged"] is True
    assert_same(values(agent.model.variables), base)


def test_adapters_attached_after_the_trainer_is_built_are_refused(word_tokenizer):
    agent = RLAgent(seeded_model(word_tokenizer, n_positions=16), word_tokenizer, seed=0)
    env = TextGenerationEnv(["x"], word_tokenizer, match_reward, batch_size=2, max_new_tokens=3, seed=0)
    trainer = QLearningTrainer(agent, env, QLearningConfig(batch_size=2))
    agent.attach_lora(rank=2)  # too late: the trainer's target network and optimizer are the full model's
    with pytest.raises(ValueError, match=r"attached to the agent after QLearningTrainer was built.*"
                                         r"call agent.attach_lora\(...\) first, then build the QLearningTrainer"):
        trainer.step()
