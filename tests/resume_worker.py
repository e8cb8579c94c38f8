"""A tiny training run for tests/test_resume.py's kill test (run as a subprocess, not collected).

    python tests/resume_worker.py RUN_DIR NUM_STEPS OUT_JSON

Trains a 1-layer, 32-wide GPT-2 with REINFORCE (moving-average baseline, KL leash, reward
normalisation, cosine schedule) with a checkpoint after every step into RUN_DIR, printing
"resumed <step>" first and "step <n>" after each step; at the end writes the weights to
OUT_JSON.npz and the history (without timings) to OUT_JSON. Rerunning it with the same arguments resumes from RUN_DIR.
"""
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_rl_text  # noqa: E402,F401
from tf_rl_text._compat import tf  # noqa: E402

tf.config.experimental.enable_op_determinism()

from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv  # noqa: E402
from tf_rl_text.callbacks import LambdaCallback  # noqa: E402
from tf_rl_text.defaults import default_model, default_tokenizer  # noqa: E402

PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed", "the food", "a"]


def length_reward(completions, prompts, references):
    return [len(c.split()) / 4.0 for c in completions]


def build(run_dir, num_steps):
    tokenizer = default_tokenizer()
    agent = RLAgent(default_model(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=0), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=4, seed=0)
    config = ReinforceConfig(learning_rate=1e-2, kl_coef=0.1, reward_normalization=True, lr_schedule="cosine",
                             warmup_steps=2, total_steps=num_steps)
    return ReinforceTrainer(agent, env, config, run_dir=run_dir, checkpoint_every=1, keep_checkpoints=2)


def main():
    run_dir, num_steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    trainer = build(run_dir, num_steps)
    print(f"resumed {trainer.global_step}", flush=True)
    trainer.train(num_steps, progress=False,
                  callbacks=[LambdaCallback(on_step_end=lambda step, logs: print(f"step {step}", flush=True))])
    np.savez(out + ".npz", *[v.numpy() for v in trainer.agent.model.weights])
    with open(out, "w") as f:
        json.dump([{k: v for k, v in h.items() if k != "step_time_s"} for h in trainer.history], f)


if __name__ == "__main__":
    main()
