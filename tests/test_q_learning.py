"""Value-based trainers: hand-computed TD targets for all four targets, a tiny text MDP solved by
Q-learning, soft Q-learning from demonstrations alone, the target network schedule, the Q head,
the replay buffer, and the SavedModel round trip in a process that never imports tf_rl_text."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_rl_text import RLAgent, TextGenerationEnv, default_model, ops
from tf_rl_text._compat import keras, tf
from tf_rl_text.heads import QHead
from tf_rl_text.trainers.q_learning import QLearningConfig, QLearningTrainer
from tf_rl_text.trainers.q_policy import completion_q_values
from tf_rl_text.replay import ReplayBuffer

def seeded_model(tokenizer, **kwargs):
    """A tiny GPT-2 with reproducible weights (default_model seeds Python, NumPy and TF)."""
    return default_model(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=0, **kwargs)


# --------------------------------------------------------------------------- TD targets by hand
# 2 sequences x 3 tokens, 3 actions. Row 0 is full (its token 2 is terminal); row 1 ended after
# 2 tokens (token 1 terminal, token 2 padding). R = 1 for row 0, -1 for row 1, at the last token.
TARGET_Q = np.array([[[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [2.0, 2.0, 1.0]],
                     [[0.0, 1.0, 4.0], [1.0, 0.0, -2.0], [9.0, 9.0, 9.0]]], np.float32)  # (B, T, V)
ACTIONS = np.array([[2, 0, 1], [1, 2, 0]], np.int32)
MASK = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
REWARDS = np.array([1.0, -1.0], np.float32)
GAMMA = 0.5


def lse(*xs):
    return math.log(sum(math.exp(x) for x in xs))


HAND_TARGETS = {
    # y_t = r_t + gamma V(s_{t+1});  y at the last token = R;  0 on padding
    "q_learning": [[0.5 * 3.0, 0.5 * 2.0, 1.0],             # max of rows t=1, t=2
                   [0.5 * 1.0, -1.0, 0.0]],
    "sarsa": [[0.5 * 0.5, 0.5 * 2.0, 1.0],                  # Q(s1, a1=0) = 0.5, Q(s2, a2=1) = 2
              [0.5 * -2.0, -1.0, 0.0]],                     # Q(s1, a1=2) = -2
    # epsilon-greedy with eps = 0.3: 0.8 on the argmax (first on ties), 0.1 elsewhere
    "expected_sarsa": [[0.5 * (0.8 * 3.0 + 0.1 * 0.5 + 0.1 * -1.0), 0.5 * (0.8 * 2.0 + 0.1 * 2.0 + 0.1 * 1.0), 1.0],
                       [0.5 * (0.8 * 1.0 + 0.1 * 0.0 + 0.1 * -2.0), -1.0, 0.0]],
    "soft": [[0.5 * lse(0.5, -1.0, 3.0), 0.5 * lse(2.0, 2.0, 1.0), 1.0],
             [0.5 * lse(1.0, 0.0, -2.0), -1.0, 0.0]],
}


@pytest.mark.parametrize("kind", sorted(HAND_TARGETS))
def test_td_targets_match_hand_computed_values(kind):
    rewards = ops.last_token_rewards(tf.constant(REWARDS), tf.constant(MASK))  # [[0,0,1],[0,-1,0]]
    np.testing.assert_allclose(rewards.numpy(), [[0, 0, 1], [0, -1, 0]])
    probs = ops.epsilon_greedy_probs(tf.constant(TARGET_Q), 0.3) if kind == "expected_sarsa" else None
    y = ops.q_td_targets(tf.constant(TARGET_Q), tf.constant(ACTIONS), rewards, tf.constant(MASK), gamma=GAMMA,
                         kind=kind, policy_probs=probs)
    np.testing.assert_allclose(y.numpy(), HAND_TARGETS[kind], rtol=1e-5, atol=1e-6)


def test_td_target_helpers_by_hand():
    q = tf.constant([[1.0, 3.0, 3.0]])
    np.testing.assert_allclose(ops.epsilon_greedy_probs(q, 0.6).numpy(), [[0.2, 0.6, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(ops.boltzmann_probs(tf.constant([[0.0, math.log(3.0)]]), 1.0).numpy(), [[0.25, 0.75]],
                               rtol=1e-6)
    # tau logsumexp(Q / tau) with tau = 2: 2 * log(e^0.5 + e^1.5 + e^1.5)
    np.testing.assert_allclose(ops.soft_state_values(q, 2.0).numpy(), [2 * lse(0.5, 1.5, 1.5)], rtol=1e-6)
    # gamma = 1, one row of 2 live tokens then padding: y = [0 + V1, R], V from values
    y = ops.td_targets(tf.constant([[0.0, 2.0, 0.0]]), tf.constant([[5.0, 7.0, 11.0]]), tf.constant([[1.0, 1.0, 0.0]]))
    np.testing.assert_allclose(y.numpy(), [[7.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match="kind must be one of"):
        ops.bootstrap_values(q[None], "double_q")
    with pytest.raises(ValueError, match="policy_probs"):
        ops.bootstrap_values(q[None], "expected_sarsa")


def test_td_loss_by_hand():
    q = tf.constant([[1.0, 0.0, 5.0]])
    y = tf.constant([[0.5, 3.0, 0.0]])
    m = tf.constant([[1.0, 1.0, 0.0]])  # errors 0.5 and -3 count, the padded one not
    mse, info = ops.td_loss(q, y, m, "mse")
    assert float(mse) == pytest.approx((0.5 * 0.25 + 0.5 * 9.0) / 2)
    huber, _ = ops.td_loss(q, y, m, "huber", huber_delta=1.0)
    assert float(huber) == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)
    assert float(info["td_error"]) == pytest.approx(1.75)


# --------------------------------------------------------------------------- a tiny text MDP
WORDS = ["<eos>", "<pad>", "a", "b", "c", "x"]


@pytest.fixture(scope="module")
def word_tokenizer():
    """A 6-word tokenizer: actions are eos, pad, a, b, c, x (whitespace-separated words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<eos>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<eos>", pad_token="<pad>", model_max_length=16)


OPTIMUM = ["c", "a", "b"]


def match_reward(completions, prompts=None, references=None):
    """Deterministic MDP reward: the fraction of the 3 positions that hold "c a b" (max 1.0)."""
    return [sum(i < len(c.split()) and c.split()[i] == w for i, w in enumerate(OPTIMUM)) / 3.0 for c in completions]


def mdp_trainer(tokenizer, **overrides):
    agent = RLAgent(seeded_model(tokenizer, n_positions=16), tokenizer, seed=0)
    env = TextGenerationEnv(["x"], tokenizer, match_reward, batch_size=2, max_new_tokens=3, seed=0)
    settings = dict(target="q_learning", learning_rate=3e-3, epsilon=0.5, epsilon_final=0.5,
                    num_samples_per_prompt=4, batch_size=32, updates_per_step=4, target_update_period=10, loss="mse")
    settings.update(overrides)
    return QLearningTrainer(agent, env, QLearningConfig(**settings))


@pytest.fixture(scope="module")
def solved_mdp(word_tokenizer):
    """Q-learning on the MDP for 80 steps from seed 0: (trainer, greedy reward before training)."""
    trainer = mdp_trainer(word_tokenizer)
    before = trainer.evaluate()
    for _ in range(80):
        trainer.step()
    return trainer, before


def test_q_learning_greedy_policy_reaches_the_optimum_of_a_text_mdp(solved_mdp):
    trainer, before = solved_mdp
    after = trainer.evaluate()
    assert before < 0.5
    assert after >= 0.95, (after, trainer.agent.generate_text(["x"], 3, greedy=True))
    assert trainer.agent.generate_text(["x"], 3, greedy=True) == ["c a b"]  # the agent's own greedy decode
    # at the last state the best word (Q* = 1) stands above every other (Q* = 2/3)
    ids, mask = trainer.policy.encode_prompts(["x c a"])
    q_last = trainer.q_values(ids, mask).numpy()[0, -1]
    assert int(np.argmax(q_last)) == WORDS.index("b")


def test_target_network_is_fixed_between_syncs_and_equal_right_after(word_tokenizer):
    trainer = mdp_trainer(word_tokenizer, target_update_period=3, collect_rollouts=False, batch_size=4,
                          updates_per_step=1)
    trainer.add_demonstrations(["x"], ["c a b"], rewards=[1.0])

    def weights(variables):
        return [v.numpy().copy() for v in variables]

    def same(a, b):
        return all(np.array_equal(x, y) for x, y in zip(a, b))

    online, target = trainer.policy.model.variables, trainer.target_model.variables
    start = weights(target)
    assert same(start, weights(online))  # a copy at construction
    for update in (1, 2):
        stats = trainer.step()
        assert stats["target_synced"] == 0.0
        assert same(weights(target), start), f"target moved at update {update}"
        assert not same(weights(online), start), "the online network must move"
    stats = trainer.step()  # update 3: sync
    assert stats["target_synced"] == 1.0
    assert same(weights(target), weights(online))
    assert not same(weights(target), start)
    # optimizer slots built up front: the update runner's graph is traced once
    assert [f.experimental_get_tracing_count() for f in trainer._update_fns.values()] == [1]


def test_polyak_target_update_by_hand(word_tokenizer):
    trainer = mdp_trainer(word_tokenizer, target_update_tau=0.25, target_update_period=1)
    online, target = trainer.policy.model.variables, trainer.target_model.variables
    for o in online:
        o.assign(o + 1.0)
    before = [t.numpy().copy() for t in target]
    trainer.sync_target_network()
    for t, o, b in zip(target, online, before):
        np.testing.assert_allclose(t.numpy(), 0.25 * o.numpy() + 0.75 * b, rtol=1e-5, atol=1e-6)


def test_epsilon_greedy_and_boltzmann_acting(word_tokenizer):
    trainer = mdp_trainer(word_tokenizer, epsilon=0.0, epsilon_final=0.0)
    greedy = trainer.policy.generate(*trainer.policy.encode_prompts(["x"] * 4), max_new_tokens=3, greedy=True)
    explore = trainer.policy.generate(*trainer.policy.encode_prompts(["x"] * 4), max_new_tokens=3, seed=3)
    np.testing.assert_array_equal(greedy.completion_ids.numpy(), explore.completion_ids.numpy())  # eps = 0 is greedy
    trainer.policy.epsilon.assign(1.0)  # uniform: 64 draws differ from the greedy rows
    uniform = trainer.policy.generate(*trainer.policy.encode_prompts(["x"] * 64), max_new_tokens=3, seed=3)
    assert len({tuple(r) for r in uniform.completion_ids.numpy()}) > 10
    boltz = mdp_trainer(word_tokenizer, exploration="boltzmann", temperature=0.5)
    q = tf.constant([[0.0, math.log(2.0)]])
    np.testing.assert_allclose(boltz.policy.policy_probs(q).numpy(), [[0.2, 0.8]], rtol=1e-5)


# --------------------------------------------------------------------------- TD targets through the trainer
def perturb(variables, seed):
    """Move the online network away from the target network (a fixed, seeded perturbation)."""
    rng = np.random.RandomState(seed)
    for v in variables:
        v.assign(v.numpy() + rng.normal(0.0, 0.3, v.shape).astype(v.dtype.as_numpy_dtype))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def hand_td_targets(q_next_bar, q_next_online, actions_next, kind, epsilon=None, temperature=None):
    """The bootstrap value at s_{t+1} by hand from (V,) Q-rows: Q_bar for the value, the online Q for
    the acting policy that expected SARSA averages over."""
    if kind == "q_learning":
        return q_next_bar.max()
    if kind == "sarsa":
        return q_next_bar[actions_next]
    if kind == "soft":
        return np.log(np.exp(q_next_bar).sum())
    if temperature is not None:  # expected SARSA under Boltzmann exploration: softmax(Q / tau)
        pi = softmax(q_next_online / temperature)
    else:  # under epsilon-greedy: 1 - eps on argmax Q, eps / V on every action
        pi = np.full(len(q_next_online), epsilon / len(q_next_online))
        pi[np.argmax(q_next_online)] += 1 - epsilon
    return float(pi @ q_next_bar)


def check_td_step(trainer, online, target, actions, gamma, kind, epsilon=None, temperature=None):
    """One trainer step on the one-demonstration episode (4 actions, R = 1 at the last): its reported TD
    target, Q(s_t, a_t) and MSE loss equal the hand-computed ones from the (5, V) online and target Q-rows.
    Returns (stats, the hand targets, and the function computing targets from any Q-rows)."""
    def targets(q_bar):
        y = [gamma * hand_td_targets(q_bar[t + 1], online[t + 1], actions[t + 1] if t < 3 else None, kind,
                                     epsilon, temperature) for t in range(3)]
        return np.array(y + [1.0])  # the last token: the reward, no bootstrap

    want = targets(target)
    q_taken = online[np.arange(4), actions]
    stats = trainer.step()
    assert stats["target"] == pytest.approx(want.mean(), rel=1e-4)
    assert stats["q_taken"] == pytest.approx(q_taken.mean(), rel=1e-4)
    assert stats["loss"] == pytest.approx(np.mean(0.5 * (q_taken - want) ** 2), rel=1e-4)
    return stats, want, targets


@pytest.mark.parametrize("kind, overrides", [
    ("q_learning", {}),
    ("sarsa", {}),
    ("expected_sarsa", {"epsilon": 0.3, "epsilon_final": 0.3}),
    ("expected_sarsa", {"exploration": "boltzmann", "temperature": 0.5}),
])
def test_td_update_through_the_trainer_bootstraps_from_the_target_network_by_hand(word_tokenizer, kind, overrides):
    """One TD update on one demonstration ("x" -> "c a b <eos>", R = 1): the targets, Q(s_t, a_t) and the
    loss the trainer reports equal hand-computed values, with bootstrap values from the target network
    (here deliberately different from the online network) and the acting policy from the online one."""
    gamma = 0.5
    trainer = mdp_trainer(word_tokenizer, target=kind, gamma=gamma, collect_rollouts=False, batch_size=4,
                          updates_per_step=1, target_update_period=100, loss="mse", **overrides)
    trainer.add_demonstrations(["x"], ["c a b"], rewards=[1.0])  # every minibatch row is this episode
    perturb(trainer.agent.model.trainable_variables, seed=1)
    sequence = [WORDS.index(w) for w in ["x", "c", "a", "b", "<eos>"]]
    actions = sequence[1:]  # a_0..a_3; Q(s_t, .) is read at position t (the prompt is one token)
    online = trainer.agent.model(tf.constant([sequence]), training=False).logits[0].numpy()  # (5, V)
    target = trainer.target_model(tf.constant([sequence]), training=False).logits[0].numpy()
    stats, want, targets = check_td_step(trainer, online, target, actions, gamma, kind, overrides.get("epsilon"),
                                         overrides.get("temperature"))
    assert stats["target_synced"] == 0.0
    assert abs(targets(online).mean() - want.mean()) > 0.05  # bootstrapping from the online net would show


@pytest.mark.parametrize("overrides", [{"epsilon": 0.3, "epsilon_final": 0.3},
                                       {"exploration": "boltzmann", "temperature": 0.05}])
def test_trainer_collects_episodes_with_its_exploration_policy(word_tokenizer, overrides):
    """The episodes a step stores are drawn from epsilon-greedy (epsilon strictly between 0 and 1) or
    Boltzmann softmax(Q / tau) over the online Q-values: first-token frequencies over 3000 episodes. (The
    seeded model's Q-values at "x" lie within 0.25 of each other: tau = 0.05 spreads them over ~5 nats.)"""
    rows = 3000  # the env draws 2 prompts ("x" twice) a step, 1500 samples each
    trainer = mdp_trainer(word_tokenizer, num_samples_per_prompt=rows // 2, batch_size=4, updates_per_step=1,
                          learning_rate=1e-3, **overrides)
    q0 = trainer.agent.model(tf.constant([[WORDS.index("x")]]), training=False).logits[0, -1].numpy()
    if "temperature" in overrides:
        want, control = softmax(q0 / 0.05), softmax(q0)
    else:
        want = np.full(len(WORDS), 0.3 / len(WORDS))
        want[np.argmax(q0)] += 0.7
        control = np.eye(len(WORDS))[np.argmax(q0)]  # greedy
    assert np.abs(want - control).max() > 0.1 and np.abs(want - 1 / len(WORDS)).max() > 0.1
    trainer.step()
    assert len(trainer.replay) == rows
    first = trainer.replay.completion_ids.numpy()[:rows, 0]
    np.testing.assert_allclose(np.bincount(first, minlength=len(WORDS)) / rows, want, atol=0.035)


def test_epsilon_decays_linearly(word_tokenizer):
    trainer = mdp_trainer(word_tokenizer, epsilon=0.5, epsilon_final=0.1, epsilon_decay_steps=4,
                          collect_rollouts=False, batch_size=2, updates_per_step=1)
    assert trainer.policy.epsilon.numpy() == pytest.approx(0.5)
    np.testing.assert_allclose([trainer.epsilon_at(k) for k in range(6)], [0.5, 0.4, 0.3, 0.2, 0.1, 0.1], atol=1e-6)
    trainer.add_demonstrations(["x"], ["c a b"], rewards=[1.0])
    assert trainer.step()["epsilon"] == pytest.approx(0.4)  # the acting policy's epsilon follows


# --------------------------------------------------------------------------- demonstrations
PROMPTS = ["the movie was", "the food was", "the staff were", "the trip was"]
REFERENCES = ["wonderful and fun.", "fresh and tasty.", "kind and helpful.", "relaxing and cheap."]


def unigram_f1(completions, prompts=None, references=None):
    out = []
    for c, r in zip(completions, references):
        a, b = c.split(), r.split()
        common = sum(min(a.count(w), b.count(w)) for w in set(a))
        out.append(0.0 if not common else 2 * common / (len(a) + len(b)))
    return out


def test_soft_q_learning_from_demonstrations_alone_moves_greedy_output_toward_them(tokenizer):
    agent = RLAgent(seeded_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, unigram_f1, references=REFERENCES, batch_size=4, max_new_tokens=8)
    trainer = QLearningTrainer(agent, env, QLearningConfig(
        target="soft", collect_rollouts=False, learning_rate=3e-3, batch_size=16, target_update_period=10,
        reward_scale=10.0))
    assert trainer.add_demonstrations() == 4  # the env's references, scored by its reward (F1 = 1)
    np.testing.assert_allclose(trainer.demonstrations.rewards.numpy(), 1.0)
    before = trainer.evaluate()
    for _ in range(80):
        trainer.step()
    after = trainer.evaluate()
    assert len(trainer.replay) == 0  # no reward-seeking rollouts were made
    assert before < 0.2
    assert after >= before + 0.4, (before, after, agent.generate_text(PROMPTS, 8, greedy=True))


def test_add_demonstrations_checks_inputs_and_grows(tokenizer):
    agent = RLAgent(seeded_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, unigram_f1, batch_size=2, max_new_tokens=8)
    trainer = QLearningTrainer(agent, env, QLearningConfig(collect_rollouts=False))
    with pytest.raises(ValueError, match="no references"):
        trainer.add_demonstrations()
    with pytest.raises(ValueError, match="one completion per prompt"):
        trainer.add_demonstrations(["a"], ["b", "c"])
    with pytest.raises(ValueError, match="nothing to learn from"):
        trainer.step()
    assert trainer.add_demonstrations(["the movie was"], ["fun."], rewards=[0.5]) == 1
    assert trainer.add_demonstrations(["the"], ["a much longer demonstration text"]) == 2  # widths grow
    demos = trainer.demonstrations
    assert float(demos.rewards[0]) == 0.5 and float(demos.rewards[1]) == pytest.approx(1.0)  # F1 vs itself
    eos_at = int(demos.completion_mask[0].numpy().sum()) - 1
    assert int(demos.completion_ids[0, eos_at]) == tokenizer.eos_token_id  # a demonstration ends with EOS


# --------------------------------------------------------------------------- replay buffer
def test_replay_buffer_is_a_ring_and_samples_what_it_holds():
    buf = ReplayBuffer(capacity=3, prompt_length=2, completion_length=2, pad_token_id=9, seed=0)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)
    buf.add([[5]], [[1]], [[1, 2]], [[1, 1]], [0.0])  # narrower prompt: left padded with 9
    np.testing.assert_array_equal(buf.prompt_ids[0].numpy(), [9, 5])
    np.testing.assert_array_equal(buf.prompt_mask[0].numpy(), [0, 1])
    buf.add([[1, 1]] * 3, [[1, 1]] * 3, [[3, 0]] * 3, [[1, 0]] * 3, [1.0, 2.0, 3.0])  # wraps around
    assert len(buf) == 3
    np.testing.assert_array_equal(sorted(buf.rewards.numpy()), [1.0, 2.0, 3.0])  # the oldest (0.0) is gone
    batch = buf.sample(50)
    assert set(batch["rewards"].numpy().tolist()) == {1.0, 2.0, 3.0}
    with pytest.raises(ValueError, match="completion_length"):
        buf.add([[1, 1]], [[1, 1]], [[1, 2, 3]], [[1, 1, 1]], [0.0])
    with pytest.raises(ValueError, match="capacity must be an integer >= 1"):
        ReplayBuffer(0, 2, 2)


# --------------------------------------------------------------------------- config and Q head
@pytest.mark.parametrize("kwargs, message", [
    ({"target": "double"}, "target must be one of"),
    ({"q_values": "critic"}, "q_values must be one of"),
    ({"exploration": "ucb"}, "exploration must be one of"),
    ({"epsilon": 1.5}, "epsilon must be in"),
    ({"target_update_tau": 0.0}, "target_update_tau must be in"),
    ({"target_update_period": 0}, "target_update_period must be an integer >= 1"),
    ({"gamma": 1.1}, "gamma must be in"),
    ({"loss": "l1"}, "loss must be one of"),
    ({"demonstration_fraction": -0.1}, "demonstration_fraction must be in"),
])
def test_config_errors_name_the_bad_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QLearningConfig(**kwargs)


def test_q_head_gives_the_q_values_and_is_trained(word_tokenizer):
    trainer = mdp_trainer(word_tokenizer, q_values="head", collect_rollouts=False, batch_size=4)
    trainer.add_demonstrations(["x"], ["c a b"], rewards=[1.0])
    head = trainer.policy.model.head
    assert isinstance(head, QHead) and head.num_actions == len(WORDS)
    ids, mask = trainer.policy.encode_prompts(["x c"])
    hidden = trainer.agent.model(input_ids=tf.constant(ids), attention_mask=tf.constant(mask),
                                 output_hidden_states=True).hidden_states[-1]
    np.testing.assert_allclose(trainer.q_values(ids, mask).numpy(), head(hidden).numpy(), rtol=1e-5, atol=1e-6)
    kernel = head.kernel.numpy().copy()
    trainer.step()
    assert not np.allclose(kernel, head.kernel.numpy())
    assert QHead.from_config(head.get_config()).num_actions == len(WORDS)
    with pytest.raises(ValueError, match="num_actions must be an integer >= 1"):
        QHead(0)


# --------------------------------------------------------------------------- SavedModel round trip
CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
data = json.load(open(sys.argv[2]))
m = tf.saved_model.load(sys.argv[1])
ids, mask = tf.constant(data["ids"], tf.int32), tf.constant(data["mask"], tf.int32)
out = {"q_values": m.q_values(ids, mask)["q_values"].numpy().tolist(),
       "sequences": m.generate(tf.constant(data["gen_ids"]), tf.constant(data["gen_mask"]))["sequences"].numpy().tolist(),
       "signatures": sorted(m.signatures)}
before = m.q_values(ids, mask)["q_values"].numpy()
b = data["batch"]
stats = m.train_step(tf.constant(b["prompt_ids"]), tf.constant(b["prompt_mask"]), tf.constant(b["completion_ids"]),
                     tf.constant(b["completion_mask"]), tf.constant(b["rewards"], tf.float32))
out["loss"] = float(stats["loss"])
out["q_changed"] = float(np.abs(m.q_values(ids, mask)["q_values"].numpy() - before).max())
def gap():  # the largest difference between the target network and the online (model) variables
    return max(float(np.abs(t.numpy() - o.numpy()).max()) for t, o in zip(m.target_variables, m.model_variables))
out["target_gap_after_update"] = gap()
out["synced"] = bool(m.sync_target_network()["synced"].numpy())
out["target_gap_after_sync"] = gap()
out["imported_tf_rl_text"] = any(k.startswith("tf_rl_text") for k in sys.modules)
print(json.dumps(out))
"""


def test_saved_model_q_values_equal_live_ones_in_a_fresh_process(solved_mdp, tmp_path):
    trainer, _ = solved_mdp
    path = trainer.export(str(tmp_path / "q_policy"))
    ids, mask = trainer.policy.encode_prompts(["x c a", "x"])  # left padded: [x c a], [pad pad x]
    live_q = trainer.q_values(ids, mask).numpy()
    gen_ids, gen_mask = trainer.policy.encode_prompts(["x", "x"])
    live_seq = trainer.agent.generate(gen_ids, gen_mask, max_new_tokens=3, greedy=True).completion_ids.numpy()
    batch = {"prompt_ids": [[5], [5]], "prompt_mask": [[1], [1]], "completion_ids": [[4, 2, 3], [3, 0, 1]],
             "completion_mask": [[1, 1, 1], [1, 1, 0]], "rewards": [1.0, 0.0]}
    data = tmp_path / "inputs.json"
    data.write_text(json.dumps({"ids": ids.tolist(), "mask": mask.tolist(), "gen_ids": gen_ids.tolist(),
                                "gen_mask": gen_mask.tolist(), "batch": batch}))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, str(script), path, str(data)], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["imported_tf_rl_text"] is False
    np.testing.assert_allclose(np.array(out["q_values"]), live_q, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.array(out["sequences"]), live_seq)
    assert {"q_values", "generate", "train_step", "sync_target_network"} <= set(out["signatures"])
    assert np.isfinite(out["loss"]) and out["q_changed"] > 0  # the loaded train_step makes a TD update
    # the loaded train_step moved the online network only; the exported sync copies it into the target
    assert out["target_gap_after_update"] > 0 and out["synced"] and out["target_gap_after_sync"] == 0.0


# --------------------------------------------------------------------------- the example's command line
def test_example_help_and_bad_flag():
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                          "train_q_learning.py")
    repo = os.path.dirname(script.rsplit(os.sep, 1)[0])
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))  # this checkout's package
    proc = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0
    for flag in ["--quick", "--steps", "--warm-start-steps", "--target", "--demonstrations", "--seed", "--output",
                 "--metrics-file", "--no-progress", "--model", "--precision"]:
        assert flag in proc.stdout, flag
    proc = subprocess.run([sys.executable, script, "--steps", "-1"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 2 and "--steps must be >= 0, got -1" in proc.stderr


# --------------------------------------------------------------------------- encoder-decoders
def test_soft_q_learning_trains_an_encoder_decoder_from_demonstrations_and_exports(tokenizer, tmp_path):
    """Q(s_t, .) are the decoder's logits: the same TD learning works for T5, sources right padded."""
    from conftest import make_tiny_t5
    from tf_rl_text.trainers.q_policy import completion_q_values

    agent = RLAgent(make_tiny_t5(tokenizer, seed=0), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, unigram_f1, references=REFERENCES, batch_size=4, max_new_tokens=8)
    trainer = QLearningTrainer(agent, env, QLearningConfig(
        target="soft", learning_rate=3e-3, batch_size=16, target_update_period=10, reward_scale=10.0,
        demonstration_fraction=0.75))
    trainer.add_demonstrations()
    assert trainer.demonstrations.prompt_padding == "right" and trainer.replay.prompt_padding == "right"
    before = trainer.evaluate()
    trainer.train(60, progress=False)
    after = trainer.evaluate()
    assert len(trainer.replay) > 0  # it also learned from its own episodes
    assert after >= before + 0.4, (before, after, agent.generate_text(PROMPTS, 8, greedy=True))
    path = trainer.export(str(tmp_path / "t5_q"))
    loaded = tf.saved_model.load(path)
    ids, mask = agent.encode_prompts(PROMPTS[:2])
    gen = agent.generate(ids, mask, 8, greedy=True)
    live = completion_q_values(trainer.policy, ids, mask, gen.completion_ids, gen.completion_mask).numpy()
    out = loaded.q_values(tf.constant(ids), tf.constant(mask), gen.completion_ids, gen.completion_mask)["q_values"]
    np.testing.assert_allclose(out.numpy(), live, atol=1e-5)
    with pytest.raises(NotImplementedError, match="q_values='head' wraps a causal LM"):
        QLearningTrainer(agent, env, QLearningConfig(q_values="head"))
