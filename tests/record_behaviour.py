"""Record what the package computes, to prove a restructuring changed nothing (issue 26).

    python tests/record_behaviour.py --out before.npz            # on the old code
    python tests/record_behaviour.py --out after.npz --compare before.npz

For GPT-2, T5, BART, Mistral (tiny, seeded) and a BERT choice policy, it records sampled and
greedy tokens with their log-probs, and, for each trainer, the statistics of two updates and the
weights after them (every array, so a comparison names the first one that moved), plus an
export's outputs. ``--compare`` prints each record's largest difference and exits 1 unless every
record is bit-identical. Not a test (the file name keeps pytest away): it runs in one process in
about two CPU minutes, and is run by hand before and after a change that should change nothing.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from conftest import make_tiny_bart, make_tiny_mistral, make_tiny_model, make_tiny_t5  # noqa: E402
from test_choice import CANDIDATES, PROMPTS, positive_pick, tiny_classifier  # noqa: E402

import tf_rl_text  # noqa: E402
from tf_rl_text._compat import tf  # noqa: E402
from tf_rl_text.defaults import default_tokenizer  # noqa: E402

SOURCES = ["the movie was", "my day", "our dinner", "i really enjoyed"]


def length_reward(completions, prompts, references):
    return [len(c) / 10.0 for c in completions]


FAMILIES = {"gpt2": make_tiny_model, "t5": make_tiny_t5, "bart": make_tiny_bart, "mistral": make_tiny_mistral}


def trainers():
    from tf_rl_text.preferences import PreferencePairs
    from tf_rl_text.trainers.dpo import OnlineDPOConfig, OnlineDPOTrainer

    T = tf_rl_text
    pairs = PreferencePairs(SOURCES, [" was good ."] * 4, [" was bad ."] * 4)
    return {
        "reinforce": lambda a, e: T.ReinforceTrainer(a, e, T.ReinforceConfig(num_samples_per_prompt=2, kl_coef=0.05,
                                                                               learning_rate=1e-2)),
        "reinforce_k2": lambda a, e: T.ReinforceTrainer(a, e, T.ReinforceConfig(
            num_samples_per_prompt=2, kl_coef=0.05, learning_rate=1e-2, grad_accumulation_steps=2)),
        "reinforce_mixed": lambda a, e: T.ReinforceTrainer(a, e, T.ReinforceConfig(
            num_samples_per_prompt=2, learning_rate=1e-2, mle_coef=0.5)),
        "ppo": lambda a, e: T.PPOTrainer(a, e, T.PPOConfig(num_samples_per_prompt=2, num_minibatches=1,
                                                            learning_rate=1e-2)),
        "ppo_k2": lambda a, e: T.PPOTrainer(a, e, T.PPOConfig(num_samples_per_prompt=2, num_minibatches=1,
                                                               learning_rate=1e-2, grad_accumulation_steps=2)),
        "a2c": lambda a, e: T.A2CTrainer(a, e, T.A2CConfig(num_samples_per_prompt=2, learning_rate=1e-2)),
        "q": lambda a, e: T.QLearningTrainer(a, e, T.QLearningConfig(batch_size=2, learning_rate=1e-2)),
        "q_k2": lambda a, e: T.QLearningTrainer(a, e, T.QLearningConfig(batch_size=4, learning_rate=1e-2,
                                                                        grad_accumulation_steps=2)),
        "grpo": lambda a, e: T.GRPOTrainer(a, e, T.GRPOConfig(num_generations=2, num_iterations=2, beta=0.05,
                                                               learning_rate=1e-2)),
        "dpo": lambda a, e: T.DPOTrainer(a, pairs, T.DPOConfig(beta=0.1, batch_size=2, learning_rate=1e-2)),
        "online_dpo": lambda a, e: OnlineDPOTrainer(a, e, OnlineDPOConfig(num_generations=2, beta=0.1,
                                                                          learning_rate=1e-2)),
    }


def weights_of(agent_or_trainer, prefix, out):
    for i, v in enumerate(agent_or_trainer):
        out[f"{prefix}/w{i:03d}"] = np.asarray(v)


def record_family(name, tokenizer, out, export_dir):
    from tf_rl_text import RLAgent, TextGenerationEnv

    agent = RLAgent(FAMILIES[name](tokenizer), tokenizer, seed=0)
    ids, mask = agent.encode_prompts(SOURCES)
    for greedy in (False, True):
        gen = agent.generate(ids, mask, 5, greedy=greedy)
        tag = f"{name}/generate_{'greedy' if greedy else 'sample'}"
        out[f"{tag}/ids"] = gen.completion_ids.numpy()
        out[f"{tag}/mask"] = gen.completion_mask.numpy()
        out[f"{tag}/log_probs"] = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask).numpy()
    for algo, build in trainers().items():
        if name != "gpt2" and algo not in ("reinforce", "ppo", "q", "grpo", "dpo"):
            continue
        agent = RLAgent(FAMILIES[name](tokenizer), tokenizer, seed=0)
        env = TextGenerationEnv(SOURCES, tokenizer, length_reward, references=[" yes", " a good one", " no", " fine"],
                                batch_size=2, max_new_tokens=4, seed=0)
        trainer = build(agent, env)
        for step in range(2):
            stats = trainer.step()
            for key, value in sorted(stats.items()):
                if key not in ("step_time_s",) and np.ndim(value) == 0:
                    out[f"{name}/{algo}/step{step}/{key}"] = np.asarray(value, np.float64)
        weights_of(agent.model.get_weights(), f"{name}/{algo}", out)
        extra = [v.numpy() for v in trainer.variables if all(v is not w for w in agent.model.weights)] \
            if hasattr(trainer, "variables") else []
        weights_of(extra, f"{name}/{algo}/extra", out)
        if algo == "reinforce":
            loaded = tf.saved_model.load(trainer.export(os.path.join(export_dir, f"{name}_{algo}")))
            got = loaded.generate(ids, mask)
            out[f"{name}/{algo}/export/sequences"] = got["sequences"].numpy()
            gen = agent.generate(ids, mask, 4, greedy=True)
            out[f"{name}/{algo}/export/log_probs"] = loaded.log_probs(
                ids, mask, gen.completion_ids, gen.completion_mask)["log_probs"].numpy()


def record_choice(tokenizer, out):
    from tf_rl_text import RLAgent, ReinforceConfig
    from tf_rl_text.choice import ChoiceEnv
    from tf_rl_text.trainers.choice import ChoiceQConfig, ChoiceQLearningTrainer, ChoiceReinforceTrainer

    env = ChoiceEnv(PROMPTS, tokenizer, positive_pick, candidates=CANDIDATES, batch_size=8, max_length=16)
    for algo, build in {"choice_reinforce": lambda a: ChoiceReinforceTrainer(
                            a, env, ReinforceConfig(learning_rate=3e-3, baseline="rloo", num_samples_per_prompt=4)),
                        "choice_q": lambda a: ChoiceQLearningTrainer(a, env, ChoiceQConfig(learning_rate=3e-3))
                        }.items():
        agent = RLAgent(tiny_classifier(tokenizer), tokenizer, seed=0)
        trainer = build(agent)
        for step in range(2):
            for key, value in sorted(trainer.step().items()):
                if key != "step_time_s" and np.ndim(value) == 0:
                    out[f"bert/{algo}/step{step}/{key}"] = np.asarray(value, np.float64)
        weights_of([v.numpy() for v in agent.trainable_variables], f"bert/{algo}", out)


def record_warm_start(tokenizer, out):
    from tf_rl_text import RLAgent
    from tf_rl_text.trainers.mle import fit_pairs

    for name in ("gpt2", "t5"):
        agent = RLAgent(FAMILIES[name](tokenizer), tokenizer, seed=0)
        losses = fit_pairs(agent, SOURCES, [" a good one", " yes", " no", " fine"], steps=2, progress=False)
        out[f"{name}/fit_pairs/losses"] = np.asarray(losses, np.float64)
        weights_of(agent.model.get_weights(), f"{name}/fit_pairs", out)


def record(path, only=None):
    """Every record (``only``: just the parts named: a family, "choice" or "warm_start")."""
    tf.config.experimental.enable_op_determinism()
    tokenizer = default_tokenizer()
    out = {}
    with tempfile.TemporaryDirectory() as export_dir:
        for name in FAMILIES:
            if not only or name in only:
                record_family(name, tokenizer, out, export_dir)
    if not only or "choice" in only:
        record_choice(tokenizer, out)
    if not only or "warm_start" in only:
        record_warm_start(tokenizer, out)
    np.savez(path, **out)
    print(f"{len(out)} records -> {path}")
    return out


def compare(new, old_path, only=None):
    old = dict(np.load(old_path))
    if only:  # the parts recorded this time
        old = {k: v for k, v in old.items() if k.split("/")[0] in only and "/fit_pairs/" not in k
               or "choice" in only and k.startswith("bert/") or "warm_start" in only and "/fit_pairs/" in k}
    bad = 0
    for key in sorted(set(old) | set(new)):
        if key not in new or key not in old:
            print(f"MISSING {key} (in {'old' if key in old else 'new'} only)")
            bad += 1
            continue
        a, b = np.asarray(new[key]), old[key]
        if a.shape != b.shape:
            print(f"SHAPE   {key}: {a.shape} vs {b.shape}")
            bad += 1
        elif not np.array_equal(a, b):
            diff = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
            print(f"DIFFERS {key}: max |diff| {diff:.3g}")
            bad += 1
    print(f"{len(old)} recorded, {bad} not bit-identical")
    return bad


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--compare", default=None, help="an earlier recording to compare with")
    p.add_argument("--only", nargs="*", default=None, help=f"record only these parts: {list(FAMILIES)}, choice, "
                   "warm_start")
    args = p.parse_args()
    new = record(args.out, args.only)
    if args.compare:
        sys.exit(1 if compare(new, args.compare, args.only) else 0)
