#!/usr/bin/env python
"""Conversation rollouts with the key/value cache kept across turns (``ConversationEnv(turn_cache=True)``,
the default where the model allows) against re-encoding the conversation every turn (``turn_cache=False``).

The workload: a GPT-2 of 4 layers x 256 (the shared workload's size) with the package's embedded tokenizer
(vocabulary 512) and 1,024 positions, 8 episodes per rollout, each opening with a ``--opening`` token user message; the other
side (a scripted user) answers every policy turn with a ``--reply`` token message; ``--new-tokens`` sampled
tokens per policy turn (a random model rarely says EOS, so each turn runs its full length); 2, 4 and 8
policy turns. Reported: the median wall seconds of a rollout (``--repeats`` timed after one untimed
warm-up) each way, the speed-up, the tokens each way reads through the model, and whether greedy
rollouts give the same transcripts both ways.

    python benchmarks/conversation_cache.py            # prints one JSON line last
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tf_rl_text import RLAgent, default_model  # noqa: E402
from tf_rl_text.conversation import ConversationEnv, ScriptedUser  # noqa: E402
from tf_rl_text.defaults import default_tokenizer  # noqa: E402


def words(tok, n: int, start: int = 0) -> str:
    """Plain words, cut to ``n`` tokens."""
    vocabulary = "the a day good movie time people water music food game city book night world friend".split()
    text = " ".join(vocabulary[(start + i) % len(vocabulary)] for i in range(4 * n))
    return tok.decode(tok.encode(text)[:n]).strip()


def rollout_seconds(env, agent, repeats: int, greedy: bool = False):
    env.rollout(agent, greedy=greedy, seed=0)  # traces the graphs
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        env.rollout(agent, greedy=greedy, seed=r + 1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", default="2,4,8", help="comma-separated policy turns per episode")
    ap.add_argument("--opening", type=int, default=128, help="tokens of the opening user message")
    ap.add_argument("--reply", type=int, default=24, help="tokens of each user reply")
    ap.add_argument("--new-tokens", type=int, default=16, help="tokens per policy turn")
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    tok = default_tokenizer()
    agent = RLAgent(default_model(tok, n_layer=4, n_embd=256, n_head=4, n_positions=1024), tok, seed=0)
    tasks = [words(tok, args.opening, start=i) for i in range(args.episodes)]
    user = ScriptedUser(lambda task, turn, text: words(tok, args.reply, start=turn), lambda task, turn, text: 0.0)
    rows = []
    for turns in [int(t) for t in args.turns.split(",")]:
        row = {"turns": turns}
        transcripts = {}
        for cache in (True, False):
            env = ConversationEnv(tasks, tok, user, max_turns=turns, max_new_tokens=args.new_tokens,
                                  batch_size=args.episodes, shuffle=False, turn_cache=cache)
            name = "kept_cache" if cache else "re_encoded"
            row[f"{name}_s"] = round(rollout_seconds(env, agent, args.repeats), 3)
            transcripts[cache] = env.rollout(agent, greedy=True, prompts=tasks).transcripts
            print(f"turns {turns} {name}: {row[f'{name}_s']} s", file=sys.stderr)
        row["speedup"] = round(row["re_encoded_s"] / row["kept_cache_s"], 2)
        opening = len(tok.encode("User: " + tasks[0] + "\nAssistant:"))
        reply = len(tok.encode("\nUser: " + words(tok, args.reply) + "\nAssistant:"))
        # tokens fed through the model per episode, prompt reads plus one per generated token
        row["tokens_read_kept"] = opening + (turns - 1) * reply + turns * args.new_tokens
        row["tokens_read_re_encoded"] = sum(opening + t * (args.new_tokens + reply) + args.new_tokens
                                            for t in range(turns))
        row["greedy_transcripts_equal"] = transcripts[True] == transcripts[False]
        rows.append(row)
    print(json.dumps({"benchmark": "conversation_cache", "model": "gpt2 4x256, vocabulary 512",
                      "episodes": args.episodes, "opening_tokens": args.opening, "reply_tokens": args.reply,
                      "new_tokens_per_turn": args.new_tokens, "repeats": args.repeats, "rows": rows}))


if __name__ == "__main__":
    main()
