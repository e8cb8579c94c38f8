#!/usr/bin/env python
"""Same-machine TRL peer of benchmarks/rl_step.py: the REAL TRL ``RLOOTrainer`` (``trainer.train()``,
TRL's own generation, reference scoring, RLOO advantages, loss, Trainer/Accelerate loop) on the
shared workload (../shared/bench/rl_step), timed per optimizer step with a ``TrainerCallback``
(wall clock from ``on_step_begin`` to ``on_step_end``: generation, reward, the no-grad policy and
reference forwards, the policy forward + backward, gradient clipping, the optimizer and LR
scheduler steps).

Set up as the workload asks: a fresh PyTorch ``GPT2LMHeadModel`` from workload.json (dropouts 0,
special ids from the tokenizer, ``torch.manual_seed(seed)``), the workload tokenizer
(``PreTrainedTokenizerFast``, left padding), a ``datasets.Dataset`` with a plain "prompt" column
from prompts.txt, reward = share of completion words equal to the target word, and ``RLOOConfig``:

* ``per_device_train_batch_size=64`` (TRL counts completions, not prompts), ``num_generations=4``,
  ``generation_batch_size=64``, ``gradient_accumulation_steps=1``, ``num_iterations=1``: one
  optimizer step = one generation batch = 16 prompts x 4 completions = 64 sequences;
* ``max_completion_length=24`` and ``generation_kwargs={"min_new_tokens": 24}`` (transformers'
  MinNewTokensLengthLogitsProcessor sets the EOS logit to -inf for the first 24 tokens): exactly 24
  tokens, EOS never sampled -- checked every step in the reward function (every completion has 24
  ids and no EOS, else the run stops);
* ``temperature=1.0, top_k=0, top_p=1.0`` (pure sampling), ``beta=0.05``, ``learning_rate=1e-4``,
  ``lr_scheduler_type="constant"`` (the Trainer's default is linear decay to 0 over max_steps),
  ``adam_epsilon=1e-7`` (Keras' Adam, as ours and peer_torch.py), ``shuffle_dataset=False`` (prompts
  in file order, each repeated 4 times in consecutive rows, as ours), ``seed=0``;
* ``use_cpu=True, bf16=False, fp16=False`` (TRL's default is bf16=True; ``--bf16`` turns it back on:
  torch autocast to bfloat16 on CPU, as ``rl_step.py --precision mixed_bfloat16``), ``gradient_checkpointing=
  False`` (TRL's default is True: it would recompute the forward in the backward; ours does not;
  ``--gradient-checkpointing`` turns TRL's default back on), ``dataloader_num_workers=0``,
  ``report_to="none"``, ``save_strategy="no"``, ``logging_strategy="no"``, ``disable_tqdm=True``;
  torch intra-op threads from ``--threads`` (default 2).

Deviations from the workload / from what ours computes that TRL 1.13 forces (or that we keep as
TRL's defaults on purpose, since the point is to time TRL as users run it):

1. Extra compute: TRL runs a no-grad forward of the *policy* over prompt + completion every step
   to get the "old" log-probs for its clipped ratio, even with ``num_iterations=1`` (ratio = 1).
   So TRL does 2 scoring forwards + forward/backward per step where ours does 1 + forward/backward;
   ``gflop_per_step`` is the workload's count (same formula as rl_step.step_gflop), and
   ``gflop_per_step_trl_executed`` adds that extra forward.
2. Gradient clipping: ``max_grad_norm`` is left at the Trainer/TRL default 1.0 (one global-norm
   computation + scale per step); rl_step.py sets ``max_grad_norm=None``.
3. Loss formula: TRL folds ``beta * sum_t (log pi - log pi_ref)`` into the *sequence* reward before
   the leave-one-out baseline and uses a PPO-style clipped ratio on the sequence log-prob
   (``epsilon=0.2``, default); ours puts the KL per token into the return-to-go and takes the
   baseline of the task reward only. Same tensors and FLOPs up to elementwise work.
4. Optimizer: the Trainer's default ``optim`` (``adamw_torch_fused`` with torch >= 2.8) with
   ``weight_decay=0`` -- i.e. Adam -- betas (0.9, 0.999); eps set to 1e-7 as ours.
5. The reference model: TRL builds it itself with ``from_pretrained(model.config._name_or_path)``,
   so the freshly initialised policy is saved to a temporary folder first (counted in
   ``time_to_first_step_s``); policy and reference start from identical weights, as ours.
6. Trainer overhead per step that ours does not have: metric gathering (``.item()`` syncs), the
   post-generation row shuffle (``shuffle_sequence_dict``), ``model.train()`` mode (no effect: all
   dropouts are 0), position ids derived inside the model (all prompts are 8 tokens: no padding).
   The dataloader fetch and the Trainer's between-step bookkeeping fall outside the callback's
   window; ``median_step_interval_s`` (on_step_end to next on_step_end) includes them.
7. Sampling RNG: torch's, seeded by ``set_seed(0)`` -- the completions and rewards differ from
   ours (different framework), the shapes and work do not.

Prints progress on stderr and one JSON line (the figures) as the last line of stdout. Run it with
the isolated TRL venv (kept out of the TF environment and of /work/torchenv):

    python -m venv /work/trlenv
    /work/trlenv/bin/pip install --no-index --find-links /opt/pypi/files --find-links /opt/wheels \\
        torch==2.13.0 trl==1.13.0
    /work/trlenv/bin/python benchmarks/peer_trl.py                       # the workload as shipped
    /work/trlenv/bin/python benchmarks/peer_trl.py --warmup 1 --steps 3  # quick check
"""
from __future__ import annotations

import os

# transformers imports TensorFlow too when it is installed: keep it out (the TRL venv has none anyway).
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_TORCH", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# _common imports only the standard library at module level (transformers' tokenizer inside load_workload)
from _common import (add_run_flags, add_torch_flags, build_torch_model, current_rss_mb,  # noqa: E402
                     forward_flops_per_token, load_run, peak_rss_mb, seconds_since_process_start, set_torch_threads,
                     step_gflop)

import torch  # noqa: E402


def extra_old_logp_gflop(w) -> float:
    """The one scoring forward TRL adds per step (no-grad policy forward for the "old" log-probs)."""
    m = w["model"]
    n = w["prompts_per_step"] * w["completions_per_prompt"]
    p, t = w["prompt_words"], w["completion_tokens"]
    return n * (p + t) * forward_flops_per_token(m, (p + t) / 2) / 1e9


def rloo_config_fields(w, args, output_dir: str) -> dict:
    """Every RLOOConfig field this benchmark sets (the rest are TRL 1.13 / Trainer defaults)."""
    k = w["completions_per_prompt"]
    rows = w["prompts_per_step"] * k
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": rows,
        "num_generations": k,
        "generation_batch_size": rows,
        "gradient_accumulation_steps": 1,
        "num_iterations": 1,
        "max_steps": args.warmup + args.steps,
        "max_completion_length": w["completion_tokens"],
        "generation_kwargs": {"min_new_tokens": w["completion_tokens"]},
        "temperature": w["temperature"],
        "top_k": 0,
        "top_p": 1.0,
        "beta": w["kl_coef"],
        "learning_rate": w["learning_rate"],
        "lr_scheduler_type": "constant",
        "adam_epsilon": 1e-7,
        "shuffle_dataset": False,
        "seed": w["seed"],
        "use_cpu": True,
        "bf16": bool(args.bf16),
        "fp16": False,
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(ap)
    add_torch_flags(ap, "TRL's default bf16=True (torch autocast to bfloat16 on CPU)")
    ap.add_argument("--algo", default="rloo", choices=("rloo", "grpo"),
                    help="rloo: RLOOTrainer (the workload); grpo: GRPOTrainer with the same fields (its own defaults "
                         "otherwise: loss_type, scale_rewards, epsilon), as rl_step.py --algo grpo")
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="keep TRL's default gradient_checkpointing=True (recomputes the forward in the backward)")
    args = ap.parse_args(argv)
    set_torch_threads(args)
    w, tokenizer, prompts, args.steps, args.warmup = load_run(args)
    tokenizer.padding_side = "left"

    import accelerate
    import datasets
    import transformers
    import trl
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    config_class, trainer_class = (GRPOConfig, GRPOTrainer) if args.algo == "grpo" else (RLOOConfig, RLOOTrainer)

    target, n_tokens, eos = w["target_word"], w["completion_tokens"], tokenizer.eos_token_id
    checks = {"bad": []}

    def target_word_share(prompts, completions, completion_ids, **kwargs):
        """Reward: share of completion words equal to the target word; also checks the lengths."""
        for ids in completion_ids:
            if len(ids) != n_tokens or eos in ids:
                checks["bad"].append((len(ids), eos in ids))
        out = []
        for c in completions:
            words = c.split()
            out.append(sum(x == target for x in words) / len(words) if words else 0.0)
        return out

    class StepTimer(TrainerCallback):
        """Wall clock of each optimizer step: on_step_begin -> on_step_end; and end -> next end."""

        def __init__(self):
            self.t0 = None
            self.last_end = None
            self.times, self.intervals, self.rss = [], [], {}
            self.time_to_first = None
            self.trainer = None
            self.last_metrics = {}  # TRL clears its metrics when the Trainer logs at the end: keep the last ones

        def on_step_begin(self, a, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            t1 = time.perf_counter()
            dt = t1 - self.t0
            i = state.global_step  # 1-based after the optimizer step
            if self.time_to_first is None:
                self.time_to_first = seconds_since_process_start()
            if checks["bad"]:
                raise SystemExit(f"completions must be exactly {n_tokens} tokens without EOS: "
                                 f"(length, EOS) of bad rows {checks['bad'][:8]}")
            if i > args.warmup:
                self.times.append(dt)
                if self.last_end is not None:
                    self.intervals.append(t1 - self.last_end)
            self.last_end = t1
            if i in (50, 500) or i == args.warmup + args.steps:
                self.rss[i] = round(current_rss_mb(), 1)
            m = self.trainer._metrics["train"] if self.trainer is not None else {}
            last = {k: m[k][-1] for k in ("reward", "kl", "completions/min_length", "completions/max_length")
                    if m.get(k)}
            self.last_metrics = last
            if i % 10 == 0 or i <= args.warmup or i == args.warmup + args.steps:
                print(f"step {i}: {dt:.3f} s, reward {last.get('reward', float('nan')):.3f}, "
                      f"kl {last.get('kl', float('nan')):.3f}, completion length "
                      f"{last.get('completions/min_length', 0):.0f}-{last.get('completions/max_length', 0):.0f}",
                      file=sys.stderr, flush=True)

    tmp = tempfile.mkdtemp(prefix="peer_trl_")
    try:
        model = build_torch_model(w["model"], tokenizer, w["seed"])
        # TRL builds the reference with from_pretrained(model.config._name_or_path): give it the same weights
        model_dir = os.path.join(tmp, "init_model")
        model.save_pretrained(model_dir)
        model.config._name_or_path = model_dir
        fields = rloo_config_fields(w, args, os.path.join(tmp, "out"))
        config = config_class(**fields)
        dataset = datasets.Dataset.from_dict({"prompt": prompts})
        timer = StepTimer()
        trainer = trainer_class(model=model, reward_funcs=target_word_share, args=config, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[timer])
        timer.trainer = trainer
        print(f"[peer_trl] {trainer_class.__name__} ready at {seconds_since_process_start():.1f} s; "
              f"{args.warmup} warm-up + {args.steps} timed steps", file=sys.stderr, flush=True)
        # the Trainer's PrinterCallback writes its end-of-training dict to stdout: keep stdout for our JSON
        with contextlib.redirect_stdout(sys.stderr):
            trainer.train()
        m = timer.last_metrics
        lengths = sorted({m["completions/min_length"], m["completions/max_length"]})
        final_reward = m["reward"]
        effective = {
            "optim": str(getattr(trainer.args.optim, "value", trainer.args.optim)),
            "optimizer_class": type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer")
                                    else trainer.optimizer).__name__,
            "weight_decay": trainer.args.weight_decay, "adam_beta1": trainer.args.adam_beta1,
            "adam_beta2": trainer.args.adam_beta2, "max_grad_norm": trainer.args.max_grad_norm,
            "epsilon": trainer.args.epsilon, "steps_per_generation": trainer.args.steps_per_generation,
            "disable_dropout": trainer.args.disable_dropout, "device": str(trainer.args.device),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    times = timer.times
    if len(times) != args.steps:
        raise SystemExit(f"timed {len(times)} steps, expected {args.steps}")
    gflop = step_gflop(w, args.algo)
    median = statistics.median(times)
    seqs = w["prompts_per_step"] * w["completions_per_prompt"]
    fields.pop("output_dir")
    result = {
        "benchmark": "rl_step_trl_peer", "algo": args.algo, "timed_steps": len(times),
        "median_step_s": round(median, 4), "min_step_s": round(min(times), 4),
        "max_step_s": round(max(times), 4), "seqs_per_s": round(seqs / median, 2),
        "median_step_interval_s": round(statistics.median(timer.intervals), 4) if timer.intervals else None,
        "time_to_first_step_s": round(timer.time_to_first, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_mb_after_step": timer.rss, "gflop_per_step": round(gflop, 2), "gflops_achieved": round(gflop / median, 1),
        # RLOOTrainer scores the old log-probs every step; GRPOTrainer skips them when generation and optimizer
        # steps align (num_iterations 1, steps_per_generation 1), as ours does
        "gflop_per_step_trl_executed": round(gflop + (extra_old_logp_gflop(w) if args.algo == "rloo" else 0.0), 2),
        "completion_lengths": [int(x) for x in lengths], "eos_generated": False,
        "final_reward_mean": round(final_reward, 4),
        "trl": trl.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
        "accelerate": accelerate.__version__, "datasets": datasets.__version__,
        "threads": [torch.get_num_interop_threads(), torch.get_num_threads()],
        "rloo_config" if args.algo == "rloo" else "grpo_config": fields, "trl_effective": effective,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
