#!/usr/bin/env python
"""Issue 40, step 3: a SciTLDR summariser that beats lead-1, then the results protocol on it.

The abstractive summariser of ``benchmarks/results.py`` stays below lead-1 at this scale (docs/results.md).
This is the extractive route of the article's choice policy (``benchmarks/article_results.py scitldr``): a
state is an abstract, its choices its sentences, each scored by the pretrained MiniLM
``TFBertForSequenceClassification`` (num_labels=1) on the pair ("sentence i of n", sentence); the encoder
is frozen (its [CLS] states computed once), the pooler and the output layer train. The summary is the one
sentence chosen (k = 1). Every figure uses the scorer of docs/results.md (``results.per_example``: ROUGE-L
F1 x 100, stemmed, best over each abstract's references).

The protocol, fixed before the runs (docs/results.md states it):

* **W0**, the warm start: cross-entropy on oracle labels (each training abstract's best sentence by
  ROUGE-L), all 1,991 training abstracts, Adam 1e-3, 16 abstracts an update; dev ROUGE-L (all dev
  abstracts, greedy) every 50 updates; stops when 4 evaluations in a row do not improve on the best (the
  plateau rule) or at 3,000 updates; keeps the best. It counts as a warm start that beats lead-1 only if
  its dev score is above lead-1's.
* From W0, with the same number of updates each (``--updates``, dev every 50, keep-best):
  **RL**: REINFORCE, 4 sampled sentences per abstract, leave-one-out baseline, reward = ROUGE-L of the
  sentence; **the MLE control**: the same cross-entropy with a fresh Adam (a restart of W0's training:
  if it gains on dev, W0 was not converged).
* A constant-reward control is not run: with the leave-one-out baseline a constant reward has zero
  advantage, so its updates are exactly 0 and it is W0.
* Test: all 618 test abstracts, once per final policy. **The test fixed before the runs: RL - MLE
  control, one paired-bootstrap interval (1,000 resamples over test abstracts, the same draw for every
  seed) of the mean over the seeds; RL is better if the 95% interval is above 0.** Also each system
  against lead-1 and RL - W0, the same way.
* ``--seeds`` seeds (default 5): the seed sets the classifier layer's initialisation and the data order.

Stages are written as they finish (``--out``, default docs/results/extractive.json; per-example scores
beside it) and a rerun of the same command resumes after the last finished stage. CPU seconds
(``time.process_time``) are recorded per stage. Prints the summary JSON last.

    python benchmarks/extractive_results.py [--seeds 5] [--updates 600]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

from article_results import (Classifier, Policy, ce_step, data_dir, greedy_choices, load_scitldr, log,  # noqa: E402
                             rl_step)
from results import per_example, pooled_interval, read_json, write_json  # noqa: E402

from tf_rl_text._compat import tf  # noqa: E402

EVAL_EVERY = 50
PATIENCE = 4
W0_MAX_UPDATES = 3000


def sentence_scores(rows):
    """Per abstract, the ROUGE-L F1 (x 100) of each of its sentences as the summary: every k = 1 figure is a
    lookup in this table (lead-1 is column 0)."""
    flat = [(s, refs) for sents, refs in rows for s in sents]
    scores = per_example("summarization", [s for s, _ in flat], [refs for _, refs in flat])
    out, start = [], 0
    for sents, _ in rows:
        out.append(np.asarray(scores[start:start + len(sents)], np.float64))
        start += len(sents)
    return out


class Split:
    """One split's sentences, encoder states and sentence scores."""

    def __init__(self, name, rows, clf, cache):
        self.name, self.rows = name, rows
        pairs, self.groups = [], []
        for sents, _ in rows:
            self.groups.append(list(range(len(pairs), len(pairs) + len(sents))))
            pairs.extend((f"sentence {i + 1} of {len(sents)}", s) for i, s in enumerate(sents))
        path = os.path.join(cache, f"extractive_{name}_{len(rows)}.npy") if cache else None
        self.features = clf.encode_pairs(pairs, 64, path)
        self.table = sentence_scores(rows)

    def scores(self, policy):
        """Per-example ROUGE-L of the policy's greedy choice."""
        chosen = greedy_choices(policy, self.features, self.groups, 1)
        return np.array([self.table[i][int(c[0])] for i, c in enumerate(chosen)])

    def lead(self):
        return np.array([t[0] for t in self.table])


def head_values(clf):
    return [v.numpy() for v in clf.head_variables]


def set_head(clf, values):
    for v, x in zip(clf.head_variables, values):
        v.assign(x)


def train_keep_best(clf, policy, update, dev, max_updates, patience, label):
    """``update(step)`` for up to ``max_updates`` updates, dev every EVAL_EVERY; keep-best; stop after
    ``patience`` evaluations without a new best (None: never). Returns (dev curve, best update, best dev)."""
    best, best_at, best_values = float(dev.scores(policy).mean()), 0, head_values(clf)
    curve, since = [[0, round(best, 4)]], 0
    for step in range(1, max_updates + 1):
        update(step)
        if step % EVAL_EVERY:
            continue
        score = float(dev.scores(policy).mean())
        curve.append([step, round(score, 4)])
        if score > best:
            best, best_at, best_values, since = score, step, head_values(clf), 0
        else:
            since += 1
        log(f"  {label} update {step}: dev {score:.2f} (best {best:.2f} at {best_at})")
        if patience is not None and since >= patience:
            break
    set_head(clf, best_values)
    return curve, best_at, best


def ce_updates(policy, train, oracle, rng, batch):
    """Cross-entropy on the oracle sentence, ``batch`` abstracts an update (article_results.ce_step)."""
    oracle_sets = [(o,) for o in oracle]
    return lambda step: ce_step(policy, train.features, train.groups, oracle_sets,
                                rng.choice(len(train.groups), batch, replace=False))


def rl_updates(policy, train, rng, batch, samples, seed):
    """REINFORCE with the leave-one-out baseline (article_results.rl_step): ``batch`` abstracts x ``samples``
    sampled sentences an update, reward = the sentence's ROUGE-L F1 (0-1, as in benchmarks/article_results.py)."""
    reward = lambda i, picked: train.table[i][int(picked[0])] / 100  # noqa: E731
    return lambda step: rl_step(policy, train.features, train.groups, reward, 1,
                                rng.choice(len(train.groups), batch, replace=False), samples, seed * 100003 + step)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=600, help="RL and MLE-control updates from W0")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--train", type=int, default=None, help="the first N training abstracts (default: all)")
    ap.add_argument("--dev", type=int, default=None, help="the first N dev abstracts (default: all)")
    ap.add_argument("--test", type=int, default=None, help="the first N test abstracts (default: all)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data"),
                    help="the folder holding scitldr/ (default: ../shared/data beside the checkout)")
    ap.add_argument("--cache", default="/tmp/tf_rl_text_article_cache")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "results", "extractive.json"))
    args = ap.parse_args(argv)
    for folder in (args.cache, os.path.dirname(os.path.abspath(args.out))):
        if folder:
            os.makedirs(folder, exist_ok=True)
    tf.keras.utils.set_random_seed(0)
    folder = data_dir(args, "scitldr")
    t0 = time.process_time()
    clf = Classifier()
    splits = {name: Split(name, load_scitldr(folder, name, limit), clf, args.cache)
              for name, limit in (("train", args.train), ("dev", args.dev), ("test", args.test))}
    train, dev, test = splits["train"], splits["dev"], splits["test"]
    oracle = [int(np.argmax(t)) for t in train.table]
    scores_path = args.out.replace(".json", "_scores.json")
    doc = read_json(args.out) or {}
    per_ex = read_json(scores_path) or {}
    settings = {k: getattr(args, k) for k in ("updates", "batch", "samples", "learning_rate", "train", "dev", "test",
                                              "resamples")}
    if doc.get("settings", settings) != settings:
        raise SystemExit(f"{args.out} was made with other settings ({doc['settings']}); use another --out")
    doc.update({"task": "scitldr_extractive_k1", "settings": settings,
                "abstracts": {n: len(s.rows) for n, s in splits.items()},
                "protocol": {"eval_every": EVAL_EVERY, "patience": PATIENCE, "w0_max_updates": W0_MAX_UPDATES,
                             "fixed_test": "RL - MLE control, pooled paired bootstrap over test abstracts, "
                                           "95% interval above 0"}})
    doc.setdefault("cpu_s", {})["encode_and_tables"] = round(time.process_time() - t0, 1)
    per_ex["lead1"], per_ex["oracle"] = test.lead().round(4).tolist(), [float(t.max()) for t in test.table]
    doc["baselines"] = {"test_lead1": float(test.lead().mean()), "dev_lead1": float(dev.lead().mean()),
                        "test_oracle": float(np.mean([t.max() for t in test.table])),
                        "dev_oracle": float(np.mean([t.max() for t in dev.table]))}
    runs = doc.setdefault("seeds", {})
    for seed in range(args.seeds):
        run = runs.setdefault(str(seed), {})
        # W0's head for the later stages of a resumed run (not committed: 0.6 MB a seed)
        weights = os.path.join(args.cache or os.path.dirname(args.out), f"extractive_w0_seed{seed}_{len(train.rows)}.npz")
        for stage in ("w0", "rl", "mle_control"):
            if stage in run:
                continue
            start = time.process_time()
            clf.reset(seed)
            policy = Policy(clf, args.learning_rate)
            rng = np.random.RandomState(seed)
            if stage == "w0":
                curve, at, best = train_keep_best(clf, policy, ce_updates(policy, train, oracle, rng, args.batch), dev,
                                                  W0_MAX_UPDATES, PATIENCE, f"seed {seed} W0")
                np.savez(weights, *head_values(clf))
            else:
                with np.load(weights) as saved:
                    set_head(clf, [saved[f"arr_{i}"] for i in range(len(saved.files))])
                if stage == "rl":
                    update = rl_updates(policy, train, np.random.RandomState(seed + 2000), args.batch, args.samples,
                                        seed)
                else:
                    update = ce_updates(policy, train, oracle, np.random.RandomState(seed + 1000), args.batch)
                curve, at, best = train_keep_best(clf, policy, update, dev, args.updates, None, f"seed {seed} {stage}")
            test_scores = test.scores(policy)
            per_ex[f"{stage}_seed{seed}"] = test_scores.round(4).tolist()
            run[stage] = {"dev_curve": curve, "best_update": at, "dev": round(best, 4),
                          "test": round(float(test_scores.mean()), 4), "cpu_s": round(time.process_time() - start, 1)}
            log(f"seed {seed} {stage}: dev {best:.2f} (update {at}), test {test_scores.mean():.2f}")
            write_json(scores_path, per_ex)
            write_json(args.out, doc)
    done = [s for s in runs if all(k in runs[s] for k in ("w0", "rl", "mle_control"))]

    def pooled(a, b):
        a_runs = [per_ex[f"{a}_seed{s}"] for s in done]
        b_runs = [per_ex[b] for s in done] if b == "lead1" else [per_ex[f"{b}_seed{s}"] for s in done]
        return pooled_interval("summarization", a_runs, b_runs, args.resamples)

    doc["pooled"] = {"rl_minus_mle_control": pooled("rl", "mle_control"), "rl_minus_w0": pooled("rl", "w0"),
                     **{f"{x}_minus_lead1": pooled(x, "lead1") for x in ("w0", "rl", "mle_control")}}
    doc["means"] = {x: float(np.mean([runs[s][x]["test"] for s in done])) for x in ("w0", "rl", "mle_control")}
    doc["dev_means"] = {x: float(np.mean([runs[s][x]["dev"] for s in done])) for x in ("w0", "rl", "mle_control")}
    doc["seeds_done"] = len(done)
    doc["cpu_s"]["total_this_run"] = round(time.process_time() - t0, 1)
    write_json(args.out, doc)
    print(json.dumps({k: doc[k] for k in ("baselines", "means", "dev_means", "pooled", "seeds_done")}))


if __name__ == "__main__":
    main()
