"""explain (issue 28, interpretability): per-token numbers equal the trainer's own on the same batch,
nothing in the run moves, the views show every token."""
import os
import re

import numpy as np
import pytest

import tf_rl_text
from conftest import make_tiny_model
from tf_rl_text import (A2CConfig, A2CTrainer, QLearningConfig, QLearningTrainer, ReinforceConfig, ReinforceTrainer,
                        RLAgent, TextGenerationEnv, explain)
from tf_rl_text._compat import tf

PROMPTS = ["the movie was", "my day", "i think", "the food"]


def reward_fn(completions, prompts, references):
    return [len(c) / 10 for c in completions]


def env_for(tokenizer):
    return TextGenerationEnv(PROMPTS, tokenizer, reward_fn, batch_size=2, max_new_tokens=4, seed=0)


def test_reinforce_credit_equals_what_the_next_step_trains_on(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, env_for(tokenizer), ReinforceConfig(baseline="rloo", num_samples_per_prompt=2,
                                                                         kl_coef=0.1, learning_rate=1e-2))
    trainer.train(1, progress=False)  # the policy has moved from its reference: a non-zero KL
    state = trainer.env.state_dict()
    rows = explain.explain(trainer)
    assert trainer.env.state_dict() == state  # the batch is still the next one
    stats = trainer.step()
    assert len(rows) == 4 and {"log_prob", "entropy", "ref_log_prob", "log_ratio", "kl", "advantage"} <= set(rows[0].quantities)
    # the step's logged numbers, from explain's per-token ones
    assert np.mean([r.reward for r in rows]) == pytest.approx(stats["reward_mean"], abs=1e-6)
    assert np.mean([r.quantities["kl"].sum() for r in rows]) == pytest.approx(stats["kl"], abs=1e-5)
    advantages = np.concatenate([r.quantities["advantage"] for r in rows])
    assert advantages.mean() == pytest.approx(stats["advantage_mean"], abs=1e-5)
    assert abs(stats["kl"]) > 1e-4
    # leave-one-out by hand: baseline_i = mean of the other sample of the same prompt; advantage = R - b - beta*KL-to-go
    for a, b in ((0, 1), (2, 3)):
        assert rows[a].baseline == pytest.approx(rows[b].reward) and rows[b].baseline == pytest.approx(rows[a].reward)
    r = rows[0]
    kl_to_go = np.cumsum(r.quantities["kl"][::-1])[::-1]
    np.testing.assert_allclose(r.quantities["advantage"], r.reward - r.baseline - 0.1 * kl_to_go, atol=1e-5)
    np.testing.assert_allclose(r.quantities["log_ratio"], r.quantities["log_prob"] - r.quantities["ref_log_prob"],
                               atol=1e-6)
    assert r.tokens and "".join(r.tokens) == r.completion or r.completion.strip() in "".join(r.tokens)


def test_actor_critic_and_q_learning_credit(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    a2c = A2CTrainer(agent, env_for(tokenizer), A2CConfig(kl_coef=0.05))
    rows = explain.explain(a2c, ["the movie was", "my day"], num_samples=1)
    for r in rows:
        assert {"value", "advantage", "return"} <= set(r.quantities) and len(r.tokens) == len(r.quantities["value"])
        # GAE with lambda: the return target is advantage + value
        np.testing.assert_allclose(r.quantities["return"], r.quantities["advantage"] + r.quantities["value"], atol=1e-5)

    q_agent = RLAgent(make_tiny_model(tokenizer, seed=1), tokenizer, seed=0)
    q = QLearningTrainer(q_agent, env_for(tokenizer), QLearningConfig(target="q_learning", gamma=1.0))
    rows = explain.explain(q, ["the movie was", "my day"], num_samples=1)
    for r in rows:
        # the last token's TD target is its reward (the episode ends there), earlier ones bootstrap
        assert r.quantities["td_target"][-1] == pytest.approx(r.reward * q.config.reward_scale, abs=1e-6)
        assert len(r.quantities["q"]) == len(r.tokens)


def test_the_html_has_one_element_per_token_and_the_png_is_drawn(tokenizer, tmp_path):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    reference = agent.clone_model()
    rows = explain.explain(agent, ["the movie was", "my day"], reference=reference, max_new_tokens=5)
    page = explain.to_html(rows, "log_prob", str(tmp_path / "c.html"))
    assert len(re.findall(r"<span class='tok'", page)) == sum(len(r.tokens) for r in rows) > 0
    assert "<script" not in page and os.path.exists(tmp_path / "c.html")
    assert all(np.allclose(r.quantities["log_ratio"], 0.0) for r in rows)  # the reference is the same model
    png = explain.to_png(rows, "entropy", str(tmp_path / "c.png"))
    assert os.path.getsize(png) > 5_000
    with pytest.raises(ValueError, match=r"quantity 'advantage' is not in this explanation; it has \["):
        explain.to_html(rows, "advantage")


@pytest.mark.skipif(explain.find_browser() is None,
                    reason="no headless Chromium here: apt-get install chromium, or set TF_RL_TEXT_BROWSER")
def test_the_credit_page_renders_in_a_headless_browser(tokenizer, tmp_path):
    from PIL import Image

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    other = make_tiny_model(tokenizer, seed=1)  # a different reference: log ratios of both signs
    rows = explain.explain(agent, ["the movie was", "my day"], reference=other, max_new_tokens=6, num_samples=2)
    same = explain.explain(agent, ["the movie was", "my day"], reference=agent.clone_model(), max_new_tokens=6,
                           num_samples=2)

    def shot(rows, name):
        page = explain.to_html(rows, "log_ratio", str(tmp_path / f"{name}.html"))
        png = explain.screenshot(str(tmp_path / f"{name}.html"), str(tmp_path / f"{name}.png"), width=800, height=400)
        img = np.asarray(Image.open(png).convert("RGB")).astype(int)
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        return page, img, ((r - b > 40) & (r - g > 40)).sum(), ((b - r > 40) & (b - g > 40)).sum()

    page, img, red, blue = shot(rows, "moved")
    assert img.shape == (400, 800, 3)
    assert (img.sum(axis=-1) < 200).mean() > 0.002  # dark text was drawn: the page is not blank
    signs = np.concatenate([r.quantities["log_ratio"] for r in rows])
    assert (signs > 0).any() and (signs < 0).any()
    assert red > 50 and blue > 50  # the token backgrounds: red where log pi > log pi_ref, blue below
    _, _, red0, blue0 = shot(same, "unmoved")  # every log ratio 0: white backgrounds, no red or blue
    assert red0 == 0 and blue0 == 0


def test_screenshot_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(explain, "find_browser", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"no headless browser found: install Chromium"):
        explain.screenshot(str(tmp_path / "a.html"), str(tmp_path / "a.png"))
    with pytest.raises(FileNotFoundError, match=r"no page at .*a\.html'; write one with explain\.to_html"):
        explain.screenshot(str(tmp_path / "a.html"), str(tmp_path / "a.png"), browser="/bin/true")


def test_explain_an_export_against_its_reference_from_the_cli(tokenizer, tmp_path, capsys):
    from tf_rl_text import cli
    from tf_rl_text.export import export_policy

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    before = export_policy(agent, str(tmp_path / "mle"), max_new_tokens=4)
    for v in agent.model.trainable_variables[:3]:  # move the policy a little
        v.assign_add(0.05 * tf.ones_like(v))
    after = export_policy(agent, str(tmp_path / "rl"), max_new_tokens=4)
    rows = explain.explain(tf_rl_text.load(after), ["the movie was"], reference=tf_rl_text.load(before), greedy=True)
    live = agent.log_probs(*[tf.constant(x) for x in agent.encode_prompts(["the movie was"])],
                           *[tf.constant(x) for x in _greedy_ids(agent, "the movie was")])
    np.testing.assert_allclose(rows[0].quantities["log_prob"], live.numpy()[0, : len(rows[0].tokens)], atol=1e-5)
    assert np.abs(rows[0].quantities["log_ratio"]).max() > 0 and rows[0].top_moved(2)
    html_path = str(tmp_path / "credit.html")
    assert cli.main(["explain", after, "the movie was", "--reference", before, "--greedy", "--html", html_path,
                     "--quantity", "log_ratio"]) == 0
    out = capsys.readouterr().out
    assert "log_ratio" in out and os.path.exists(html_path)


def _greedy_ids(agent, prompt):
    ids, mask = agent.encode_prompts([prompt])
    gen = agent.generate(ids, mask, max_new_tokens=4, greedy=True)
    return gen.completion_ids.numpy(), gen.completion_mask.numpy()


def test_tensorboard_logs_one_sample_s_credit_per_evaluation(tokenizer, tmp_path):
    from tf_rl_text.callbacks import EvalCallback, TensorBoard

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, env_for(tokenizer), ReinforceConfig(baseline="rloo", num_samples_per_prompt=2,
                                                                         kl_coef=0.1))
    board = TensorBoard(str(tmp_path / "tb"), eval_text=explain.credit_text("the movie was"))
    trainer.train(2, callbacks=[board, EvalCallback(["my day"], metrics=lambda t: {"x": 1.0}, every=1)],
                  progress=False)
    table = board.eval_text(trainer)
    assert table.startswith("**the movie was** ->") and "| token | log_prob | entropy |" in table
    assert "advantage" in table and len(table.splitlines()) >= 5
    events = [f for f in os.listdir(tmp_path / "tb")]
    assert events and trainer.global_step == 2
