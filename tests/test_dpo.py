"""DPO, IPO and cDPO losses and the Bradley-Terry loss by hand; preference data and its errors; the trainer:
its reference scores, a toy preference learned on held-out pairs, chunks, resume, LoRA, T5 and export."""
import json
import math

import numpy as np
import pytest

from conftest import make_tiny_model, make_tiny_t5
from test_resume import assert_same_run, stop_and_resume
from tf_rl_text import RLAgent
from tf_rl_text._compat import tf
from tf_rl_text.data import DataFormatError
from tf_rl_text.preferences import PreferencePairs, load_preferences, make_preference_pairs
from tf_rl_text.ops import bradley_terry_loss
from tf_rl_text.experience import PreferencePairSource
from tf_rl_text.trainers.dpo import DPOConfig, DPOTrainer, dpo_loss

# two pairs: log pi of chosen / rejected (sums over tokens) and the reference's
CHOSEN, REJECTED = [-3.0, -5.0], [-4.0, -2.0]
REF_CHOSEN, REF_REJECTED = [-3.5, -5.0], [-3.5, -3.0]
# by hand: chosen ratios 0.5, 0; rejected ratios -0.5, 1.0; h = 1.0, -1.0


def losses_for(**kwargs):
    losses, chosen, rejected = dpo_loss(*(tf.constant(x) for x in (CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED)),
                                        **{"beta": 0.5, **kwargs})
    return losses.numpy(), chosen.numpy(), rejected.numpy()


def test_sigmoid_dpo_loss_and_implicit_rewards_by_hand():
    losses, chosen, rejected = losses_for()
    # -log sigmoid(0.5 * 1) = log(1 + e^-0.5); -log sigmoid(0.5 * -1) = log(1 + e^0.5)
    np.testing.assert_allclose(losses, [math.log1p(math.exp(-0.5)), math.log1p(math.exp(0.5))], rtol=1e-6)
    np.testing.assert_allclose(chosen, [0.25, 0.0])      # beta * (log pi - log pi_ref) of chosen
    np.testing.assert_allclose(rejected, [-0.25, 0.5])


def test_conservative_dpo_mixes_both_directions_by_label_smoothing():
    losses, _, _ = losses_for(label_smoothing=0.1)
    a, b = math.log1p(math.exp(-0.5)), math.log1p(math.exp(0.5))
    np.testing.assert_allclose(losses, [0.9 * a + 0.1 * b, 0.9 * b + 0.1 * a], rtol=1e-6)


def test_ipo_loss_by_hand():
    losses, _, _ = losses_for(loss_type="ipo")
    np.testing.assert_allclose(losses, [(1.0 - 1.0) ** 2, (-1.0 - 1.0) ** 2], atol=1e-6)  # (h - 1/(2 beta))^2


def test_bradley_terry_loss_and_accuracy_by_hand():
    losses, right = bradley_terry_loss(tf.constant([1.0, 0.0]), tf.constant([0.0, 2.0]))
    np.testing.assert_allclose(losses.numpy(), [math.log1p(math.exp(-1.0)), math.log1p(math.exp(2.0))], rtol=1e-6)
    assert right.numpy().tolist() == [True, False]


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": 0.0}, "beta"),
    ({"loss_type": "hinge"}, "loss_type"),
    ({"label_smoothing": 0.5}, "label_smoothing"),
    ({"label_smoothing": 0.1, "loss_type": "ipo"}, "conservative DPO"),
    ({"batch_size": 0}, "batch_size"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPOConfig(**kwargs)


# --------------------------------------------------------------------------- data
def write_jsonl(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return str(path)


def test_load_preferences_standard_and_conversational(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": "the movie was", "chosen": " great", "rejected": " dull"},
        {"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}],
         "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]},
    ])
    pairs = load_preferences(path)
    assert pairs.prompts == ["the movie was", "user: hi"]
    assert pairs.chosen == [" great", "hello!"] and pairs.rejected == [" dull", "go away"]
    train, held = pairs.split(test_fraction=0.5)
    assert len(train) == len(held) == 1 and set(train.prompts + held.prompts) == set(pairs.prompts)


@pytest.mark.parametrize("line, match", [
    ({"prompt": "a", "chosen": "b"}, r"line 2: missing \['rejected'\]"),
    ({"prompt": "a", "chosen": "same", "rejected": "same"}, "line 2: 'chosen' and 'rejected' are the same text"),
    ({"prompt": "a", "chosen": " ", "rejected": "b"}, "line 2: 'chosen' is empty"),
    ({"chosen": "b", "rejected": "c"}, "line 2: missing 'prompt'"),
    ("{not json", "line 2: invalid JSON"),
    ("[1, 2]", "line 2: expected a JSON object, got list"),
    ({"chosen": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
      "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "z"}]},
     "line 2: 'chosen' and 'rejected' must share every message but the last"),
])
def test_bad_preference_records_name_the_line(tmp_path, line, match):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok", "chosen": "x", "rejected": "y"}, line])
    with pytest.raises(DataFormatError, match=match):
        load_preferences(path)


def test_make_preference_pairs_puts_the_higher_reward_first(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)

    def length(completions, prompts, references):
        return [len(c) for c in completions]

    pairs = make_preference_pairs(agent, ["the movie was", "my day", "our dinner"], length, n=4, max_new_tokens=6)
    assert len(pairs) >= 2
    for c, r in zip(pairs.chosen, pairs.rejected):
        assert len(c) > len(r)


# --------------------------------------------------------------------------- trainer
WORDS = ["the movie was", "my day", "our dinner", "i really enjoyed", "the food", "a", "this book", "the plot",
         "her song", "his film", "the trip", "our game"]


def word_pairs():
    """Prefer completions with " good" over the same with " bad": train on 8 prompts, hold out 4."""
    pairs = PreferencePairs(WORDS, [" was good ."] * len(WORDS), [" was bad ."] * len(WORDS))
    return pairs.subset(range(8)), pairs.subset(range(8, 12))


def dpo(tokenizer, model=None, pairs=None, seed=0, **config):
    agent = RLAgent(model or make_tiny_model(tokenizer, seed=seed), tokenizer, seed=0)
    config = {"beta": 0.1, "learning_rate": 1e-2, "batch_size": 4, **config}
    return DPOTrainer(agent, pairs or word_pairs()[0], DPOConfig(**config))


def sequence_logps(agent, prompts, completions):
    """log pi(completion | prompt) summed over the completion tokens (EOS included), eagerly, pair by pair."""
    from tf_rl_text.tokens import encode_texts

    out = []
    for p, c in zip(prompts, completions):
        ids, mask = agent.encode_prompts([p])
        c_ids, c_mask = encode_texts(agent.tokenizer, [c], 64)
        n = int(c_mask.sum())
        logp = agent.log_probs(tf.constant(ids), tf.constant(mask), tf.constant(c_ids[:, :n]), tf.constant(c_mask[:, :n]))
        out.append(float(tf.reduce_sum(logp)))
    return np.array(out)


def test_precomputed_reference_is_the_starting_policy_and_the_first_step_is_log2(tokenizer):
    trainer = dpo(tokenizer, precompute_ref_log_probs=True)
    pairs = trainer.pairs
    table = trainer._ref_table.numpy()
    np.testing.assert_allclose(table[:, 0], sequence_logps(trainer.agent, pairs.prompts, pairs.chosen), rtol=1e-5)
    np.testing.assert_allclose(table[:, 1], sequence_logps(trainer.agent, pairs.prompts, pairs.rejected), rtol=1e-5)
    assert trainer.ref_model is None  # no reference model kept
    drawn = PreferencePairSource(pairs, trainer.agent, 4, 64, seed=0).next_indices()  # what the first step draws
    stats = trainer.step()
    assert stats["loss"] == pytest.approx(math.log(2), rel=1e-6)  # policy = reference: h = 0
    assert stats["rewards/margins"] == pytest.approx(0.0, abs=1e-6) and stats["rewards/accuracies"] == 0.0
    assert stats["logps/chosen"] == pytest.approx(float(table[drawn, 0].mean()), rel=1e-5)
    assert stats["logps/rejected"] == pytest.approx(float(table[drawn, 1].mean()), rel=1e-5)


def test_a_toy_preference_is_learned_on_held_out_pairs(tokenizer):
    train, held_out = word_pairs()
    trainer = dpo(tokenizer, pairs=train)
    before = trainer.evaluate_pairs(held_out)
    assert before["margin"] == pytest.approx(0.0, abs=1e-6)
    trainer.train(15, progress=False)
    after = trainer.evaluate_pairs(held_out)
    assert after["accuracy"] == 1.0 and after["margin"] > 1.0, after
    # P(chosen) over P(rejected) rose on prompts it never trained on
    assert after["logp_margin"] > before["logp_margin"] + 5.0, (before, after)
    margins = [h["rewards/margins"] for h in trainer.history]
    assert np.mean(margins[-3:]) > np.mean(margins[:3]) + 1.0  # the implicit reward margins grew


@pytest.mark.parametrize("loss_type, smoothing", [("ipo", 0.0), ("sigmoid", 0.2)])
def test_ipo_and_conservative_dpo_train(tokenizer, loss_type, smoothing):
    train, held_out = word_pairs()
    trainer = dpo(tokenizer, pairs=train, loss_type=loss_type, label_smoothing=smoothing)
    trainer.train(10, progress=False)
    assert trainer.evaluate_pairs(held_out)["accuracy"] == 1.0


def test_the_frozen_copy_and_the_precomputed_reference_make_the_same_updates(tokenizer):
    a, b = dpo(tokenizer), dpo(tokenizer, precompute_ref_log_probs=True)
    for _ in range(3):
        sa, sb = a.step(), b.step()
    assert sa["loss"] == pytest.approx(sb["loss"], rel=1e-5)
    for x, y in zip(a.agent.model.get_weights(), b.agent.model.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_accumulated_chunks_make_the_same_update(tokenizer):
    a, b = dpo(tokenizer), dpo(tokenizer, grad_accumulation_steps=3)  # 4 pairs in chunks of 2, 1, 1
    sa, sb = a.step(), b.step()
    sa, sb = a.step(), b.step()
    for key in ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen"):
        assert sa[key] == pytest.approx(sb[key], rel=1e-4, abs=1e-6), key
    for x, y in zip(a.agent.model.get_weights(), b.agent.model.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=2e-6)


def test_dpo_resumes_exactly(tokenizer, tmp_path):
    def build(run_dir):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        return DPOTrainer(agent, word_pairs()[0], DPOConfig(beta=0.1, learning_rate=1e-2, batch_size=3),
                          run_dir=run_dir, checkpoint_every=2)

    straight, resumed = stop_and_resume(build, tmp_path, 2, 4)
    assert_same_run(straight, resumed)
    assert straight.history[0]["loss"] != straight.history[3]["loss"]


def test_lora_dpo_keeps_the_base_weights_bit_equal(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    agent.attach_lora(rank=4)
    base = [w.copy() for w in agent.model.get_weights()]
    trainer = DPOTrainer(agent, word_pairs()[0], DPOConfig(beta=0.1, learning_rate=2e-2, batch_size=4))
    assert type(trainer.ref_model).__name__ == "AdaptersOff"  # the reference: adapters off, no copy
    trainer.train(8, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(base, agent.model.get_weights()))
    assert trainer.history[-1]["rewards/margins"] > 0.1


def test_t5_dpo_trains_and_its_export_serves(tokenizer, tmp_path):
    import tf_rl_text

    train, held_out = word_pairs()
    trainer = dpo(tokenizer, model=make_tiny_t5(tokenizer), pairs=train)
    trainer.train(10, progress=False)
    assert trainer.evaluate_pairs(held_out)["accuracy"] == 1.0
    path = trainer.export(str(tmp_path / "dpo_t5"))
    policy = tf_rl_text.load(path)
    prompts = held_out.prompts
    max_new = trainer.config.max_new_tokens
    assert policy.generate(prompts) == trainer.agent.generate_text(prompts, max_new_tokens=max_new, greedy=True)
    assert policy.metadata["algorithm"] == "dpo" and policy.metadata["beta"] == 0.1


# --------------------------------------------------------------------------- pairwise reward model
def tiny_scorer_model(tokenizer, seed=0, num_labels=1):
    """A 1-layer, 32-wide BERT with a scalar head (num_labels=1)."""
    from transformers import BertConfig, TFBertForSequenceClassification

    tf.random.set_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
                        num_labels=num_labels)
    return TFBertForSequenceClassification(config)


def test_pairwise_reward_model_learns_held_out_preferences_and_its_export_scores_the_same(tokenizer, tmp_path):
    import tf_rl_text
    from tf_rl_text.rewards.pairwise import LoadedRewardModel, pairwise_accuracy, train_pairwise_reward_model

    train, held_out = word_pairs()
    result = train_pairwise_reward_model(tiny_scorer_model(tokenizer), tokenizer, train, eval_pairs=held_out,
                                         epochs=6, batch_size=4, learning_rate=3e-3, progress=False,
                                         output_dir=str(tmp_path / "rm"))
    assert [h["epoch"] for h in result.history] == list(range(1, 7))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.val_accuracy == 1.0 == pairwise_accuracy(result.scorer, held_out)
    reward = tf_rl_text.load(result.path)
    assert isinstance(reward, LoadedRewardModel)
    texts, prompts = held_out.chosen + held_out.rejected, held_out.prompts * 2
    np.testing.assert_allclose(reward(texts, prompts), result.scorer(texts, prompts), rtol=1e-5, atol=1e-6)
    # a reward function for any trainer: chosen above rejected on prompts it never saw
    assert all(c > r for c, r in zip(reward(held_out.chosen, held_out.prompts), reward(held_out.rejected,
                                                                                        held_out.prompts)))


def test_bradley_terry_accuracy_by_hand_on_a_fixed_scorer():
    from tf_rl_text.rewards.pairwise import pairwise_accuracy

    class Length:  # r = length of the completion
        def score(self, completions, prompts=None):
            return np.array([len(c) for c in completions], np.float32)

    pairs = PreferencePairs(["a", "b", "c"], ["long one", "x", "same"], ["short", "longer", "four"])
    assert pairwise_accuracy(Length(), pairs) == pytest.approx(1 / 3)  # only the first pair; a tie is wrong


def test_a_reward_model_needs_one_output(tokenizer):
    from tf_rl_text.rewards.pairwise import PairwiseScorer

    with pytest.raises(ValueError, match="num_labels=2; build it with num_labels=1"):
        PairwiseScorer(tiny_scorer_model(tokenizer, num_labels=2), tokenizer)


# --------------------------------------------------------------------------- online DPO and best-of-n
def test_online_dpo_raises_the_reward_on_a_toy_task(tokenizer):
    from test_reinforce import toy_env  # reward: the share of " the" in 6 tokens
    from tf_rl_text.trainers.dpo import OnlineDPOConfig, OnlineDPOTrainer

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = OnlineDPOTrainer(agent, toy_env(tokenizer, batch_size=4), OnlineDPOConfig(num_generations=4, beta=0.1, learning_rate=3e-2))
    before = trainer.evaluate(greedy=False)
    assert before < 0.1
    trainer.train(40, progress=False)
    after = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert after > 0.5, f"mean reward only rose from {before:.3f} to {after:.3f}"
    paired = [h for h in trainer.history if h["pairs"] > 0]
    assert paired and all(h["reward_gap"] > 0 for h in paired)  # chosen always scored above rejected
    with pytest.raises(ValueError, match="precompute_ref_log_probs=True needs a fixed set of pairs"):
        OnlineDPOConfig(precompute_ref_log_probs=True)


def test_best_of_n_returns_each_prompts_highest_reward_sample(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    prompts = ["the movie was", "my day"]

    def length(completions, prompts_, references):
        return [len(c) for c in completions]

    best = agent.generate_text(prompts, max_new_tokens=8, best_of=4, reward_fn=length, seed=5)
    samples = agent.generate_text([p for p in prompts for _ in range(4)], max_new_tokens=8, seed=5)  # the same draws
    for i, text in enumerate(best):
        group = samples[4 * i:4 * i + 4]
        assert text == max(group, key=len) and len(text) == max(len(g) for g in group)
    assert len(set(samples)) > 2  # the samples differ: picking the best can fail
    with pytest.raises(ValueError, match="needs both best_of=n and reward_fn"):
        agent.generate_text(prompts, best_of=4)


def test_tf_rl_text_train_runs_online_dpo_end_to_end_with_an_export(tmp_path, capsys):
    """The CLI path (registry, config loader, run builder, evaluation, export) on a tiny model, in process."""
    import os

    import yaml

    import tf_rl_text
    from tf_rl_text import cli

    config = {"algorithm": "online_dpo", "model": {"layers": 1, "width": 32}, "data": {"source": "prompts"},
              "reward": {"name": "sentiment"},
              "trainer": {"learning_rate": 1e-3, "beta": 0.1, "num_generations": 2},
              "run": {"steps": 3, "warm_start_steps": 5, "batch_size": 2, "max_new_tokens": 6, "seed": 0}}
    path = tmp_path / "odpo.yaml"
    path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    assert cli.main(["train", str(path), "--run-dir", str(run_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "online_dpo" in out and "reward_after" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algorithm"] == "online_dpo" and summary["steps"] == 3
    policy = tf_rl_text.load(os.path.join(str(run_dir), "export"))
    assert policy.metadata["algorithm"] == "online_dpo" and len(policy.generate(["the movie was"])) == 1


def test_tf_rl_text_train_runs_dpo_on_pairs_made_from_the_reward_and_resumes_on_the_same_pairs(tmp_path, capsys):
    import yaml

    from tf_rl_text import cli
    from tf_rl_text.preferences import load_preferences

    config = {"algorithm": "dpo", "model": {"layers": 1, "width": 32},
              "data": {"source": "prompts", "preference_samples": 3}, "reward": {"name": "sentiment"},
              "trainer": {"learning_rate": 1e-3, "beta": 0.1, "batch_size": 4, "max_new_tokens": 6},
              # a warm start long enough that some samples say a sentiment word (5 steps: every reward 0, no pair)
              "run": {"steps": 3, "warm_start_steps": 200, "warm_start_lr": 1e-2, "batch_size": 4, "max_new_tokens": 6,
                      "seed": 0, "checkpoint_every": 1}}
    path = tmp_path / "dpo.yaml"
    path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    assert cli.main(["train", str(path), "--run-dir", str(run_dir), "--no-progress"]) == 0
    first = "".join(capsys.readouterr())  # the run's log is on stderr, its summary on stdout
    assert "pairs made from the reward" in first
    pairs = load_preferences(str(run_dir / "preferences.jsonl"))
    assert len(pairs) > 0 and all(c != r for c, r in zip(pairs.chosen, pairs.rejected))
    assert cli.main(["train", str(path), "--set", "run.steps=5", "--run-dir", str(run_dir), "--no-progress"]) == 0
    second = "".join(capsys.readouterr())
    assert f"the run's {len(pairs)} pairs" in second and "resumed from" in second
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 5 and summary["resumed_from_step"] == 3 and summary["algorithm"] == "dpo"
    assert "rewards/margins" in summary["train_last"]


def test_a_config_trains_with_an_exported_reward_model(tokenizer, tmp_path, capsys):
    """reward: {name: reward_model, path: FOLDER}: the run's reward is the exported pairwise model."""
    import yaml

    from tf_rl_text import cli
    from tf_rl_text.rewards.pairwise import train_pairwise_reward_model

    train, held_out = word_pairs()
    rm = str(tmp_path / "rm")
    train_pairwise_reward_model(tiny_scorer_model(tokenizer), tokenizer, train, epochs=1, batch_size=4,
                                progress=False, output_dir=rm)
    config = {"algorithm": "reinforce", "model": {"layers": 1, "width": 32}, "data": {"source": "prompts"},
              "reward": {"name": "reward_model", "path": "rm"},  # relative to the config file's folder
              "trainer": {"learning_rate": 1e-3, "baseline": "rloo", "num_samples_per_prompt": 2},
              "run": {"steps": 2, "warm_start_steps": 5, "batch_size": 2, "max_new_tokens": 4, "seed": 0}}
    path = tmp_path / "rm_run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    log = "".join(capsys.readouterr())
    assert f"reward model: {rm} (pairwise" in log
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reward_model"] == rm and summary["steps"] == 2
    bad = dict(config, reward={"name": "reward_model", "path": str(tmp_path)})  # a folder, not a reward model
    path.write_text(yaml.safe_dump(bad))
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "run2"), "--no-progress"]) == 2
    assert "reward.path: " in "".join(capsys.readouterr())  # the loader's own reason, blamed on the config


def test_a_config_trains_the_pairwise_reward_model_on_preference_pairs_then_the_policy_on_it(tokenizer, tmp_path,
                                                                                                capsys):
    """reward: {name: reward_model, train_pairs: FILE, ...}: a scalar head on `model` learns the pairs first
    (held-out pairwise accuracy reported), its export scores as the live reward did, and bad pairs are named."""
    import yaml

    import tf_rl_text
    from tf_rl_text import cli
    from tf_rl_text.rewards.pairwise import LoadedRewardModel

    scorer_dir = tmp_path / "scorer"
    scorer = tiny_scorer_model(tokenizer)
    scorer(scorer.dummy_inputs, training=False)  # built, so save_pretrained has weights to write
    scorer.save_pretrained(str(scorer_dir))
    tokenizer.save_pretrained(str(scorer_dir))
    all_pairs = PreferencePairs(WORDS, [" was good ."] * len(WORDS), [" was bad ."] * len(WORDS))
    (tmp_path / "pairs.jsonl").write_text("".join(
        json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"
        for p, c, r in zip(all_pairs.prompts, all_pairs.chosen, all_pairs.rejected)))
    config = {"algorithm": "reinforce", "model": {"layers": 1, "width": 32}, "data": {"source": "prompts"},
              "reward": {"name": "reward_model", "train_pairs": "pairs.jsonl", "model": "scorer", "epochs": 6,
                         "batch_size": 4, "learning_rate": 3e-3, "eval_fraction": 0.25, "output": "rm"},
              "trainer": {"learning_rate": 1e-3, "baseline": "rloo", "num_samples_per_prompt": 2},
              "run": {"steps": 2, "warm_start_steps": 5, "batch_size": 2, "max_new_tokens": 4, "seed": 0}}
    path = tmp_path / "rm_train.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    log = "".join(capsys.readouterr())
    assert "scalar head trained on 9 preference pairs" in log and "held out: 3" in log
    assert f"held-out pairwise accuracy 1.000 -> {tmp_path / 'rm'}" in log
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["rm_val_accuracy"] == 1.0 and summary["steps"] == 2
    exported = tf_rl_text.load(str(tmp_path / "rm"))
    assert isinstance(exported, LoadedRewardModel)
    good, bad = exported([" was good .", " was bad ."], ["a cat", "a cat"])
    assert good > bad
    (tmp_path / "pairs.jsonl").write_text('{"prompt": "a", "chosen": "same", "rejected": "same"}\n')
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "run2"), "--no-progress"]) == 2
    err = "".join(capsys.readouterr())
    assert "reward.train_pairs" in err and "line 1" in err
