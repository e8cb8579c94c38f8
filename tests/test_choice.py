"""A sequence classifier as the policy (tf_rl_text.choice): RLAgent(model) with one argument, choice
log-probabilities against hand-computed numbers, rewards that rise, export parity, and the errors."""
import math

import os

import numpy as np
import pytest

from conftest import make_tiny_model, make_tiny_t5
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.choice import ChoiceAgent, ChoiceEnv, sample_selection, selection_log_probs
from tf_rl_text.trainers.choice import (ChoiceQConfig, ChoiceQLearningTrainer, ChoiceReinforceTrainer, choice_q_loss,
                                        choice_reinforce_loss)


def tiny_classifier(tokenizer, num_labels=1, seed=0, labels=None):
    """A 1-layer, 32-wide BERT sequence classifier over the embedded tokenizer."""
    from transformers import BertConfig, TFBertForSequenceClassification

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
                        num_labels=num_labels, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
    tf.keras.utils.set_random_seed(seed)
    model = TFBertForSequenceClassification(config)
    model(model.dummy_inputs, training=False)
    return model


WORDS = ["good", "bad", "great", "awful", "fine", "poor"]
PROMPTS = [f"item {i}" for i in range(16)]
CANDIDATES = [[WORDS[(i + j) % 6] for j in range(4)] for i in range(16)]


def positive_pick(completions, prompts=None, references=None):
    return [1.0 if c in ("good", "great", "fine") else 0.0 for c in completions]


# --------------------------------------------------------------------------- RLAgent(model), one argument
def test_rlagent_with_one_argument_finds_the_tokenizer_in_the_model_folder(tokenizer, tmp_path):
    from transformers import TFAutoModelForCausalLM, TFBertForSequenceClassification, TFT5ForConditionalGeneration

    for name, model, cls in [("gpt2", make_tiny_model(tokenizer), TFAutoModelForCausalLM),
                             ("t5", make_tiny_t5(tokenizer), TFT5ForConditionalGeneration),
                             ("bert", tiny_classifier(tokenizer), TFBertForSequenceClassification)]:
        folder = str(tmp_path / name)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        agent = RLAgent(cls.from_pretrained(folder))
        assert agent.tokenizer("the movie was")["input_ids"] == tokenizer("the movie was")["input_ids"]
        assert isinstance(agent, ChoiceAgent) == (name == "bert")
    assert agent.choose(["item 1"], [["good", "bad"]])[0] in ("good", "bad")
    text = RLAgent(TFAutoModelForCausalLM.from_pretrained(str(tmp_path / "gpt2"))).generate_text(
        ["the movie was"], max_new_tokens=3, greedy=True)
    assert text == RLAgent(make_tiny_model(tokenizer), tokenizer).generate_text(["the movie was"], 3, greedy=True)

    with pytest.raises(ValueError, match=r"not loaded with from_pretrained .*pass one: RLAgent\(model, tokenizer\)"):
        RLAgent(make_tiny_model(tokenizer))
    no_tokenizer = str(tmp_path / "bare")
    make_tiny_model(tokenizer).save_pretrained(no_tokenizer)
    with pytest.raises(ValueError, match=r"found no tokenizer for TFGPT2LMHeadModel in .*bare.*pass one"):
        RLAgent(TFAutoModelForCausalLM.from_pretrained(no_tokenizer))


# --------------------------------------------------------------------------- math, by hand
def test_selection_log_probs_and_losses_match_hand_computed_values():
    logits = tf.constant([[1.0, 2.0, 0.0, 5.0], [0.5, -0.5, 0.0, 0.0]])
    choice_mask = tf.constant([[1, 1, 1, 0], [1, 1, 0, 0]])  # row 0: choice 3 is padding
    actions = tf.constant([[1, 0], [1, 0]])
    action_mask = tf.constant([[1, 1], [1, 0]])  # row 1 made one choice
    logp = selection_log_probs(logits, choice_mask, actions, action_mask).numpy()
    e = math.e
    expected = [[2 - math.log(e + e**2 + 1), 1 - math.log(e + 1)],  # step 2 without the chosen 1 (and padding 3)
                [-0.5 - math.log(e**0.5 + e**-0.5), 0.0]]
    np.testing.assert_allclose(logp, expected, atol=1e-6)

    rewards, baseline = tf.constant([1.0, 0.0]), tf.constant([0.25, 0.5])
    loss, info = choice_reinforce_loss(tf.constant(logp), action_mask, rewards, baseline)
    by_hand = -((1.0 - 0.25) * (expected[0][0] + expected[0][1]) + (0.0 - 0.5) * expected[1][0]) / 2
    assert float(loss) == pytest.approx(by_hand, abs=1e-6)

    # Q-learning, k = 2, gamma 0.5: y_1 = 0 + 0.5 * max(Q available at step 2), y_2 = R; row 1: y_1 = R
    q_steps = tf.constant([[[1.0, 2.0, 0.0, -1e9], [1.0, -1e9, 0.0, -1e9]],
                           [[0.5, -0.5, -1e9, -1e9], [0.5, -1e9, -1e9, -1e9]]])
    loss, info = choice_q_loss(q_steps, actions, action_mask, tf.constant([3.0, 1.0]), gamma=0.5)
    errors = [2.0 - 0.5 * 1.0, 1.0 - 3.0, -0.5 - 1.0]  # Q(s_t, a_t) - y_t at the three steps taken
    assert float(loss) == pytest.approx(np.mean([0.5 * x * x for x in errors]), abs=1e-6)


def test_sampling_without_replacement_follows_the_softmax():
    logits = tf.constant([[0.0, math.log(2.0), math.log(5.0), 9.0]] * 20000)
    choice_mask = tf.constant([[1, 1, 1, 0]] * 20000)
    first, mask = sample_selection(logits, choice_mask, 1, tf.constant([3, 0]))
    freq = np.bincount(first.numpy()[:, 0], minlength=4) / 20000
    np.testing.assert_allclose(freq, [1 / 8, 2 / 8, 5 / 8, 0.0], atol=0.012)  # never the masked choice
    pairs, mask = sample_selection(logits[:2000], choice_mask[:2000], 2, tf.constant([4, 0]))
    pairs = pairs.numpy()
    assert (pairs[:, 0] != pairs[:, 1]).all() and (pairs < 3).all() and (mask.numpy() == 1).all()
    # P(second = 0 | first = 2) = 1 / (1 + 2)
    after_two = pairs[pairs[:, 0] == 2, 1]
    assert np.mean(after_two == 0) == pytest.approx(1 / 3, abs=0.05)
    few, few_mask = sample_selection(logits[:1], tf.constant([[1, 0, 0, 0]]), 3, tf.constant([1, 0]), greedy=True)
    assert few.numpy().tolist() == [[0, 0, 0]] and few_mask.numpy().tolist() == [[1, 0, 0]]


def test_choice_logits_are_the_classifiers_logits_of_each_pair(tokenizer):
    model = tiny_classifier(tokenizer, num_labels=3)
    agent = RLAgent(model, tokenizer, score_label=2)
    inputs, choice_mask = agent.encode(["item 1", "item two"], [["good", "a bad one", "fine"], ["poor"]])
    logits = agent.choice_logits(*[tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "token_type_ids")],
                                 tf.constant(choice_mask)).numpy()
    for i, (prompt, cands) in enumerate([("item 1", ["good", "a bad one", "fine"]), ("item two", ["poor"])]):
        for j, cand in enumerate(cands):
            ids = np.array([tokenizer(prompt, cand)["input_ids"]])  # unpadded, one pair at a time
            assert logits[i, j] == pytest.approx(float(model(input_ids=ids).logits[0, 2]), abs=1e-5)
    assert (logits[1, 1:] == -1e9).all()  # padded slots are unavailable
    probs = agent.probabilities(inputs, choice_mask)
    np.testing.assert_allclose(probs[0], np.exp(logits[0]) / np.exp(logits[0]).sum(), atol=1e-6)


# --------------------------------------------------------------------------- training
def test_reinforce_and_q_learning_raise_the_reward_of_a_toy_choice(tokenizer):
    env = ChoiceEnv(PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=8, max_length=16)
    agent = RLAgent(tiny_classifier(tokenizer), tokenizer, seed=0)
    before_weights = [v.numpy().copy() for v in agent.trainable_variables]
    trainer = ChoiceReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-3, baseline="rloo",
                                                                 num_samples_per_prompt=4))
    before = trainer.evaluate(greedy=False)
    trainer.train(25, progress=False)
    after = trainer.evaluate(greedy=False)
    assert before < 0.7 and after >= 0.95, (before, after)  # chance is 0.5 (2 of 4 candidates are positive)
    assert trainer.evaluate() == 1.0
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(before_weights, agent.trainable_variables))
    assert [f.experimental_get_tracing_count() for f in trainer._update_fns.values()] == [1]

    q_agent = RLAgent(tiny_classifier(tokenizer, seed=1), tokenizer, seed=1)
    q = ChoiceQLearningTrainer(q_agent, env, ChoiceQConfig(learning_rate=3e-3))
    q_before = q.evaluate()
    q.train(25, progress=False)
    assert q_before < 0.9 and q.evaluate() == 1.0, q_before
    assert q.history[-1]["q_mean"] == pytest.approx(q.history[-1]["target_mean"], abs=0.5)

    # the article's env line: a TextGenerationEnv of prompts is a one-step choice among the classifier's labels
    text_env = TextGenerationEnv(["a good day", "a bad day"] * 4, tokenizer,
                                 lambda c, p, r: [float(x == y) for x, y in zip(c, r)], references=["pos", "neg"] * 4,
                                 batch_size=8)
    bandit = ChoiceReinforceTrainer(RLAgent(tiny_classifier(tokenizer, 2, labels=["neg", "pos"]), tokenizer, seed=0),
                                    text_env, ReinforceConfig(learning_rate=3e-3, baseline="rloo",
                                                              num_samples_per_prompt=2))
    assert bandit.env.labels == ["neg", "pos"] and bandit.evaluate() == 0.5  # one label for both texts
    bandit.train(25, progress=False)
    assert bandit.evaluate() == 1.0


def test_sequential_selection_and_label_bandit_episodes_follow_the_tf_agents_contract(tokenizer):
    from tf_rl_text import specs as utils  # tf-agents' validate_py_environment where it is installed

    sentences = [["a good start.", "the middle.", "a great end.", "extra."], ["one.", "two good."]]
    seen = []

    def count_good(completions, prompts, references):
        seen.extend(completions)
        return [c.count("good") + c.count("great") for c in completions]

    env = ChoiceEnv(["doc a", "doc b"], tokenizer, count_good, candidates=sentences, select=2, batch_size=2,
                    shuffle=False, max_length=16)
    step = env.reset()
    assert step.observation["input_ids"].shape == (2, 4, 16) and step.observation["choice_mask"].tolist() == [
        [1, 1, 1, 1], [1, 1, 0, 0]]
    step = env.step(np.array([2, 1]))
    assert not step.is_last().any() and step.observation["choice_mask"].tolist() == [[1, 1, 0, 1], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"row 0: choice 2 is not available; available choices: \[0, 1, 3\]"):
        env.step(np.array([2, 0]))
    step = env.step(np.array([0, 0]))
    assert step.is_last().all() and seen[-2:] == ["a good start. a great end.", "one. two good."]  # document order
    assert step.reward.tolist() == [2.0, 1.0]

    agent = RLAgent(tiny_classifier(tokenizer), tokenizer, seed=0)
    rollout = env.rollout(agent, num_samples=3)
    assert rollout.actions.shape == (6, 2) and (rollout.action_mask == 1).all()
    assert all(a[0] != a[1] for a in rollout.actions) and rollout.rewards.tolist() == count_good(rollout.completions,
                                                                                                 None, None)
    utils.validate_py_environment(ChoiceEnv(PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=2,
                                            max_length=16), episodes=3)
    bandit = ChoiceEnv(["a good day", "a bad day"], tokenizer, lambda c, p, r: [float(x == y) for x, y in zip(c, r)],
                       labels=["neg", "pos"], references=["pos", "neg"], batch_size=2, max_length=16)
    utils.validate_py_environment(bandit, episodes=3)
    labels_agent = RLAgent(tiny_classifier(tokenizer, num_labels=2, labels=["neg", "pos"]), tokenizer)
    step = bandit.reset()
    assert bandit.step(labels_agent.act(step)).is_last().all() and set(bandit.completions) <= {"neg", "pos"}


# --------------------------------------------------------------------------- export
def test_export_serves_the_same_choices_and_probabilities_and_trains(tokenizer, tmp_path):
    import tf_rl_text

    env = ChoiceEnv(PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=4, max_length=16)
    agent = RLAgent(tiny_classifier(tokenizer), tokenizer, seed=0)
    trainer = ChoiceReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-3))
    trainer.step()
    path = trainer.export(str(tmp_path / "chooser"))
    loaded = tf_rl_text.load(path)
    prompts, cands = PROMPTS[:5], [c[: 2 + i % 3] for i, c in enumerate(CANDIDATES[:5])]  # ragged lists
    assert loaded.choose(prompts, cands) == agent.choose(prompts, cands)
    inputs, choice_mask = agent.encode(prompts, cands)
    scores = loaded.scores(prompts, cands)
    np.testing.assert_allclose(scores["probabilities"], agent.probabilities(inputs, choice_mask), atol=1e-6)
    assert scores["choice"].tolist() == agent.probabilities(inputs, choice_mask).argmax(axis=1).tolist()

    module = tf.saved_model.load(path)  # plain TF: the train_step signature updates the loaded weights
    args = [tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "token_type_ids")]
    before = module.choose(*args, tf.constant(choice_mask))["probabilities"].numpy()
    losses = [float(module.train_step(*args, tf.constant(choice_mask), tf.zeros([5, 1], tf.int32),
                                      tf.ones([5, 1], tf.int32), tf.ones([5]))["loss"])  # advantage +1 for choice 0
              for _ in range(5)]
    after = module.choose(*args, tf.constant(choice_mask))["probabilities"].numpy()
    # loss = -mean_i log pi(0 | s_i) before each update: it falls, and pi(0 | s) rises on average
    assert losses[0] == pytest.approx(-np.mean(np.log(before[:, 0])), abs=1e-5)
    assert losses[-1] < losses[0] and after[:, 0].mean() > before[:, 0].mean(), (losses, before[:, 0], after[:, 0])

    bandit = ChoiceEnv(["a good day", "a bad day"], tokenizer, lambda c, p, r: [1.0] * len(c), labels=["neg", "pos"],
                       batch_size=2, max_length=16)
    labels_agent = RLAgent(tiny_classifier(tokenizer, num_labels=2, labels=["neg", "pos"]), tokenizer)
    path = ChoiceQLearningTrainer(labels_agent, bandit).export(str(tmp_path / "labels"))
    assert tf_rl_text.load(path).choose(["a good day", "a bad day"]) == labels_agent.choose(["a good day", "a bad day"])

    # the choice export is written atomically too: a write that fails leaves the previous export whole
    import unittest.mock

    with unittest.mock.patch.object(tf.saved_model, "save", side_effect=OSError(28, "No space left on device")):
        with pytest.raises(OSError, match="No space left"):
            ChoiceQLearningTrainer(labels_agent, bandit).export(path)
    assert tf_rl_text.load(path).choose(["a good day"]) == labels_agent.choose(["a good day"])
    assert [n for n in os.listdir(tmp_path) if ".partial" in n] == []


# --------------------------------------------------------------------------- the wrong model for the job
def test_a_generator_where_a_classifier_fits_and_the_reverse_get_clear_errors(tokenizer):
    from transformers import BertConfig, TFBertModel

    gpt2 = RLAgent(make_tiny_model(tokenizer), tokenizer)
    classifier = RLAgent(tiny_classifier(tokenizer), tokenizer)
    choice_env = ChoiceEnv(PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=2, max_length=16)
    text_env = TextGenerationEnv(["the movie was"], tokenizer, positive_pick, batch_size=2, max_new_tokens=4)

    with pytest.raises(TypeError, match=r"ChoiceAgent needs a sequence classifier .*got TFGPT2LMHeadModel"):
        ChoiceAgent(gpt2.model, tokenizer)
    with pytest.raises(TypeError, match=r"ChoiceReinforceTrainer needs a choice policy .*got RLAgent over "
                                        r"TFGPT2LMHeadModel, which generates tokens"):
        ChoiceReinforceTrainer(gpt2, choice_env)
    with pytest.raises(TypeError, match=r"ChoiceEnv time step needs a choice policy .*TFGPT2LMHeadModel"):
        gpt2.act(choice_env.reset())
    with pytest.raises(ValueError, match=r"ChoiceQLearningTrainer reads a TextGenerationEnv as a one-step choice "
                                         r"among the classifier's labels, but TFBertForSequenceClassification has "
                                         r"num_labels=1: load it with num_labels=N >= 2"):
        ChoiceQLearningTrainer(classifier, text_env)
    with pytest.raises(TypeError, match=r"needs a tf_rl_text.choice.ChoiceEnv .* got list"):
        ChoiceQLearningTrainer(classifier, PROMPTS)
    generates = r"TFBertForSequenceClassification is a sequence classifier: its actions are choices, it does not"
    with pytest.raises(TypeError, match=generates):
        classifier.generate_text(["the movie was"])
    with pytest.raises(TypeError, match=generates):
        ReinforceTrainer(classifier, text_env, ReinforceConfig()).step()
    with pytest.raises(TypeError, match="cannot act in a token-by-token TextGenerationEnv"):
        classifier.act(text_env.reset())
    bert = TFBertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64))
    with pytest.raises(TypeError, match=r"RLAgent cannot act with TFBertModel: .*TFAutoModelForSequenceClassification"):
        RLAgent(bert, tokenizer)
    with pytest.raises(ValueError, match="give exactly one of candidates="):
        ChoiceEnv(PROMPTS, tokenizer, positive_pick)
    with pytest.raises(ValueError, match=r"offers 2 labels \['a', 'b'\], but the classifier .* has num_labels=1"):
        ChoiceEnv(["x"], tokenizer, positive_pick, labels=["a", "b"]).rollout(classifier)


# --------------------------------------------------------------------------- the Trainer base: checkpoints, resume
def test_choice_trainers_stop_and_resume_exactly_like_the_uninterrupted_run(tokenizer, tmp_path):
    """Stopped after 2 steps, rebuilt from scratch (other initial weights) and resumed to 4: the same weights
    (allclose 1e-6) and the same logged rewards as 4 uninterrupted steps. The checkpoint carries the weights,
    Adam's slots, the sampling RNG, the env's shuffled order, the moving-average baseline (REINFORCE) and the
    epsilon-greedy RNG (Q-learning); dropping any of them changes the run."""
    def build(kind, run_dir, init_seed=0):
        env = ChoiceEnv(PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=4, max_length=16, seed=3)
        agent = RLAgent(tiny_classifier(tokenizer, seed=init_seed), tokenizer, seed=7)
        if kind == "reinforce":
            return ChoiceReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-3), run_dir=run_dir)
        return ChoiceQLearningTrainer(agent, env, ChoiceQConfig(learning_rate=3e-3, epsilon=0.5), run_dir=run_dir)

    for kind in ("reinforce", "q_learning"):
        straight = build(kind, None)
        straight.train(4, progress=False)
        first = build(kind, str(tmp_path / kind))
        first.train(2, progress=False)
        resumed = build(kind, str(tmp_path / kind), init_seed=5)  # a new process: everything built again
        assert resumed.global_step == 2 and resumed.restored_from.endswith("ckpt-2")
        resumed.train(4, progress=False)
        assert resumed.global_step == 4 and resumed.num_updates == 4
        changed = [not np.allclose(a.numpy(), b.numpy()) for a, b in
                   zip(build(kind, None).agent.model.weights, straight.agent.model.weights)]
        assert any(changed)  # the 4 steps moved the weights, so equality below is not trivial
        for a, b in zip(straight.agent.model.weights, resumed.agent.model.weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)
        assert [h["reward_mean"] for h in resumed.history] == [h["reward_mean"] for h in straight.history]
        np.testing.assert_allclose([h["loss"] for h in resumed.history], [h["loss"] for h in straight.history],
                                   atol=1e-6)
        if kind == "reinforce":
            assert resumed.moving_average == pytest.approx(straight.moving_average, abs=1e-9)
