#!/usr/bin/env python
"""See which tokens the reward credited: train a small PPO policy briefly, then write its per-token credit view.

The policy is the embedded GPT-2, warm-started on the embedded review corpus; the reward is the
embedded sentiment lexicon (positive minus negative words, offline, no downloads). After a short PPO
run, ``explain`` reads the batch the next step would train on and writes, for every generated
token, its log-prob, entropy, log ratio and KL against the frozen reference, V(s_t) and the GAE
advantage PPO gives it:

- ``OUT/credit.html``: tokens coloured by the advantage (hover for every number; no scripts);
- ``OUT/credit.png``: the same as a heatmap;
- ``OUT/credit_page.png``: the page as a headless Chromium shows it (when one is installed).

    python examples/credit_view.py                    # about a minute on 2 CPU cores
    python examples/credit_view.py --out docs/credit_view --steps 40
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tf_rl_text import PPOConfig, PPOTrainer, RLAgent, TextGenerationEnv, explain, warm_start  # noqa: E402
from tf_rl_text.defaults import default_model, default_tokenizer, load_corpus, load_prompts  # noqa: E402
from tf_rl_text.rewards import default_sentiment_reward  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="credit_view", help="folder for credit.html, credit.png, credit_page.png")
    ap.add_argument("--steps", type=int, default=30, help="PPO updates before the view (default 30)")
    ap.add_argument("--warm-start-steps", type=int, default=300)
    ap.add_argument("--quantity", default="advantage", help="what colours the tokens (default advantage)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.steps < 0 or args.warm_start_steps < 0:
        ap.error("--steps and --warm-start-steps must be >= 0")
    tokenizer = default_tokenizer()
    agent = RLAgent(default_model(tokenizer, seed=args.seed), tokenizer, seed=args.seed)
    print(f"warm start: {args.warm_start_steps} steps on the embedded review corpus", flush=True)
    warm_start(agent, load_corpus(), steps=args.warm_start_steps, progress=False, seed=args.seed)
    env = TextGenerationEnv(load_prompts(), tokenizer, default_sentiment_reward(), batch_size=4, max_new_tokens=12,
                            seed=args.seed, agent=agent)
    trainer = PPOTrainer(agent, env, PPOConfig(learning_rate=3e-4, num_samples_per_prompt=2, kl_coef=0.05))
    print(f"PPO: {args.steps} updates, sentiment-lexicon reward", flush=True)
    trainer.train(args.steps, progress=False)
    rows = explain.explain(trainer)  # the batch the next step would train on; the run does not move
    os.makedirs(args.out, exist_ok=True)
    html_path = os.path.join(args.out, "credit.html")
    explain.to_html(rows, args.quantity, html_path, title=f"tf_rl_text: per-token credit after {args.steps} PPO updates")
    written = [html_path, explain.to_png(rows, args.quantity, os.path.join(args.out, "credit.png"))]
    if explain.find_browser():
        written.append(explain.screenshot(html_path, os.path.join(args.out, "credit_page.png"), width=1000,
                                          height=640))
    else:
        print("no headless Chromium found: skipped credit_page.png (apt-get install chromium)", flush=True)
    for r in rows[:2]:
        print(repr(r.prompt), " ".join(f"{t!r}:{a:+.2f}" for t, a in zip(r.tokens, r.quantities[args.quantity])))
    print("wrote", ", ".join(written))
    return rows


if __name__ == "__main__":
    main()
