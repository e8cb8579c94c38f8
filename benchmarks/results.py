#!/usr/bin/env python
"""The results protocol (issue 15): does RL beat its maximum-likelihood warm start, and an
equal-compute maximum-likelihood control, on real data? One command runs one seed of one task:

    python benchmarks/results.py --task translation --seed 0          # Multi30k en->de
    python benchmarks/results.py --task summarization --seed 0        # SciTLDR
    python benchmarks/results.py --task dialogue --seed 0             # Topical-Chat (no target)
    python benchmarks/results.py --summary                            # table of every seed, with intervals

Data: ``--data-dir`` or ``$TF_RL_TEXT_DATA`` (the folder holding multi30k/, scitldr/, topical_chat/).

The protocol, for one seed:

1. tokenizer (BPE on the training texts) + a small encoder-decoder from scratch;
2. **MLE warm start with early stopping**: teacher forcing (``fit_pairs``, one Adam state across
   chunks) in chunks of ``mle_eval_every`` steps; after each chunk the dev metric (greedy); stop after
   ``mle_patience`` chunks without a new best (or ``mle_max_steps`` / ``mle_max_seconds``); the best
   dev weights are the warm start W0;
3. **RL** from W0: ``ReinforceTrainer`` (baseline ``rl_baseline`` with k samples per prompt, KL leash
   ``kl_coef`` to W0), the task metric per output as the reward; dev metric every ``rl_eval_every``
   updates, the best dev checkpoint (W0 competes) is kept; stops at ``rl_max_steps`` or ``rl_seconds``;
4. **equal-compute control** from W0: more MLE for the same training wall time RL used (dev
   evaluations excluded on both sides), with as many dev checks, best dev checkpoint kept;
5. full test set, greedy decoding, for W0 (``test_mle``), the control and RL; the paired bootstrap 95%
   interval of test_rl - test_mle (and of test_rl - test_control) over test examples; reference
   perplexity of each; KL(pi || W0) per sequence on samples of the policy; wall times;
6. exports ``<export-dir>/<task>/seed<N>/{mle,rl}`` (``tf_rl_text.load(path).generate(texts)``) and
   the seed's entry in ``<results-dir>/<task>.json`` (other seeds' entries are kept).

Metrics (x100): translation and dialogue: sacreBLEU (cased, detokenized, 13a; corpus level; the
bootstrap resamples sentence statistics); summarization: ROUGE-L F1 (stemmed, best reference;
the mean over texts). ``--scale`` picks sizes: ``full`` (the issue's protocol, ~30 min a seed on an
idle 2-core machine, not yet measured), ``reduced`` (what this machine's shared CPUs allowed; see
docs/results.md), ``tiny`` (the CI slice). Any size can be overridden: ``--set rl_seconds=300``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

import tf_rl_text  # noqa: E402  (sets up TensorFlow before transformers)
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, data, fit_pairs, metrics  # noqa: E402
from tf_rl_text._compat import tf  # noqa: E402
from tf_rl_text.defaults import default_seq2seq_model, train_tokenizer  # noqa: E402
from tf_rl_text.export import export_policy  # noqa: E402
from tf_rl_text.rewards import BleuReward, RougeReward  # noqa: E402

TASKS = ("translation", "summarization", "dialogue")
METRIC_NAMES = {"translation": "sacrebleu", "summarization": "rougeL_f1_best_ref", "dialogue": "sacrebleu"}
SCITLDR_SOURCE_WORDS = 120


@dataclasses.dataclass
class Settings:
    vocab_size: int = 4000
    d_model: int = 128
    layers: int = 2
    max_source_tokens: int = 48
    max_new_tokens: int = 40
    train_limit: int | None = None
    dev_limit: int | None = 300
    test_limit: int | None = None  # None: the whole test set (the protocol); CI only cuts it
    # MLE warm start with early stopping on the dev metric
    mle_lr: float = 2e-3
    mle_batch_size: int = 64
    mle_eval_every: int = 300
    mle_patience: int = 2
    mle_max_steps: int = 6000
    mle_max_seconds: float = 900.0
    # RL
    rl_baseline: str = "rloo"
    rl_samples_per_prompt: int = 4
    rl_batch_size: int = 16
    rl_lr: float = 1e-4
    kl_coef: float = 0.02
    entropy_coef: float = 0.0
    mle_coef: float = 0.0  # the mixed objective: RL loss + mle_coef * reference NLL (Paulus et al. 2018)
    rl_max_steps: int = 2000
    rl_seconds: float = 600.0
    rl_eval_every: int = 25
    # measurement
    kl_samples: int = 200
    bootstrap_resamples: int = 1000
    eval_batch_size: int = 64


SCALES = {
    "full": {},
    # what fitted this session: a 2-core machine shared by ~7 processes (load average ~12)
    "reduced": dict(vocab_size=2000, d_model=64, layers=2, max_source_tokens=40, max_new_tokens=32,
                    dev_limit=150, mle_eval_every=150, mle_patience=3, mle_max_steps=5000, mle_max_seconds=420, rl_lr=2e-4,
                    rl_seconds=150, rl_max_steps=400, rl_eval_every=10, rl_batch_size=8, kl_samples=100),
    "tiny": dict(vocab_size=300, d_model=32, layers=1, max_source_tokens=16, max_new_tokens=8, train_limit=24,
                 dev_limit=6, test_limit=8, mle_lr=1e-2, mle_batch_size=8, mle_eval_every=15, mle_patience=1,
                 mle_max_steps=30, mle_max_seconds=60, rl_samples_per_prompt=2, rl_batch_size=4, rl_lr=1e-3,
                 rl_max_steps=4, rl_seconds=60, rl_eval_every=2, kl_samples=4, bootstrap_resamples=200,
                 eval_batch_size=16),
}
TASK_SCALE = {  # per-task differences from a scale
    ("summarization", "full"): dict(max_source_tokens=160, max_new_tokens=40, mle_batch_size=32, rl_batch_size=8),
    ("summarization", "reduced"): dict(max_source_tokens=128, max_new_tokens=32, mle_batch_size=32, dev_limit=100,
                                       mle_eval_every=100, mle_max_seconds=360),
    ("summarization", "tiny"): dict(max_source_tokens=24),
    ("dialogue", "full"): dict(max_source_tokens=96),
    ("dialogue", "reduced"): dict(max_source_tokens=64),
}


def settings_for(task: str, scale: str, overrides=()) -> Settings:
    s = Settings(**{**SCALES[scale], **TASK_SCALE.get((task, scale), {})})
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set takes NAME=VALUE with NAME one of {sorted(fields)}, got {item!r}")
        current = getattr(s, key)
        if value.lower() == "none":
            setattr(s, key, None)
        elif isinstance(current, str):
            setattr(s, key, value)
        elif isinstance(current, float):
            setattr(s, key, float(value))
        else:
            setattr(s, key, int(value))
    return s


# --------------------------------------------------------------------------- data
def load_task_data(task: str, data_dir: str | None):
    """(train, dev, test) PromptDatasets of a task from the shared data folder."""
    if task == "translation":
        return tuple(data.load_translation(split=s, data_dir=data_dir) for s in ("train", "val", "test_2016_flickr"))
    if task == "summarization":
        return tuple(data.load_summarization(split=s, max_source_words=SCITLDR_SOURCE_WORDS, data_dir=data_dir)
                     for s in ("train", "dev", "test"))
    if task == "dialogue":  # Topical-Chat here has valid_freq and test_freq: valid_freq is cut 90/10 into train/dev
        train, dev = data.load_dialogue(split="valid_freq", data_dir=data_dir).split(0.9, shuffle=True, seed=0)
        return train, dev, data.load_dialogue(split="test_freq", data_dir=data_dir)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _limit(ds, n):
    return ds if n is None else ds.take(min(int(n), len(ds)))


# --------------------------------------------------------------------------- scoring
def per_example(task: str, outputs, references):
    """Per-example statistics the task metric and its bootstrap need: sacreBLEU rows or ROUGE-L F1s."""
    if task == "summarization":
        return np.asarray(metrics.rouge_f1_batch(outputs, references, "rougeL"), np.float64) * 100
    return metrics.sacrebleu_stats(outputs, references)


def corpus_score(task: str, stats) -> float:
    stats = np.asarray(stats)
    return float(stats.mean()) if task == "summarization" else float(metrics.bleu_from_stats(stats.sum(axis=0)))


def bootstrap_statistic(task: str):
    if task == "summarization":
        return None  # the mean
    return lambda rows: metrics.bleu_from_stats(rows.sum(axis=1))


def score(task, agent, ds, s: Settings):
    outputs = metrics.generate_completions(agent, ds.prompts, max_new_tokens=s.max_new_tokens, greedy=True,
                                           batch_size=s.eval_batch_size)
    stats = per_example(task, outputs, ds.references)
    return corpus_score(task, stats), stats, outputs


def extra_metrics(outputs) -> dict:
    return {"distinct_2": metrics.distinct_n(outputs, 2), "mean_length": metrics.mean_length(outputs)}


def kl_to_reference(agent, reference_model, prompts, s: Settings, seed: int) -> float:
    """Mean over sampled sequences of sum_t [log pi(y_t) - log pi_W0(y_t)], y ~ pi: a Monte-Carlo KL(pi || W0)."""
    total, count = 0.0, 0
    for b in range(0, len(prompts), s.eval_batch_size):
        ids, mask = agent.encode_prompts(prompts[b: b + s.eval_batch_size])
        gen = agent.generate(ids, mask, max_new_tokens=s.max_new_tokens, greedy=False, seed=seed + b)
        cm = tf.cast(gen.completion_mask, tf.float32)
        lp = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask) * cm
        ref = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask, model=reference_model) * cm
        total += float(tf.reduce_sum(lp - ref))
        count += int(ids.shape[0])
    return total / max(count, 1)


# --------------------------------------------------------------------------- stages
class Clock:
    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.start


def mle_stage(agent, train, dev_score, s: Settings, seed: int, max_steps: int, max_seconds: float,
              eval_every_steps: int | None, eval_every_seconds: float | None, patience: int | None, log):
    """MLE (one ``fit_pairs`` call, one Adam state) with a dev evaluation every ``eval_every_steps``
    updates or ``eval_every_seconds`` of update time; keeps the best dev weights (the start competes);
    stops after ``patience`` evaluations without a new best, ``max_steps`` or ``max_seconds``.

    Returns (best dev score, best step, dev history [(step, score)], steps done, update seconds).
    """
    state = {"best": dev_score(), "best_step": 0, "weights": agent.model.get_weights(), "bad": 0, "next": 0.0}
    history = [(0, state["best"])]
    seconds = {"train": 0.0}

    def callback(step, loss, train_seconds):
        seconds["train"] = train_seconds
        due = (eval_every_steps and step % eval_every_steps == 0) or (
            eval_every_seconds and train_seconds >= state["next"] + eval_every_seconds)
        last = step >= max_steps or train_seconds >= max_seconds
        if not (due or last):
            return False
        state["next"] = train_seconds
        value = dev_score()
        history.append((step, value))
        log(f"    MLE step {step}: nll {loss:.3f}, dev {value:.2f} ({train_seconds:.0f} s training)")
        if value > state["best"]:
            state.update(best=value, best_step=step, weights=agent.model.get_weights(), bad=0)
            return False
        state["bad"] += 1
        return patience is not None and state["bad"] >= patience

    losses = fit_pairs(agent, train.prompts, train.first_references(), steps=max_steps, batch_size=s.mle_batch_size,
                       learning_rate=s.mle_lr, max_prompt_tokens=s.max_source_tokens,
                       max_target_tokens=s.max_new_tokens, seed=seed, progress=False, max_seconds=max_seconds,
                       callback=callback)
    agent.model.set_weights(state["weights"])
    return state["best"], state["best_step"], history, len(losses), seconds["train"]


def rl_stage(agent, train, task, dev_score, start_score, s: Settings, seed: int, log):
    reward = RougeReward("rougeL") if task == "summarization" else BleuReward()
    env = train.to_env(agent.tokenizer, reward, batch_size=s.rl_batch_size, max_new_tokens=s.max_new_tokens,
                       encoder_decoder=agent.is_encoder_decoder, seed=seed, context_length=agent.context_length)
    config = ReinforceConfig(learning_rate=s.rl_lr, baseline=s.rl_baseline,
                             num_samples_per_prompt=s.rl_samples_per_prompt, kl_coef=s.kl_coef,
                             entropy_coef=s.entropy_coef, mle_coef=s.mle_coef)
    trainer = ReinforceTrainer(agent, env, config)
    best, best_step, weights = start_score, 0, agent.model.get_weights()
    history, train_time = [(0, start_score)], 0.0
    while trainer.global_step < s.rl_max_steps and train_time < s.rl_seconds:
        t = time.perf_counter()
        trainer.train(min(s.rl_eval_every, s.rl_max_steps - trainer.global_step), progress=False)
        train_time += time.perf_counter() - t
        value = dev_score()
        history.append((trainer.global_step, value))
        recent = trainer.history[-s.rl_eval_every:]
        log(f"    RL step {trainer.global_step}: reward {np.mean([h['reward_mean'] for h in recent]):.3f}, "
            f"kl {np.mean([h['kl'] for h in recent]):.3f}, dev {value:.2f} ({train_time:.0f} s training)")
        if value > best:
            best, best_step, weights = value, trainer.global_step, agent.model.get_weights()
    agent.model.set_weights(weights)
    rewards = [h["reward_mean"] for h in trainer.history]
    return best, best_step, history, trainer.global_step, train_time, rewards, dataclasses.asdict(config)


# --------------------------------------------------------------------------- the protocol
def run_protocol(task: str, seed: int, s: Settings, data_dir=None, export_dir=None, results_dir=None,
                 scale: str = "custom", log=print, command: str | None = None) -> dict:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    export_dir = export_dir or os.path.join(REPO, "saved_models", "results")
    results_dir = results_dir or os.path.join(REPO, "docs", "results")
    clock = Clock()
    tf.random.set_seed(seed)
    np.random.seed(seed)
    train, dev, test = load_task_data(task, data_dir)
    train, dev, test = _limit(train, s.train_limit), _limit(dev, s.dev_limit), _limit(test, s.test_limit)
    log(f"[{task} seed {seed}] train {len(train)}, dev {len(dev)}, test {len(test)} examples")

    max_positions = max(s.max_source_tokens, s.max_new_tokens) + 8
    tokenizer = train_tokenizer(train.prompts + train.first_references(), vocab_size=s.vocab_size,
                                model_max_length=max_positions)
    model = default_seq2seq_model(tokenizer, d_model=s.d_model, layers=s.layers, heads=max(1, s.d_model // 32),
                                  max_positions=max_positions, seed=seed)
    agent = RLAgent(model, tokenizer, seed=seed)
    train, dev, test = (d.truncate_prompts(tokenizer, s.max_source_tokens) for d in (train, dev, test))
    model_note = (f"T5 from scratch: {s.layers}+{s.layers} layers, width {s.d_model}, "
                  f"{model.count_params() / 1e6:.2f}M parameters, BPE vocabulary {len(tokenizer)}")
    log(f"  {model_note}")

    def dev_score():
        return score(task, agent, dev, s)[0]

    # 1. warm start: MLE until dev stops improving
    t = time.perf_counter()
    dev_mle, mle_best_step, mle_history, mle_steps, mle_train_s = mle_stage(
        agent, train, dev_score, s, seed, s.mle_max_steps, s.mle_max_seconds, s.mle_eval_every, None,
        s.mle_patience, log)
    mle_wall_s = time.perf_counter() - t
    warm_weights = agent.model.get_weights()
    warm_model = agent.clone_model()
    log(f"  warm start: best dev {dev_mle:.2f} at step {mle_best_step} of {mle_steps} ({mle_wall_s:.0f} s)")
    test_mle, stats_mle, out_mle = score(task, agent, test, s)
    ppl_mle = metrics.perplexity(agent, test.prompts, test.references, batch_size=s.eval_batch_size)
    mle_path = export_policy(agent, os.path.join(export_dir, task, f"seed{seed}", "mle"), s.max_new_tokens,
                             metadata={"stage": "mle warm start", "task": task, "seed": seed})

    # 2. RL from W0
    t = time.perf_counter()
    dev_rl, rl_best_step, rl_history, rl_steps, rl_train_s, rl_rewards, rl_config = rl_stage(
        agent, train, task, dev_score, dev_mle, s, seed, log)
    rl_wall_s = time.perf_counter() - t
    test_rl, stats_rl, out_rl = score(task, agent, test, s)
    ppl_rl = metrics.perplexity(agent, test.prompts, test.references, batch_size=s.eval_batch_size)
    kl_prompts = test.prompts[: s.kl_samples]
    kl_rl = kl_to_reference(agent, warm_model, kl_prompts, s, seed)
    rl_path = export_policy(agent, os.path.join(export_dir, task, f"seed{seed}", "rl"), s.max_new_tokens,
                            metadata={"stage": "rl", "task": task, "seed": seed, "config": rl_config})
    log(f"  RL: best dev {dev_rl:.2f} at update {rl_best_step} of {rl_steps} ({rl_train_s:.0f} s training)")

    # 3. equal-compute control: MLE from W0 for RL's training time, as many dev checks
    agent.model.set_weights(warm_weights)
    checks = max(1, len(rl_history) - 1)
    t = time.perf_counter()
    dev_control, control_best_step, control_history, control_steps, control_train_s = mle_stage(
        agent, train, dev_score, s, seed + 7919, 10 ** 9, max(rl_train_s, 1e-3), None, rl_train_s / checks, None, log)
    control_wall_s = time.perf_counter() - t
    test_control, stats_control, out_control = score(task, agent, test, s)
    ppl_control = metrics.perplexity(agent, test.prompts, test.references, batch_size=s.eval_batch_size)
    kl_control = kl_to_reference(agent, warm_model, kl_prompts, s, seed)

    # 4. intervals over test examples
    stat = bootstrap_statistic(task)
    ci = metrics.paired_bootstrap(stats_rl, stats_mle, stat, s.bootstrap_resamples, seed=seed)
    ci_control = metrics.paired_bootstrap(stats_rl, stats_control, stat, s.bootstrap_resamples, seed=seed)
    ci_control_vs_mle = metrics.paired_bootstrap(stats_control, stats_mle, stat, s.bootstrap_resamples, seed=seed)

    loaded = {name: tf_rl_text.load(path).generate(test.prompts[:3]) for name, path in
              (("mle", mle_path), ("rl", rl_path))}
    entry = {
        "seed": seed,
        "test_mle": test_mle,
        "test_control": test_control,
        "test_rl": test_rl,
        "ci95": [ci["low"], ci["high"]],
        "gain": test_rl - test_mle,
        "gain_vs_control": test_rl - test_control,
        "ci95_vs_control": [ci_control["low"], ci_control["high"]],
        "ci95_control_vs_mle": [ci_control_vs_mle["low"], ci_control_vs_mle["high"]],
        "rl_beats_mle": ci["low"] > 0,
        "rl_beats_control": ci_control["low"] > 0,
        "dev_mle": dev_mle,
        "dev_control": dev_control,
        "dev_rl": dev_rl,
        "dev_history": {"mle": mle_history, "rl": rl_history, "control": control_history},
        "perplexity": {"mle": ppl_mle, "control": ppl_control, "rl": ppl_rl, "rl_over_mle": ppl_rl / ppl_mle},
        "kl_to_warm_start": {"rl": kl_rl, "control": kl_control, "num_samples": len(kl_prompts)},
        "extra_test_metrics": {"mle": extra_metrics(out_mle), "control": extra_metrics(out_control),
                               "rl": extra_metrics(out_rl)},
        "steps": {"mle": mle_steps, "mle_best": mle_best_step, "rl": rl_steps, "rl_best": rl_best_step,
                  "control": control_steps, "control_best": control_best_step},
        "rl_reward_first_last": [rl_rewards[0], rl_rewards[-1]] if rl_rewards else None,
        "wall_s": {"mle": mle_wall_s, "mle_train": mle_train_s, "rl": rl_wall_s, "rl_train": rl_train_s,
                   "control": control_wall_s, "control_train": control_train_s, "total": clock()},
        "num_examples": {"train": len(train), "dev": len(dev), "test": len(test)},
        "exports": {"mle": os.path.relpath(mle_path, REPO), "rl": os.path.relpath(rl_path, REPO)},
        "samples": [{"source": p, "reference": r, "mle": m, "rl": r_} for p, r, m, r_ in
                    zip(test.prompts[:3], test.references[:3], loaded["mle"], loaded["rl"])],
        "scale": scale,
        "command": command,
        "model": model_note,
        "settings": dataclasses.asdict(s),
        "rl_config": rl_config,
    }
    write_entry(task, entry, results_dir)
    log(f"  test {METRIC_NAMES[task]}: MLE {test_mle:.2f}, control {test_control:.2f}, RL {test_rl:.2f}; "
        f"RL - MLE {entry['gain']:+.2f} [{ci['low']:+.2f}, {ci['high']:+.2f}], RL - control "
        f"{entry['gain_vs_control']:+.2f} [{ci_control['low']:+.2f}, {ci_control['high']:+.2f}]; "
        f"ppl {ppl_mle:.2f} -> {ppl_rl:.2f}; KL {kl_rl:.3f}; {clock():.0f} s")
    return entry


# --------------------------------------------------------------------------- results JSON
def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


def write_entry(task: str, entry: dict, results_dir: str) -> str:
    """Put a seed's entry into ``results_dir/<task>.json`` (replacing that seed's older entry) and
    recompute the summary fields."""
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{task}.json")
    seeds = []
    if os.path.exists(path):
        with open(path) as f:
            seeds = [e for e in json.load(f).get("seeds", []) if e["seed"] != entry["seed"]]
    seeds = sorted(seeds + [_plain(entry)], key=lambda e: e["seed"])
    doc = {
        "task": task,
        "metric": METRIC_NAMES[task],
        "metric_scale": "x100",
        "ci": "paired bootstrap 95% interval of test_rl - test_mle over test examples (ci95_vs_control: of "
              "test_rl - test_control)",
        "seeds": seeds,
        "mean_gain": float(np.mean([e["test_rl"] - e["test_mle"] for e in seeds])),
        "mean_gain_vs_control": float(np.mean([e["test_rl"] - e["test_control"] for e in seeds])),
        "command": f"python benchmarks/results.py --task {task} --seed N --scale {seeds[-1].get('scale', 'custom')}",
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)
    return path


def summary_table(results_dir: str, tasks=TASKS) -> str:
    rows = ["| task | metric | seed | scale | MLE warm start | control | RL | RL - MLE [95% CI] | RL - control [95% CI] "
            "| ppl MLE -> RL | KL(RL‖W0) | RL train s |", "|" + "---|" * 12]
    for task in tasks:
        path = os.path.join(results_dir, f"{task}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            doc = json.load(f)
        for e in doc["seeds"]:
            rows.append(
                f"| {task} | {doc['metric']} | {e['seed']} | {e.get('scale', '')} | {e['test_mle']:.2f} | "
                f"{e['test_control']:.2f} | {e['test_rl']:.2f} | {e['gain']:+.2f} [{e['ci95'][0]:+.2f}, "
                f"{e['ci95'][1]:+.2f}] | {e['gain_vs_control']:+.2f} [{e['ci95_vs_control'][0]:+.2f}, "
                f"{e['ci95_vs_control'][1]:+.2f}] | {e['perplexity']['mle']:.1f} -> {e['perplexity']['rl']:.1f} | "
                f"{e['kl_to_warm_start']['rl']:.3f} | {e['wall_s']['rl_train']:.0f} |")
        rows.append(f"| {task} | mean over {len(doc['seeds'])} seed(s) | | | | | | {doc['mean_gain']:+.2f} | "
                    f"{doc['mean_gain_vs_control']:+.2f} | | | |")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--task", choices=TASKS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one setting")
    p.add_argument("--data-dir", default=None, help="folder with multi30k/, scitldr/, topical_chat/ "
                                                    "(default: $TF_RL_TEXT_DATA)")
    p.add_argument("--export-dir", default=None, help="default: saved_models/results")
    p.add_argument("--results-dir", default=None, help="default: docs/results")
    p.add_argument("--summary", action="store_true", help="print the table of every recorded seed and exit")
    args = p.parse_args(argv)
    results_dir = args.results_dir or os.path.join(REPO, "docs", "results")
    if args.summary:
        print(summary_table(results_dir))
        return None
    if not args.task:
        p.error("--task is required (or --summary)")
    try:
        s = settings_for(args.task, args.scale, args.set)
    except ValueError as e:
        p.error(str(e))
    command = "python benchmarks/results.py " + " ".join(sys.argv[1:] if argv is None else argv)
    return run_protocol(args.task, args.seed, s, args.data_dir, args.export_dir, results_dir, args.scale,
                        command=command)


if __name__ == "__main__":
    main()
