"""Running a config into its run folder: train with checkpoints and keep-best, evaluate, export, summarize."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from tf_rl_text.configfile import RunConfig
from tf_rl_text.validation import ConfigError
from tf_rl_text.workflow.build import Built, build, make_strategy
from tf_rl_text.workflow.plots import plot_run
from tf_rl_text.workflow.rundir import (best_record, claim_run_dir, has_checkpoint, kept_step, weights_fingerprint,
                                        write_run_config)


# --------------------------------------------------------------------------- the training loop
def callbacks_for(run_dir: str) -> list:
    """The run folder's loggers: RUN_DIR/metrics.jsonl (a resumed run drops the lines past its
    checkpoint) and RUN_DIR/tensorboard (namespaced scalars: rollout/reward_mean, objective/kl...).
    The trainer adds its progress bar itself (``train(..., progress=True)``)."""
    from tf_rl_text import callbacks as cb

    return [cb.JSONLLogger(os.path.join(run_dir, "metrics.jsonl")), cb.TensorBoard(os.path.join(run_dir, "tensorboard"))]


def _keep_best(built: Built, cfg: RunConfig, before: dict, log):
    """EvalCallback on the dev set keeping the best ``run.keep_best`` (the warm start's score competes)."""
    from tf_rl_text import metrics
    from tf_rl_text.callbacks import EvalCallback, LambdaCallback

    metric, trainer = cfg.run.keep_best, built.trainer

    def score(t):
        if metric == "reward":
            refs = built.dev.references if built.dev.has_references else None
            return {metric: t.evaluate(built.dev.prompts, refs)}
        return {metric: metrics.evaluate(t.acting_agent, built.dev, metrics=[metric], max_new_tokens=cfg.run.max_new_tokens,
                                          batch_size=max(cfg.run.batch_size, 32))[metric]}

    start = before.get(metric) if built.dev is built.test and not trainer.global_step else None
    if start is None and not trainer.global_step:
        start = score(trainer)[metric]

    def report(step, logs):
        if not trainer.history:  # the warm start's score, logged at its step before any RL step
            return
        n = min(cfg.run.eval_every or cfg.run.steps, len(trainer.history)) or 1
        reward = _finite_mean([h.get("reward_mean") for h in trainer.history[-n:]])  # DPO samples nothing
        log(f"  RL step {step}: dev {metric} {logs[metric]:.4f} (best {keep.best_score:.4f} at step {keep.best_step})"
            + ("" if reward is None else f", mean sampled reward {reward:.4f}"))

    keep = EvalCallback(built.dev, metrics=score, every=cfg.run.eval_every, keep_best=metric, start_score=start,
                        evaluate_at_start=not trainer.global_step)
    return [keep, LambdaCallback(on_eval_end=report)], keep


FITTED_REWARD = 0.8
"""A mean sampled training reward (metric scale 0..1) at or above this at the first RL step means the
warm start already reproduces its training pairs."""


def rl_note(cfg: RunConfig, history, num_train: int, num_dev: int, tie: float | None = None) -> str:
    """Why a run whose RL never beat the warm start on the dev set did not help, with the run's own numbers.
    ``tie``: the one score every dev check (the warm start's included) had, when they were all equal."""
    first = history[0].get("reward_mean")  # None for DPO: it learns from pairs, it samples nothing
    lead = "Why RL did not help:"
    if tie is not None:
        why = ("so the metric could not tell them apart. Use one that can (sacrebleu, sentence_bleu or rougeL, on "
               "more dev examples)") if tie == 0 else "RL did not change the dev outputs enough to move it"
        lead += (f" RL was discarded on a tie: every dev check, the warm start's included, scored exactly {tie:.4f} on "
                 f"run.keep_best={cfg.run.keep_best}; {why}.")
    lines = [f"{lead} {'No' if tie is not None else 'no'} RL checkpoint beat the warm start on the {num_dev} held-out "
             "pairs."]
    if first is None:
        lines.append(f"{cfg.run.steps} steps at learning rate {cfg.trainer.learning_rate:g} did not carry over to the "
                     "held-out prompts: try more run.steps, a higher trainer.learning_rate, or run.eval_every.")
    elif first >= FITTED_REWARD:
        lines.append(
            f"The reward is scored on the {num_train} training pairs, and the warm start already reproduces them:"
            f"\nits sampled outputs earned a mean reward of {first:.2f} (at most 1.0) at the first RL step. Self-critical"
            f"\nREINFORCE learns from samples that beat the greedy output, and here few do, so the updates are mostly"
            f"\nnoise, and noise on {num_dev} held-out pairs lowers the metric more often than it raises it.")
        if cfg.run.warm_start_steps > 150:
            lines.append(
                "A shorter warm start (run.warm_start_steps=150 trainer.learning_rate=2e-4 run.eval_every=10) leaves RL"
                "\nroom on the training prompts, but on data this small what RL learns there barely carries over to"
                "\nheld-out pairs (docs/tasks-and-results.md). Real data (data.data_dir) gives RL more room.")
    else:
        lines.append(f"Its sampled outputs earned a mean reward of {first:.2f} on the training pairs at the first RL "
                     f"step; {cfg.run.steps} steps at learning\nrate {cfg.trainer.learning_rate:g} did not carry over "
                     "to the held-out pairs: try more run.steps, a higher trainer.learning_rate, or run.eval_every.")
    return "\n".join(lines).replace("\n", "\n  ")


# --------------------------------------------------------------------------- evaluation
def evaluate_run(built: Built, cfg: RunConfig):
    """(scores, completions) on the test set: the greedy mean reward, the sampled one (``run.eval_samples``
    completions per prompt, a fixed seed) and, with references, the text metrics of ``run.eval_metrics``."""
    from tf_rl_text import metrics

    wanted, held, trainer = cfg.run.metric_list, built.test, built.trainer
    refs = held.references if held.has_references else None
    out, completions = {}, None
    if "reward" in wanted:
        out["reward"] = trainer.evaluate(held.prompts, refs)
    if cfg.run.eval_samples:
        rollout = trainer.env.rollout(trainer.acting_agent, num_samples=cfg.run.eval_samples, seed=12345,
                                      prompts=list(held.prompts), references=refs)
        out["sampled_reward"] = float(np.mean(rollout.rewards))
    text = [m for m in wanted if m != "reward"]
    if text and held.has_references:
        scores, completions = metrics.evaluate(trainer.acting_agent, held, metrics=text,
                                               max_new_tokens=cfg.run.max_new_tokens,
                                               batch_size=max(cfg.run.batch_size, 32), return_completions=True)
        scores.pop("num_examples", None)
        out.update(scores)
    return out, completions


def _finite_mean(values):
    """Mean of the finite values; None when there are none (explained variance is NaN when every return of a
    rollout is equal): JSON has no NaN."""
    finite = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _show(scores: dict) -> str:
    return ", ".join(f"{k} {v:+.4f}" if "reward" in k else f"{k} {v:.4f}" for k, v in scores.items())


def train_run(cfg: RunConfig, run_dir: str, progress: bool = True, log=print, export_dir: str | None = None,
              scratch: bool = False, load_back: bool = False, num_samples: int = 3) -> dict:
    """``tf-rl-text train`` (and every example script): build, (resume or warm start,) evaluate, train
    (keeping the best dev checkpoint with ``run.keep_best``), export to ``export_dir`` (default
    RUN_DIR/export), evaluate again, plot. Returns the summary (also RUN_DIR/summary.json).

    ``scratch``: the run folder is a script's default scratch space (see :func:`claim_run_dir`).
    ``load_back``: the summary's ``num_samples`` greedy samples come from the export loaded back
    with :func:`tf_rl_text.load` (what a user does in another process), not from the live model.
    Under a multi-worker strategy only the chief writes files, and holds the run folder's lock
    (``RUN_DIR/.lock``) for the whole run: a second process on the same folder stops with an error."""
    from tf_rl_text import distribute
    from tf_rl_text._compat import tf
    from tf_rl_text.checkpoint import run_folder_lock

    t0 = time.time()
    strategy = make_strategy(cfg)  # first: a multi-worker strategy must exist before TensorFlow runs any op
    if cfg.run.deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.keras.utils.set_random_seed(cfg.run.seed)
    chief = distribute.is_chief(strategy)
    if not chief:
        return _train_run(cfg, run_dir, progress, log, export_dir, load_back, num_samples, strategy, chief, t0)
    with run_folder_lock(run_dir):  # a second process on this folder stops here, before it touches anything
        pass
    claim_run_dir(cfg, run_dir, scratch, log)
    with run_folder_lock(run_dir):  # held for the whole run: warm start, before.json, training, export
        return _train_run(cfg, run_dir, progress, log, export_dir, load_back, num_samples, strategy, chief, t0)


def _train_run(cfg, run_dir, progress, log, export_dir, load_back, num_samples, strategy, chief, t0) -> dict:
    """The run: build (warm start unless resuming), evaluate before, train, keep the best, export, evaluate
    after, samples, summary.json and the plot."""
    resume = has_checkpoint(run_dir)
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        write_run_config(cfg, run_dir)
    built = build(cfg, run_dir, warm_start=not resume, progress=progress, log=log, resume=True)
    trainer, agent = built.trainer, built.agent
    if chief:
        agent.tokenizer.save_pretrained(os.path.join(run_dir, "tokenizer"))
    before = _before(built, cfg, run_dir, resume, chief, log)
    callbacks, keep = callbacks_for(run_dir), None
    if cfg.run.keep_best and cfg.run.steps:
        more, keep = _keep_best(built, cfg, before, log)
        callbacks += more
    start_step = trainer.global_step
    if trainer.restored_from:
        log(f"resumed from {trainer.restored_from} at step {start_step}")
    trainer.train(cfg.run.steps, callbacks=callbacks, progress=progress)
    kept, note = _what_was_kept(built, cfg, keep, log)
    kept_at = keep.best_step if keep is not None and keep.best_step is not None else trainer.global_step
    export = trainer.export(export_dir or os.path.join(run_dir, "export"),
                            metadata={"step": kept_at, "latest_step": trainer.global_step})
    if keep is not None and keep.best_step == 0 and before:  # the warm-started weights are back: same scores
        after = dict(before)
    else:
        after, _ = evaluate_run(built, cfg)
    log(f"after RL ({kept}): {_show(after)}")
    prompts = built.test.prompts[:num_samples]
    if load_back and chief:
        import tf_rl_text

        outputs, where = tf_rl_text.load(export).generate(prompts), f"loaded back from {export}"
    else:
        outputs, where = agent.generate_text(prompts, cfg.run.max_new_tokens), "the trained model"
    sep = " => " if agent.family.seq2seq else " |"
    log(f"greedy samples ({where}):\n" + "\n".join(f"  {p}{sep}{c}" for p, c in zip(prompts, outputs)))
    summary = _summary(built, cfg, before, after, keep, kept, note, export, run_dir, prompts, outputs,
                       start_step if resume else None, chief, t0, log)
    log(f"weights sha256: {summary['weights_sha256']}")
    if not chief:
        log(f"non-chief worker: the chief exported the SavedModel to {export} and writes the run folder")
        return summary
    try:
        summary["plot"] = plot_run(run_dir)["path"]
    except ValueError as e:  # no steps: nothing to plot
        summary["plot"] = None
        log(f"no plot: {e}")
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary


def _before(built, cfg, run_dir, resume, chief, log) -> dict:
    """The held-out scores before RL: measured now (and written to before.json), or, resuming, the run's own."""
    before_file = os.path.join(run_dir, "before.json")
    if resume:  # the weights are past the warm start: the run's own "before" numbers, when it recorded them
        return json.load(open(before_file)) if os.path.isfile(before_file) else {}
    before, _ = evaluate_run(built, cfg)
    log(f"before RL ({len(built.test)} held-out prompts, greedy): {_show(before)}")
    if chief:
        with open(before_file, "w") as f:
            json.dump(before, f)
    return before


def _what_was_kept(built, cfg, keep, log):
    """(what the export holds, in words; a note when RL was discarded for the warm start, else None)."""
    trainer = built.trainer
    kept, note = "the last RL step", None
    if keep is not None and keep.best_step is not None and keep.best_step != trainer.global_step:
        kept = "the warm-started model" if keep.best_step == 0 else f"the checkpoint of RL step {keep.best_step}"
        log(f"RL did not improve the dev {cfg.run.keep_best} after step {keep.best_step}: kept {kept} "
            f"({keep.best_score:.4f})")
        if keep.best_step == 0 and trainer.history:
            scores = [logs[cfg.run.keep_best] for _, logs in keep.results]
            tie = scores[0] if len(scores) > 1 and all(x == scores[0] for x in scores) else None
            note = rl_note(cfg, trainer.history, len(built.train), len(built.dev), tie)
            log("  " + note)
    return kept, note


def _summary(built, cfg, before, after, keep, kept, note, export, run_dir, prompts, outputs, resumed_from, chief,
             t0, log) -> dict:
    """summary.json's contents (every number the run printed, the samples and the weights' fingerprint)."""
    trainer, agent, history = built.trainer, built.agent, built.trainer.history
    tail = history[-10:]
    last10 = {k: _finite_mean([h.get(k) for h in tail]) for k in (tail[0] if tail else {})
              if isinstance(tail[0][k], (int, float)) and not k.endswith(("_s", "step"))}
    if last10:
        log("last 10 steps: " + ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in last10.items()
                                          if k not in ("update", "lr")))
    return {
        "algorithm": cfg.algorithm,
        "config": cfg.source,
        "steps": trainer.global_step,
        "resumed_from_step": resumed_from,
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in after.items()},
        "kept": kept,
        "rl_discarded": bool(keep is not None and keep.best_step == 0 and trainer.history),
        "rl_note": note,
        "dev_history": [(step, logs[cfg.run.keep_best]) for step, logs in keep.results] if keep else None,
        "train_reward_last10": _finite_mean([h.get("reward_mean") for h in tail]) if tail else None,
        "train_kl_last10": (float(np.mean([h["kl"] for h in tail])) if tail and "kl" in tail[0] else None),
        "train_last10": last10,
        "train_last": {k: v for k, v in (history[-1] if history else {}).items() if isinstance(v, (int, float))
                       and np.isfinite(v)},
        "warm_start_nll_first_last": [built.warm_start_losses[0], built.warm_start_losses[-1]]
        if built.warm_start_losses else None,
        "num_train": len(built.train), "num_dev": len(built.dev), "num_test": len(built.test),
        "dev_is_test": built.dev is built.test,
        "export": os.path.abspath(export),
        "run_dir": os.path.abspath(run_dir),
        **built.notes,
        **getattr(built.reward, "info", {}),
        "samples": [{"prompt": p, "completion": c} for p, c in zip(prompts, outputs)],
        "weights_sha256": weights_fingerprint(agent.model),  # the same on every worker of a distributed run
        "is_chief": chief,
        "encoder_decoder": agent.family.seq2seq,
        "wall_time_s": round(time.time() - t0, 1),
    }


def export_run(run_dir: str, out: str, serving_only: bool = False, log=print) -> str:
    """``tf-rl-text export``: rebuild the run's trainer from RUN_DIR/config.yaml, restore its latest
    checkpoint and export it (no warm start, no reward model trained again)."""
    from tf_rl_text.configfile import load_config

    config_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(config_path):
        raise ConfigError(f"{run_dir!r} is not a run folder (no config.yaml); pass the --run-dir of `tf-rl-text train`")
    here, there = os.path.realpath(run_dir), os.path.realpath(out)
    if there == here or here.startswith(there + os.sep):
        raise ConfigError(f"cannot export {run_dir!r} to {out!r}: an export replaces its whole folder, which would "
                          f"delete the run; pass a new folder, e.g. {os.path.join(run_dir, 'export')}")
    if not has_checkpoint(run_dir):  # before building anything
        raise ConfigError(f"{run_dir!r} holds no checkpoint (nothing in {os.path.join(run_dir, 'checkpoints')}); "
                          "train it first with `tf-rl-text train CONFIG --run-dir RUN_DIR`, or pass a run folder "
                          "that has checkpoints/")
    cfg = load_config(config_path)
    built = build(cfg, run_dir, warm_start=False, reward=False, progress=False, log=log)
    try:
        found = built.trainer.restore(run_dir)
    except ValueError as e:  # checkpoints of another model or config
        raise ConfigError(f"{run_dir!r}: {e}") from None
    if not found:  # the checkpoint vanished while the model was built
        raise ConfigError(f"{run_dir!r} holds no checkpoint any more; rerun `tf-rl-text train` on it")
    trainer = built.trainer
    latest = trainer.global_step
    kept = kept_step(run_dir)
    if kept is not None and kept != latest:  # the run kept another step's weights (run.keep_best): export those
        from tf_rl_text._compat import tf

        tf.train.Checkpoint(model=trainer.acting_agent.model).read(os.path.join(run_dir, "best", "model")).expect_partial()
        log(f"restored step {latest} of {run_dir}; exporting the model the run kept: step {kept} (best dev "
            f"{best_record(run_dir).get('metric')}), as the run's own export did")
    else:
        log(f"restored step {latest} of {run_dir}")
    return trainer.export(out, serving_only=serving_only,
                          metadata={"step": latest if kept is None else kept, "latest_step": latest})


__all__ = ["callbacks_for", "rl_note", "evaluate_run", "train_run", "export_run", "FITTED_REWARD"]
