#!/usr/bin/env python
"""The article's classifier-as-policy on real data, with the pretrained MiniLM (docs/article_example.md).

    python benchmarks/article_results.py scitldr  [--seeds 3] [--train 400]
    python benchmarks/article_results.py topical  [--seeds 3] [--train 300] [--test 300]

* ``scitldr``: extractive summarization as sequential sentence selection (Narayan et al. 2018). A state is
  an abstract; its choices are its sentences, each scored by the MiniLM ``TFBertForSequenceClassification``
  (num_labels=1) on the pair ("sentence i of n", sentence); the policy picks k = 1 or 2 sentences without
  replacement (Plackett-Luce, ``tf_rl_text.choice.selection_log_probs``). Compared on the full test set
  (618 abstracts, ROUGE-L F1, best over each abstract's references): lead-k; the same classifier trained by
  cross-entropy on oracle labels (the k sentences with the highest ROUGE-L vs the reference); the same
  classifier trained by REINFORCE (RLOO, 4 samples per abstract) with reward = ROUGE-L of the extract.
* ``topical``: Topical-Chat response selection: the previous turn as context, the true next turn among
  9 distractors drawn from other conversations; reward 1 for the true turn. recall@1 before and after
  REINFORCE (RLOO, 4 samples per state). Train: valid_freq, test: test_freq (random contexts, seeded).

CPU budget (2 shared cores): the MiniLM encoder is frozen and its per-pair [CLS] states are computed
once (cached under --cache); what trains is the classifier's pooler and output layer, exactly as
``TFBertForSequenceClassification`` applies them to those states. The update and sampling functions are
the library's (``tf_rl_text.choice``, ``tf_rl_text.trainers.choice``, ``tf_rl_text.trainers.reinforce``).
Prints JSON (last line of stdout).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_rl_text._compat import keras, tf  # noqa: E402
from tf_rl_text import metrics  # noqa: E402
from tf_rl_text.choice import encode_pair, sample_selection, selection_log_probs  # noqa: E402
from tf_rl_text.data import shared_data_dir  # noqa: E402
from tf_rl_text.rewards.similarity import minilm_path, quiet_transformers  # noqa: E402
from tf_rl_text.trainers.choice import choice_reinforce_loss  # noqa: E402
from tf_rl_text.trainers.reinforce import compute_baseline  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def data_dir(args, name):
    """The data set's folder: under --data, else the package's shared data folder (tf_rl_text.data)."""
    try:
        root = shared_data_dir(args.data)
    except FileNotFoundError as e:
        raise SystemExit(f"{name}: {e}") from None
    if not os.path.isdir(os.path.join(root, name)):
        raise SystemExit(f"{name} not found under {root!r}: pass --data FOLDER (the folder holding {name}/)")
    return os.path.join(root, name)


# --------------------------------------------------------------------------- the frozen encoder, cached
class Classifier:
    """MiniLM TFBertForSequenceClassification(num_labels=1): encoder states cached, pooler + classifier train."""

    def __init__(self):
        from transformers import AutoTokenizer, TFBertForSequenceClassification

        with quiet_transformers():
            self.model = TFBertForSequenceClassification.from_pretrained(minilm_path(), num_labels=1)
        self.tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        self.initial = [v.numpy() for v in self.head_variables]
        spec = tf.TensorSpec([None, None], tf.int32)
        self._encode = tf.function(lambda i, m, t: self.model.bert(input_ids=i, attention_mask=m, token_type_ids=t,
                                                                    training=False).last_hidden_state[:, 0],
                                   input_signature=[spec, spec, spec])

    @property
    def head_variables(self):
        return self.model.bert.pooler.trainable_variables + self.model.classifier.trainable_variables

    def reset(self, seed):
        """Pretrained pooler, a fresh classifier layer (seeded), as from_pretrained(num_labels=1) gives."""
        for v, x in zip(self.head_variables, self.initial):
            v.assign(x)
        kernel = self.model.classifier.kernel
        kernel.assign(tf.random.stateless_truncated_normal(kernel.shape, [seed, 1], stddev=0.02))

    def encode_pairs(self, pairs, max_length, cache):
        """[CLS] states (N, 384) float32 of (a, b) text pairs, sorted by length into batches of 64."""
        if cache and os.path.exists(cache):
            return np.load(cache)
        enc = [encode_pair(self.tokenizer, a, b, max_length) for a, b in pairs]
        order = np.argsort([len(e["input_ids"]) for e in enc])
        out = np.zeros((len(pairs), self.model.config.hidden_size), np.float32)
        start = time.perf_counter()
        for s in range(0, len(order), 64):
            rows = order[s:s + 64]
            width = max(len(enc[r]["input_ids"]) for r in rows)
            arrays = np.zeros((3, len(rows), width), np.int32)
            for j, r in enumerate(rows):
                n = len(enc[r]["input_ids"])
                arrays[0, j, :n], arrays[1, j, :n], arrays[2, j, :n] = (
                    enc[r]["input_ids"], 1, enc[r].get("token_type_ids", [0] * n))
            out[rows] = self._encode(*[tf.constant(a) for a in arrays]).numpy()
            if s // 64 % 10 == 0:
                log(f"  encoded {s + len(rows)}/{len(pairs)} pairs ({time.perf_counter() - start:.0f} s)")
        if cache:
            np.save(cache, out)
        return out

    def logits(self, states, training=False):
        """The classifier's logit from cached [CLS] states (..., d) -> (...)."""
        shape = tf.shape(states)[:-1]
        flat = tf.reshape(states, [-1, 1, states.shape[-1]])
        pooled = self.model.bert.pooler(flat)
        return tf.reshape(self.model.classifier(pooled)[:, 0], shape)


def padded(features, groups, width=None):
    """(B, C, d) states and (B, C) choice mask for groups of row indices into features."""
    width = width or max(len(g) for g in groups)
    states = np.zeros((len(groups), width, features.shape[1]), np.float32)
    mask = np.zeros((len(groups), width), np.int32)
    for i, g in enumerate(groups):
        states[i, : len(g)], mask[i, : len(g)] = features[g], 1
    return states, mask


class Policy:
    """The choice policy over cached states, trained by REINFORCE (RLOO) or by cross-entropy."""

    def __init__(self, clf: Classifier, learning_rate):
        self.clf = clf
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(clf.head_variables)
        hidden = clf.model.config.hidden_size
        f32, i32 = tf.TensorSpec([None, None, hidden], tf.float32), tf.TensorSpec([None, None], tf.int32)
        self.select = tf.function(self._select, input_signature=[f32, i32, tf.TensorSpec([], tf.int32),
                                                                 tf.TensorSpec([2], tf.int32), tf.TensorSpec([], tf.bool)])
        self.rl_update = tf.function(self._rl_update, input_signature=[f32, i32, i32, i32, tf.TensorSpec([None]),
                                                                       tf.TensorSpec([None])])
        self.ce_update = tf.function(self._ce_update, input_signature=[f32, i32, tf.TensorSpec([None, None])])

    def _select(self, states, mask, k, seed, greedy):
        logits = self.clf.logits(states)
        return tf.cond(greedy, lambda: sample_selection(logits, mask, k, seed, True),
                       lambda: sample_selection(logits, mask, k, seed, False))

    def _apply(self, loss, tape):
        variables = self.clf.head_variables
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), 1.0)
        self.optimizer.apply_gradients(zip(grads, variables))

    def _rl_update(self, states, mask, actions, action_mask, rewards, baseline):
        with tf.GradientTape() as tape:
            logp = selection_log_probs(self.clf.logits(states, True), mask, actions, action_mask)  # (B, k)
            loss, _ = choice_reinforce_loss(logp, action_mask, rewards, baseline)
        self._apply(loss, tape)
        return loss

    def _ce_update(self, states, mask, targets):
        """Listwise cross-entropy: -sum_a q(a) log pi(a | s), q uniform over the oracle sentences."""
        with tf.GradientTape() as tape:
            logits = tf.where(mask > 0, self.clf.logits(states, True), -1e9)
            loss = -tf.reduce_mean(tf.reduce_sum(targets * tf.nn.log_softmax(logits), axis=1))
        self._apply(loss, tape)
        return loss

    def choose(self, states, mask, k, greedy=True, seed=0):
        actions, action_mask = self.select(tf.constant(states), tf.constant(mask), tf.constant(k, tf.int32),
                                           tf.constant([seed, 0], tf.int32), tf.constant(greedy))
        return actions.numpy(), action_mask.numpy()


def rl_step(policy, features, groups, reward_of, k, pick, samples, seed):
    """One REINFORCE update with the leave-one-out baseline: the states ``pick`` x ``samples`` sampled selections
    (``seed``), rewarded by ``reward_of(state, chosen)``. Returns the rewards."""
    rows = [int(i) for i in pick for _ in range(samples)]
    states, mask = padded(features, [groups[i] for i in rows])
    actions, action_mask = policy.choose(states, mask, k, greedy=False, seed=seed)
    rewards = np.array([reward_of(i, a[m > 0]) for i, a, m in zip(rows, actions, action_mask)], np.float32)
    baseline = compute_baseline(rewards, "rloo", samples).numpy()
    policy.rl_update(states, mask, actions, action_mask, rewards, baseline)
    return rewards


def ce_step(policy, features, groups, oracle_sets, pick):
    """One cross-entropy update on the states ``pick``: the target is uniform over each one's oracle choices."""
    states, mask = padded(features, [groups[i] for i in pick])
    targets = np.zeros(mask.shape, np.float32)
    for row, i in enumerate(pick):
        targets[row, list(oracle_sets[i])] = 1.0 / len(oracle_sets[i])
    policy.ce_update(states, mask, targets)


def rl_train(policy, features, groups, reward_of, k, steps, batch, samples, seed, progress=""):
    """REINFORCE with the leave-one-out baseline: ``batch`` states x ``samples`` sampled selections per step."""
    rng = np.random.RandomState(seed)
    for step in range(steps):
        pick = rng.choice(len(groups), batch, replace=False)
        rewards = rl_step(policy, features, groups, reward_of, k, pick, samples, seed * 100003 + step)
        if progress and (step + 1) % 50 == 0:
            log(f"  {progress} step {step + 1}/{steps}: mean reward {rewards.mean():.3f}")


def greedy_choices(policy, features, groups, k):
    out = []
    for s in range(0, len(groups), 128):
        states, mask = padded(features, groups[s:s + 128])
        actions, action_mask = policy.choose(states, mask, k)
        out.extend(a[m > 0] for a, m in zip(actions, action_mask))
    return out


# --------------------------------------------------------------------------- SciTLDR
def load_scitldr(folder, split, limit=None):
    rows = []
    with open(os.path.join(folder, f"{split}.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            sents = [s.strip() for s in r["source"] if s.strip()]
            refs = [t.strip() for t in r["target"] if t.strip()]
            if sents and refs:
                rows.append((sents, refs))
            if limit and len(rows) >= limit:
                break
    return rows


def extract(sents, picked):
    return " ".join(sents[i] for i in sorted(int(a) for a in picked))


def scitldr(args):
    folder = data_dir(args, "scitldr")
    train, test = load_scitldr(folder, "train", args.train), load_scitldr(folder, "test", args.test_abstracts)
    log(f"SciTLDR: {len(train)} train abstracts, {len(test)} test abstracts")
    clf = Classifier()
    scorer = metrics.rouge_scorer(("rougeL",), True)

    def rouge_l(text, refs):
        s = scorer.score(refs[0], text) if len(refs) == 1 else scorer.score_multi(refs, text)
        return float(s["rougeL"].fmeasure)

    def groups_and_features(rows, name):
        pairs, groups = [], []
        for sents, _ in rows:
            groups.append(list(range(len(pairs), len(pairs) + len(sents))))
            pairs.extend((f"sentence {i + 1} of {len(sents)}", s) for i, s in enumerate(sents))
        cache = os.path.join(args.cache, f"scitldr_{name}_{len(rows)}.npy") if args.cache else None
        return groups, clf.encode_pairs(pairs, 64, cache)

    t0 = time.process_time()
    train_groups, train_feats = groups_and_features(train, "train")
    test_groups, test_feats = groups_and_features(test, "test")
    encode_cpu = time.process_time() - t0

    results = {"task": "scitldr", "train_abstracts": len(train), "test_abstracts": len(test), "seeds": args.seeds,
               "encode_cpu_s": round(encode_cpu, 1)}
    for k in (1, 2):
        lead = float(np.mean([rouge_l(extract(s, range(min(k, len(s)))), refs) for s, refs in test]))
        oracle_sets = []
        for sents, refs in train:  # the k sentences (in document order) with the best ROUGE-L
            n = len(sents)
            options = [(i,) for i in range(n)] if k == 1 or n < 2 else [(i, j) for i in range(n) for j in range(i + 1, n)]
            scores = [rouge_l(extract(sents, o), refs) for o in options]
            oracle_sets.append(options[int(np.argmax(scores))])
        reward_cache = {}

        def reward_of(i, picked):
            key = (i, tuple(sorted(int(a) for a in picked)))
            if key not in reward_cache:
                reward_cache[key] = rouge_l(extract(train[i][0], picked), train[i][1])
            return reward_cache[key]

        runs = {"rl": [], "cross_entropy": [], "untrained": []}
        for seed in range(args.seeds):
            for method in ("untrained", "cross_entropy", "rl"):
                clf.reset(seed)
                policy = Policy(clf, args.learning_rate)
                rng = np.random.RandomState(seed)
                if method == "cross_entropy":
                    for step in range(args.steps):
                        ce_step(policy, train_feats, train_groups, oracle_sets,
                                rng.choice(len(train), args.batch, replace=False))
                elif method == "rl":
                    rl_train(policy, train_feats, train_groups, reward_of, k, args.steps, args.batch, args.samples,
                             seed, progress=f"k={k} seed={seed}")
                chosen = greedy_choices(policy, test_feats, test_groups, k)
                score = float(np.mean([rouge_l(extract(s, c), refs) for (s, refs), c in zip(test, chosen)]))
                runs[method].append(score)
                log(f"k={k} seed={seed} {method}: test ROUGE-L {score:.4f}")
        results[f"k{k}"] = {"lead": lead, **{m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": v}
                                             for m, v in runs.items()}}
        log(json.dumps(results[f"k{k}"]))
    results["cpu_s"] = round(time.process_time() - t0, 1)
    return results


# --------------------------------------------------------------------------- Topical-Chat
def load_turn_pairs(path):
    with open(path) as f:
        conversations = json.load(f)
    pairs = []
    for conv_id, conv in conversations.items():
        turns = [t["message"].strip() for t in conv["content"]]
        for i in range(1, len(turns)):
            if turns[i] and turns[i - 1]:
                pairs.append((conv_id, turns[i - 1], turns[i]))
    return pairs


def selection_states(pairs, n, num_candidates, seed):
    """n (context, candidates, index of the true turn) states; distractors are turns of other conversations."""
    rng = np.random.RandomState(seed)
    states = []
    for p in rng.choice(len(pairs), n, replace=False):
        conv, context, reply = pairs[p]
        distractors = []
        while len(distractors) < num_candidates - 1:
            q = pairs[rng.randint(len(pairs))]
            if q[0] != conv and q[2] != reply and q[2] not in distractors:
                distractors.append(q[2])
        candidates = distractors + [reply]
        order = rng.permutation(num_candidates)
        candidates = [candidates[j] for j in order]
        states.append((context, candidates, int(np.flatnonzero(order == num_candidates - 1)[0])))
    return states


def topical(args):
    folder = data_dir(args, "topical_chat")
    train = selection_states(load_turn_pairs(os.path.join(folder, "valid_freq.json")), args.train, 10, 0)
    test = selection_states(load_turn_pairs(os.path.join(folder, "test_freq.json")), args.test, 10, 1)
    log(f"Topical-Chat: {len(train)} train states, {len(test)} test states, 10 candidates each")
    clf = Classifier()

    def groups_and_features(states, name):
        pairs = [(c, cand) for c, cands, _ in states for cand in cands]
        groups = [list(range(10 * i, 10 * i + 10)) for i in range(len(states))]
        cache = os.path.join(args.cache, f"topical_{name}_{len(states)}.npy") if args.cache else None
        return groups, clf.encode_pairs(pairs, 64, cache)

    t0 = time.process_time()
    train_groups, train_feats = groups_and_features(train, "train")
    test_groups, test_feats = groups_and_features(test, "test")
    encode_cpu = time.process_time() - t0

    # reference point: MiniLM used as it was trained, a bi-encoder (cosine of mean-pooled embeddings)
    from tf_rl_text.rewards.similarity import mean_pool

    def embed(texts):
        out = []
        for s in range(0, len(texts), 64):
            enc = clf.tokenizer(texts[s:s + 64], truncation=True, max_length=64, padding=True, return_tensors="np")
            hidden = clf.model.bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            out.append(tf.math.l2_normalize(mean_pool(hidden, enc["attention_mask"]), axis=-1).numpy())
        return np.concatenate(out)

    contexts = embed([c for c, _, _ in test])
    replies = embed([cand for _, cands, _ in test for cand in cands]).reshape(len(test), 10, -1)
    bi_encoder = float(np.mean(np.argmax(np.einsum("bd,bcd->bc", contexts, replies), axis=1) ==
                               [answer for _, _, answer in test]))
    log(f"bi-encoder cosine recall@1: {bi_encoder:.3f}")

    def recall_at_1(policy):
        chosen = greedy_choices(policy, test_feats, test_groups, 1)
        return float(np.mean([int(c[0]) == answer for c, (_, _, answer) in zip(chosen, test)]))

    before, after = [], []
    for seed in range(args.seeds):
        clf.reset(seed)
        policy = Policy(clf, args.learning_rate)
        before.append(recall_at_1(policy))
        rl_train(policy, train_feats, train_groups, lambda i, a: float(int(a[0]) == train[i][2]), 1, args.steps,
                 args.batch, args.samples, seed, progress=f"seed={seed}")
        after.append(recall_at_1(policy))
        log(f"seed={seed}: recall@1 {before[-1]:.3f} -> {after[-1]:.3f}")
    return {"task": "topical_chat", "train_states": len(train), "test_states": len(test), "candidates": 10,
            "seeds": args.seeds, "recall_at_1_before": {"mean": float(np.mean(before)), "runs": before},
            "recall_at_1_after": {"mean": float(np.mean(after)), "std": float(np.std(after)), "runs": after},
            "chance": 0.1, "bi_encoder_cosine_recall_at_1": bi_encoder, "encode_cpu_s": round(encode_cpu, 1), "cpu_s": round(time.process_time() - t0, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["scitldr", "topical"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=None, help="training abstracts / states (400 / 300)")
    parser.add_argument("--test", type=int, default=300, help="Topical-Chat test states")
    parser.add_argument("--test-abstracts", type=int, default=None, help="SciTLDR: the first N test abstracts "
                        "(default: all 618)")
    parser.add_argument("--steps", type=int, default=300, help="updates per run")
    parser.add_argument("--batch", type=int, default=16, help="states per update")
    parser.add_argument("--samples", type=int, default=4, help="sampled choices per state (RLOO)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--data", default=None, help="folder holding scitldr/ and topical_chat/")
    parser.add_argument("--cache", default="/tmp/tf_rl_text_article_cache", help="encoder-state cache ('' = none)")
    args = parser.parse_args()
    args.train = args.train or (400 if args.task == "scitldr" else 300)
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
    tf.keras.utils.set_random_seed(0)
    out = scitldr(args) if args.task == "scitldr" else topical(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
