#!/usr/bin/env python
"""Peak memory and seconds per RL step: full fine-tuning vs LoRA, GPT-2 124M-shaped vs a Mistral of similar size.

Workload: random weights, a 50,257-word vocabulary, 8 prompts x 4 samples x 64 new tokens (EOS
masked by ``min_new_tokens``), one REINFORCE (RLOO) step with a KL leash (kl_coef 0.05), Adam, the
update in ``--grad-accumulation-steps`` chunks (default 4: the memory-lean update, so no more than
8 of the 32 sequences' full-vocabulary logits exist at once; ``1`` measures the whole batch at once).
Each configuration runs in its own subprocess, so each peak RSS is that configuration's alone:

* ``full``: every weight trains, the KL reference is a frozen copy (``agent.clone_model()``);
* ``lora``: rank-8 adapters (alpha 16) on the default projections (GPT-2 ``c_attn``, Mistral
  ``q_proj``/``v_proj``), base frozen, the reference is the model with adapters off;
* ``recompute`` (GPT-2 only): ``full`` with every block under ``tf.recompute_grad``.

A configuration's s/step is the mean of ``--steps`` steps after ``--warmup`` untimed ones (which
pay the tracing). Prints progress on stderr and one JSON line as the last line of stdout:
``peak_rss_full_mb``, ``peak_rss_lora_mb``, ``step_s_full``, ``step_s_lora`` (GPT-2), the same with
a ``mistral_`` prefix, ``peak_rss_recompute_mb`` / ``step_s_recompute``, and the ratios the targets
name (``lora_peak_ratio`` <= 0.6, ``lora_step_ratio`` <= 1, ``mistral_step_ratio`` <= 2).

    python benchmarks/memory.py                  # all configurations
    python benchmarks/memory.py --only gpt2:lora # one, in this process
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

VOCAB = 50257
CONFIGS = ("gpt2:full", "gpt2:lora", "mistral:full", "mistral:lora", "gpt2:recompute")


def word_tokenizer():
    """A whitespace word-level tokenizer of VOCAB words (w0 ... ), EOS id 0, pad id 1."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<eos>", "<pad>"] + [f"w{i}" for i in range(VOCAB - 2)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", model_max_length=1024)


def build(kind, seed=0):
    """GPT-2 124M (12 x 768, 12 heads, tied head) or a Mistral of the same block size (12 x 768, 12 query heads
    over 4 key/value heads, SwiGLU 2304: 6.9M weights per block vs GPT-2's 7.1M; its LM head is untied)."""
    from transformers import GPT2Config, MistralConfig, TFGPT2LMHeadModel, TFMistralForCausalLM

    from tf_rl_text._compat import tf

    tf.keras.utils.set_random_seed(seed)
    if kind == "gpt2":
        model = TFGPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                                             bos_token_id=0, eos_token_id=0))
    else:
        model = TFMistralForCausalLM(MistralConfig(
            vocab_size=VOCAB, hidden_size=768, intermediate_size=2304, num_hidden_layers=12, num_attention_heads=12,
            num_key_value_heads=4, max_position_embeddings=1024, sliding_window=None, tie_word_embeddings=False,
            bos_token_id=0, eos_token_id=0, pad_token_id=1))
    model(model.dummy_inputs, training=False)
    return model


def run_one(name, args):
    """One configuration in this process: its figures as a dict."""
    import numpy as np

    from _common import peak_rss_mb
    from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
    from tf_rl_text.recompute import recompute_blocks

    kind, mode = name.split(":")
    tokenizer = word_tokenizer()
    rng = np.random.RandomState(0)
    prompts = [" ".join(f"w{i}" for i in rng.randint(0, 5000, size=8)) for _ in range(args.prompts)]
    model = build(kind)
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    if mode == "recompute":
        recompute_blocks(model)
    agent = RLAgent(model, tokenizer, seed=0)
    trained = params
    if mode == "lora":
        lora = agent.attach_lora(rank=8, alpha=16)
        trained = int(sum(np.prod(v.shape) for v in lora.trainable_variables))
    target = tokenizer.convert_tokens_to_ids("w7")

    def reward(completions, prompts, references):
        return [c.split().count("w7") / max(1, len(c.split())) for c in completions]

    env = TextGenerationEnv(prompts, tokenizer, reward, batch_size=args.prompts, max_new_tokens=args.new_tokens,
                            sampling={"min_new_tokens": args.new_tokens})
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="rloo", num_samples_per_prompt=args.samples,
                                                           kl_coef=0.05, learning_rate=1e-4,
                                                           grad_accumulation_steps=args.grad_accumulation_steps))
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        stats = trainer.step()
        times.append(time.perf_counter() - start)
        print(f"{name}: step {i} {times[-1]:.1f} s, peak RSS {peak_rss_mb():.0f} MB, "
              f"length {stats['completion_length']:.0f}", file=sys.stderr, flush=True)
    assert stats["completion_length"] == args.new_tokens and target >= 0
    return {"step_s": float(np.mean(times[args.warmup:])), "peak_rss_mb": peak_rss_mb(),
            "first_step_s": times[0], "params": params, "trained_params": trained}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=CONFIGS, help="run one configuration in this process")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configurations to run")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--grad-accumulation-steps", type=int, default=4,
                    help="split each update into this many chunks, so the update's full-vocabulary logits and "
                         "activations exist one chunk at a time (1: the whole batch at once)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (they trace the graphs)")
    ap.add_argument("--steps", type=int, default=1, help="timed steps")
    ap.add_argument("--from-logs", nargs="+", metavar="STDERR_FILE",
                    help="no run: summarise the 'NAME: {...}' lines earlier runs printed on stderr")
    args = ap.parse_args()
    if args.from_logs:
        results = {}
        for path in args.from_logs:
            with open(path) as f:
                for line in f:
                    name, _, rest = line.partition(": ")
                    if name in CONFIGS and rest.startswith("{"):
                        results[name] = json.loads(rest)
        print(json.dumps(summarize(results, args)))
        return
    if args.only:
        print(json.dumps(run_one(args.only, args)))
        return
    results = {}
    for name in args.configs.split(","):
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                 if k not in ("only", "configs", "from_logs")]
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--only", name, *flags],
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode})")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    print(json.dumps(summarize(results, args)))


def summarize(results, args):
    """The JSON line from the per-configuration figures ``{"gpt2:full": {...}, ...}``."""
    out = {"workload": f"{args.prompts} prompts x {args.samples} samples x {args.new_tokens} new tokens, "
                       f"REINFORCE (RLOO) + KL 0.05, vocab {VOCAB}, random weights, "
                       f"grad_accumulation_steps {args.grad_accumulation_steps}"}
    for name, r in results.items():
        kind, mode = name.split(":")
        prefix = "" if kind == "gpt2" else "mistral_"
        out[f"{prefix}peak_rss_{mode}_mb"] = round(r["peak_rss_mb"], 1)
        out[f"{prefix}step_s_{mode}"] = round(r["step_s"], 2)
        out[f"{prefix}first_step_s_{mode}"] = round(r["first_step_s"], 2)
        out[f"{prefix}params"] = r["params"]
        if mode == "lora":
            out[f"{prefix}lora_trained_params"] = r["trained_params"]
    for prefix in ("", "mistral_"):
        if f"{prefix}peak_rss_lora_mb" in out and f"{prefix}peak_rss_full_mb" in out:
            out[f"{prefix}lora_peak_ratio"] = round(out[f"{prefix}peak_rss_lora_mb"] / out[f"{prefix}peak_rss_full_mb"], 3)
            out[f"{prefix}lora_step_ratio"] = round(out[f"{prefix}step_s_lora"] / out[f"{prefix}step_s_full"], 3)
    if "mistral_step_s_full" in out and "step_s_full" in out:
        out["mistral_step_ratio"] = round(out["mistral_step_s_full"] / out["step_s_full"], 3)
    if "peak_rss_recompute_mb" in out and "peak_rss_full_mb" in out:
        out["recompute_peak_ratio"] = round(out["peak_rss_recompute_mb"] / out["peak_rss_full_mb"], 3)
    out["peer_trl_peft"] = "skipped: torch is not installed in this environment"
    return out


if __name__ == "__main__":
    main()
