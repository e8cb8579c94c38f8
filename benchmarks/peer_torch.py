#!/usr/bin/env python
"""Same-machine PyTorch peer of benchmarks/rl_step.py: one RLOO step of the shared workload
(../shared/bench/rl_step) in plain PyTorch + the Hugging Face transformers PyTorch GPT-2.

This is a TRL-equivalent *core*, NOT TRL itself. It does the work TRL 1.x ``RLOOTrainer``
does each step on this workload (sample with ``model.generate``, decode, reward, score the
completions under a frozen reference under no_grad, one policy forward + backward over prompt +
completion, one Adam step) and nothing else: no Trainer/Accelerate wrapping, no dataloader,
collator, metrics gathering or logging callbacks, no gradient clipping (TRL clips to norm 1 by
default), and no extra no-grad policy forward for "old" log-probs (TRL 1.13's RLOOTrainer, the
version whose source was at hand, does one every step). TRL adds that overhead on top, so this
peer is, if anything, faster than TRL on the same machine; a speed ratio against it is conservative.

The loss mirrors ours, not TRL's formula: TRL folds beta * (summed per-token KL) into the
sequence reward before the leave-one-out baseline and uses a clipped ratio on the sequence
log-prob (ratio 1 with one update per batch); ours puts the KL per token into the return-to-go
and takes the baseline of the task reward only. The compute is the same either way.

Per step, mirroring tf_rl_text's ReinforceTrainer as rl_step.py configures it (baseline "rloo",
default ReinforceConfig otherwise: gamma 1, kl_estimator "kl", entropy_coef 0,
normalize_advantages False; max_grad_norm None as rl_step.py sets):

* 16 prompts, drawn in order (cyclically) from prompts.txt, left padded, each repeated 4 times
  in consecutive rows; ``generate(do_sample=True, top_k=0, temperature=1, max_new_tokens=24,
  min_new_tokens=24, use_cache=True)`` -- exactly 24 tokens, EOS never chosen;
* reward R = share of completion words equal to the workload's target word;
* RLOO baseline b_i = (sum_j R_j - R_i) / (k - 1) over the k samples of a prompt (task reward only);
* per-token KL estimate kl_t = log pi(a_t) - log pi_ref(a_t) (k1; policy log-prob detached);
  token rewards r_t = R at the last token - 0.05 * kl_t at every token; return-to-go G_t (gamma 1);
  A_t = G_t - b_i;
* loss = -(1/B) sum_i sum_t A_it * log pi(a_it), Adam(lr 1e-4, eps 1e-7 as Keras' Adam).

Prints progress on stderr and one JSON line (the figures) as the last line of stdout. Run it
with a Python that has torch (kept out of the TF environment):

    /work/torchenv/bin/python benchmarks/peer_torch.py                 # the workload as shipped
    /work/torchenv/bin/python benchmarks/peer_torch.py --steps 5 --threads 1
"""
from __future__ import annotations

import os

# transformers imports TensorFlow too when it is installed (it is, system-wide): keep it out.
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_TORCH", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# _common imports only the standard library at module level (transformers' tokenizer inside load_workload)
from _common import (add_run_flags, add_torch_flags, build_torch_model, load_run, peak_rss_mb,  # noqa: E402
                     set_torch_threads, step_gflop, time_steps)

import torch  # noqa: E402


def leave_one_out_baseline(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """b_i = (sum_j R_j - R_i) / (k - 1) over consecutive groups of k (ops.leave_one_out_baseline)."""
    grouped = rewards.view(-1, k)
    return ((grouped.sum(dim=1, keepdim=True) - grouped) / (k - 1)).view(-1)


def reinforce_advantages(rewards, baseline, mask, kl=None, kl_coef=0.0, gamma=1.0):
    """A_t = G_t - b (B, T), 0 on padding; as trainers.reinforce.reinforce_advantages.

    Token rewards: R on the last unmasked token, minus ``kl_coef * kl`` at every token;
    G_t = sum_{s>=t} gamma^(s-t) r_s.
    """
    length = mask.sum(dim=1).long()
    token_rewards = torch.zeros_like(mask)
    last = (length - 1).clamp(min=0)
    token_rewards[torch.arange(mask.shape[0]), last] = rewards * (length > 0).to(rewards.dtype)
    if kl is not None:
        token_rewards = token_rewards - kl_coef * kl
    token_rewards = token_rewards * mask
    if gamma == 1.0:
        returns = token_rewards.flip(1).cumsum(1).flip(1)
    else:
        returns = torch.zeros_like(token_rewards)
        acc = torch.zeros_like(token_rewards[:, 0])
        for t in range(token_rewards.shape[1] - 1, -1, -1):
            acc = token_rewards[:, t] + gamma * acc
            returns[:, t] = acc
    return (returns * mask - baseline[:, None]) * mask


def reinforce_loss(logp, mask, advantages):
    """-(1/B) sum_i sum_t A_it * logp_it (advantages detached); as trainers.reinforce.reinforce_loss."""
    return -(advantages.detach() * logp * mask).sum(dim=1).mean()


def completion_log_probs(model, input_ids, attention_mask, num_completion, temperature):
    """log pi of the last ``num_completion`` tokens of each row (B, T) and the logits that scored them.

    Positions skip left padding (cumsum(mask) - 1), as RLAgent does; only the logits of the
    completion positions are computed (``logits_to_keep``, as TRL does).
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                logits_to_keep=num_completion + 1, use_cache=False)
    logits = out.logits[:, :-1] / temperature  # position P-1 predicts the first completion token
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    tokens = input_ids[:, -num_completion:]
    return logp_all.gather(-1, tokens[:, :, None]).squeeze(-1), logp_all


class Peer:
    """Policy, frozen reference, Adam and the prompt cycle; :meth:`step` is one RLOO step."""

    def __init__(self, w, tokenizer, prompts):
        self.w, self.tokenizer, self.prompts = w, tokenizer, prompts
        self.k = w["completions_per_prompt"]
        self.model = build_torch_model(w["model"], tokenizer, w["seed"])
        self.model.eval()  # dropouts are 0: train/eval differ in nothing; no mode switches per step
        self.ref_model = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=w["learning_rate"], eps=1e-7)
        self.cursor = 0
        self.target = w["target_word"]
        self.eos, self.pad = tokenizer.eos_token_id, tokenizer.pad_token_id
        torch.manual_seed(w["seed"])

    def next_prompts(self):
        n = self.w["prompts_per_step"]
        out = [self.prompts[(self.cursor + i) % len(self.prompts)] for i in range(n)]
        self.cursor = (self.cursor + n) % len(self.prompts)
        return out

    def reward(self, completions):
        out = []
        for c in completions:
            words = c.split()
            out.append(sum(x == self.target for x in words) / len(words) if words else 0.0)
        return out

    def rollout(self):
        w = self.w
        rows = [p for p in self.next_prompts() for _ in range(self.k)]
        enc = self.tokenizer(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"]
        with torch.no_grad():
            out = self.model.generate(
                input_ids=prompt_ids, attention_mask=prompt_mask, do_sample=True, top_k=0,
                temperature=w["temperature"], max_new_tokens=w["completion_tokens"],
                min_new_tokens=w["completion_tokens"], use_cache=True, pad_token_id=self.pad,
                eos_token_id=self.eos)
        completion_ids = out[:, prompt_ids.shape[1]:]
        # mask after the first EOS (as TRL does); with min_new_tokens = max_new_tokens there is none
        is_eos = completion_ids == self.eos
        first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], is_eos.shape[1],
                                                                                   dtype=torch.long))
        completion_mask = (torch.arange(is_eos.shape[1])[None, :] <= first[:, None]).long()
        completions = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        rewards = torch.tensor(self.reward(completions), dtype=torch.float32)
        return prompt_ids, prompt_mask, completion_ids, completion_mask, rewards

    def step(self) -> dict:
        w = self.w
        prompt_ids, prompt_mask, completion_ids, completion_mask, rewards = self.rollout()
        baseline = leave_one_out_baseline(rewards, self.k)
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        mask = completion_mask.float()
        t = completion_ids.shape[1]
        with torch.no_grad():
            ref_logp, _ = completion_log_probs(self.ref_model, input_ids, attention_mask, t, w["temperature"])
            ref_logp = ref_logp * mask
        logp, logp_all = completion_log_probs(self.model, input_ids, attention_mask, t, w["temperature"])
        logp = logp * mask
        with torch.no_grad():  # logged only (entropy_coef 0), as ours and TRL log it
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            mean_entropy = float((entropy * mask).sum() / mask.sum().clamp(min=1))
        kl = (logp.detach() - ref_logp) * mask  # ops.kl_penalty(kind="kl") on stop_gradient(logp)
        advantages = reinforce_advantages(rewards, baseline, mask, kl, w["kl_coef"])
        loss = reinforce_loss(logp, mask, advantages)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"RLOO loss is {loss.item()} (check rewards and learning rate)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {
            "loss": float(loss.detach()), "reward_mean": float(rewards.mean()), "kl": float(kl.sum() / kl.shape[0]),
            "entropy": mean_entropy, "completion_lengths": sorted({int(x) for x in completion_mask.sum(1)}),
            "eos_generated": bool((completion_ids == self.eos).any()),
        }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(ap)
    add_torch_flags(ap, "run each step under torch.autocast('cpu', torch.bfloat16) (float32 weights and Adam)")
    args = ap.parse_args(argv)
    set_torch_threads(args)
    w, tokenizer, prompts, steps, warmup = load_run(args)
    peer = Peer(w, tokenizer, prompts)

    def step():
        with (torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()):
            stats = peer.step()
        if stats["completion_lengths"] != [w["completion_tokens"]] or stats["eos_generated"]:
            raise SystemExit(f"completions must be exactly {w['completion_tokens']} tokens without EOS: "
                             f"lengths {stats['completion_lengths']}, EOS generated {stats['eos_generated']}")
        return stats

    times, rss, time_to_first, stats = time_steps(
        step, warmup, steps, lambda stats: f"reward {stats['reward_mean']:.3f}, kl {stats['kl']:.3f}")
    import transformers

    gflop = step_gflop(w)
    median = statistics.median(times)
    seqs = w["prompts_per_step"] * w["completions_per_prompt"]
    result = {
        "benchmark": "rl_step_torch_peer", "algo": "rloo", "bf16": args.bf16, "timed_steps": len(times),
        "median_step_s": round(median, 4), "min_step_s": round(min(times), 4),
        "max_step_s": round(max(times), 4), "seqs_per_s": round(seqs / median, 2),
        "time_to_first_step_s": round(time_to_first, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_mb_after_step": rss, "gflop_per_step": round(gflop, 2), "gflops_achieved": round(gflop / median, 1),
        "final_reward_mean": round(stats["reward_mean"], 4),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "threads": [torch.get_num_interop_threads(), torch.get_num_threads()],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
