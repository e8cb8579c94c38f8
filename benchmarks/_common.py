"""Shared benchmark plumbing: the workload files, process clock, memory, FLOP counts."""
from __future__ import annotations

import json
import os
import resource
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WORKLOAD = os.path.join(os.path.dirname(REPO), "shared", "bench", "rl_step")


def seconds_since_process_start() -> float:
    """Wall time since this process was created (Linux /proc), so start-up and imports count."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return time.process_time()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover
        return float("nan")


def load_workload(folder: str):
    """(workload dict, tokenizer, prompts) from a shared/bench/rl_step-style folder."""
    from transformers import PreTrainedTokenizerFast

    path = os.path.join(folder, "workload.json")
    if not os.path.exists(path):
        raise SystemExit(f"no workload.json in {folder!r}; pass --workload DIR (see shared/bench/rl_step)")
    with open(path) as f:
        workload = json.load(f)
    with open(os.path.join(folder, "tokenizer_config.json")) as f:
        tok_cfg = json.load(f)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(folder, "tokenizer.json"),
        **{k: v for k, v in tok_cfg.items() if k.endswith("_token") or k == "padding_side"},
    )
    with open(os.path.join(folder, "prompts.txt")) as f:
        prompts = [line.strip() for line in f if line.strip()]
    return workload, tokenizer, prompts


def add_run_flags(ap):
    """--workload, --steps, --warmup: the flags every RL-step script (ours and the peers) takes."""
    ap.add_argument("--workload", default=DEFAULT_WORKLOAD, help="folder with workload.json, tokenizer, prompts")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: the workload's timed_steps)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: the workload's)")


def load_run(args):
    """(workload, tokenizer, prompts, timed steps, warm-up steps) from the :func:`add_run_flags` flags, checked."""
    workload, tokenizer, prompts = load_workload(args.workload)
    steps = workload["timed_steps"] if args.steps is None else args.steps
    warmup = workload["warmup_steps"] if args.warmup is None else args.warmup
    if steps < 1 or warmup < 0:
        raise SystemExit(f"need --steps >= 1 and --warmup >= 0, got {steps}, {warmup}")
    return workload, tokenizer, prompts, steps, warmup


def add_torch_flags(ap, bf16_help: str):
    """--threads and --bf16: the PyTorch peers' flags."""
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (torch.set_num_threads)")
    ap.add_argument("--bf16", action="store_true", help=bf16_help)


def set_torch_threads(args):
    """torch.set_num_threads(--threads), checked (torch imported only here)."""
    import torch

    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)


def time_steps(step, warmup: int, steps: int, describe):
    """Call ``step()`` (-> stats dict) warmup + steps times, as a user's training loop would.

    Returns (times of the timed steps, RSS MB after steps 50, 500 and the last, seconds from
    process start to the end of the first step, the last stats). Progress on stderr: every 10th
    step and each warm-up step, ``describe(stats)`` after the step time.
    """
    times, rss, time_to_first, stats = [], {}, None, None
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        stats = step()
        dt = time.perf_counter() - t0
        if time_to_first is None:
            time_to_first = seconds_since_process_start()
        if i >= warmup:
            times.append(dt)
        if i + 1 in (50, 500) or i + 1 == warmup + steps:
            rss[i + 1] = round(current_rss_mb(), 1)
        if (i + 1) % 10 == 0 or i < warmup:
            print(f"step {i + 1}: {dt:.3f} s, {describe(stats)}", file=sys.stderr)
    return times, rss, time_to_first, stats


def gpt2_config(model_cfg: dict, tokenizer):
    """The workload's GPT2Config (dropouts 0, the tokenizer's special ids); every side builds from it."""
    from transformers import GPT2Config

    cfg = {k: v for k, v in model_cfg.items() if k != "model_type"}
    return GPT2Config(**cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)


PRECISIONS = ("float32", "mixed_bfloat16")


def build_model(model_cfg: dict, tokenizer, seed: int, precision: str = "float32"):
    """Ours: a TFGPT2LMHeadModel of the workload's config, built; ``precision`` "mixed_bfloat16"
    converts it with tf_rl_text.precision.with_precision (bfloat16 math, the same float32 weights)."""
    from transformers import TFGPT2LMHeadModel

    from tf_rl_text.precision import with_precision
    from tf_rl_text._compat import tf

    tf.random.set_seed(seed)
    model = TFGPT2LMHeadModel(gpt2_config(model_cfg, tokenizer))
    model(model.dummy_inputs, training=False)
    return model if precision == "float32" else with_precision(model, precision)


def build_torch_model(model_cfg: dict, tokenizer, seed: int):
    """The peers': a PyTorch GPT2LMHeadModel of the same config (torch imported only here)."""
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(gpt2_config(model_cfg, tokenizer))


def forward_flops_per_token(model_cfg: dict, context: float) -> float:
    """Matmul FLOPs of one token through GPT-2: 2 x (weights it multiplies) + attention over ``context``.

    Per layer: QKV (3 d^2), projection (d^2), MLP (8 d^2) -> 12 d^2 weights; attention scores and
    the weighted sum: 2 x context x d multiply-adds. LM head: d x vocab.
    """
    d, n_layer, vocab = model_cfg["n_embd"], model_cfg["n_layer"], model_cfg["vocab_size"]
    weights = n_layer * 12 * d * d + d * vocab
    attention = n_layer * 2 * context * d
    return 2.0 * (weights + attention)


# forwards over prompt + completion per update, besides the rollout (backward = 2 forwards):
SCORING_PASSES = {
    "rloo": 1 + 3,  # reference forward; policy forward + backward
    "ppo": 2 + 3,  # rollout scoring (old log-probs, values) and reference; policy forward + backward
    "a2c": 2 + 3,
    "soft_q": 1 + 3,  # target network forward; online forward + backward
    "grpo": 1 + 3,  # reference forward (beta > 0; no old log-probs with num_iterations=1); policy forward + backward
}


def step_gflop(w, algo: str = "rloo") -> float:
    """Model FLOPs of one step: rollout (prefill + cached decode), then the algorithm's forward
    and backward passes over prompt + completion (SCORING_PASSES)."""
    m = w["model"]
    n = w["prompts_per_step"] * w["completions_per_prompt"]
    p, t = w["prompt_words"], w["completion_tokens"]
    prefill = n * p * forward_flops_per_token(m, p / 2)
    decode = n * sum(forward_flops_per_token(m, p + i + 1) for i in range(t - 1))  # last token is never fed
    score = n * (p + t) * forward_flops_per_token(m, (p + t) / 2)
    return (prefill + decode + score * SCORING_PASSES[algo]) / 1e9


# --------------------------------------------------------------------------- resumable result files
def sentiment_study_args(doc: str, scales: dict, out: str, work_help: str, argv=None, extra=None):
    """The command line of a resumable study on the labelled review sentences (bias, preferences): ``--scale``,
    ``--data-dir`` (checked: it must hold ``sentiment/``), ``--out``, ``--work`` (default OUT's name + ``_work``,
    created), ``--fresh``; ``extra(parser)`` adds a study's own flags."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(scales), default="full")
    ap.add_argument("--data-dir", default=os.environ.get("TF_RL_TEXT_DATA"))
    ap.add_argument("--out", default=out)
    ap.add_argument("--work", default=None, help=f"{work_help} (default: OUT's name + '_work')")
    ap.add_argument("--fresh", action="store_true", help="ignore the records already in OUT (default: resume)")
    if extra is not None:
        extra(ap)
    args = ap.parse_args(argv)
    if not args.data_dir or not os.path.isdir(os.path.join(args.data_dir, "sentiment")):
        ap.error(f"--data-dir (or $TF_RL_TEXT_DATA) must be the folder holding sentiment/ (the labelled review "
                 f"sentences), got {args.data_dir!r}")
    args.work = args.work or os.path.splitext(args.out)[0] + "_work"
    os.makedirs(args.work, exist_ok=True)
    return args


def resume_records(path: str, settings: dict, key: str, tag: str, fresh: bool = False):
    """The records (``result[key]``) and CPU seconds already in ``path`` when it was written with the same
    ``settings``; ([], 0.0) otherwise or with ``fresh``."""
    if fresh or not os.path.exists(path):
        return [], 0.0
    with open(path) as f:
        previous = json.load(f)
    if previous.get("settings") != settings:
        return [], 0.0
    print(f"[{tag}] resuming: {len(previous[key])} {key} in {path}", file=sys.stderr, flush=True)
    return previous[key], previous.get("cpu_s", 0.0)


def write_json_atomic(path: str, obj) -> None:
    """Write ``obj`` as JSON so that a reader (or a resumed run) never sees half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)


def cached_weights(model, path: str, fit) -> list:
    """Load ``model``'s weights from ``path`` (.npz) if it exists, else run ``fit()`` and save them there."""
    import numpy as np

    if os.path.exists(path):
        with np.load(path) as z:
            model.set_weights([z[f"w{i}"] for i in range(len(z.files))])
    else:
        fit()
        np.savez(path, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    return model.get_weights()


def sentiment_classifier(folder: str, train):
    """P(positive | prompt + completion) from the classifier saved in ``folder``; when there is none,
    ``train(folder)`` fine-tunes one (and saves it there) first."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    from tf_rl_text.rewards import ClassifierReward

    if os.path.exists(os.path.join(folder, "config.json")):
        model, tok = TFAutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    else:
        result = train(folder)
        model, tok = result.model, result.tokenizer
    return ClassifierReward(model, tok, label=1, include_prompt=True, max_length=48)


def sample_against_reference(agent, ref_model, prompts, new_tokens: int, seed: int) -> dict:
    """One sampled completion per prompt: its ``texts``, the Monte-Carlo ``kl`` (KL(pi || pi_ref) per
    completion, the mean of sum_t log pi - log pi_ref) and ``ref_ppl`` (pi_ref's perplexity of them)."""
    from tf_rl_text._compat import tf

    ids, mask = agent.encode_prompts(prompts)
    gen = agent.generate(ids, mask, max_new_tokens=new_tokens, greedy=False, seed=seed)
    cm = tf.cast(gen.completion_mask, tf.float32)
    logp = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask) * cm
    ref = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask, model=ref_model) * cm
    return {"texts": agent.decode_completions(gen.completion_ids.numpy(), gen.completion_mask.numpy()),
            "kl": float(tf.reduce_mean(tf.reduce_sum(logp - ref, axis=1))),
            "ref_ppl": float(tf.exp(-tf.reduce_sum(ref) / tf.maximum(tf.reduce_sum(cm), 1.0)))}
