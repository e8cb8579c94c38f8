"""What ``tf-rl-text`` does with a config: build the agent, data, reward and trainer (``build``); run it
into a run folder (``rundir``, ``train``); export, evaluate and plot (``plots``). The CLI
(``tf_rl_text/cli.py``) is a thin layer over this.

Run folder (RUN_DIR)::

    config.yaml       the config as it ran (every field, --set and --quick applied)
    checkpoints/      the trainer base's checkpoints (ckpt-STEP): the whole run state - model, optimizer,
                      reference model, value head, RNGs, the env's prompt order, the metrics history -
                      so rerunning `train` with the same --run-dir resumes exactly
    tokenizer/        the policy's tokenizer (a from-scratch seq2seq tokenizer is trained on the data)
    tensorboard/      namespaced scalars per step (tf_rl_text.callbacks.TensorBoard: rollout/reward_mean,
                      objective/kl, loss/policy...; tensorboard --logdir RUN_DIR/tensorboard)
    metrics.jsonl     one JSON object per step (tf_rl_text.callbacks.JSONLLogger): "step" and the trainer's
                      statistics (reward_mean, kl, policy_loss, ...)
    export/           the final SavedModel (tf_rl_text.load(RUN_DIR/export))
    plots/training.png  reward, KL and losses against step
    summary.json      the final evaluation
"""
from tf_rl_text.workflow.build import (Built, build, build_agent, build_reward, load_data,
                                       make_strategy, preference_pairs, upbeat_demonstrations, zero_reward)
from tf_rl_text.workflow.plots import PANELS, plot_run, read_metrics
from tf_rl_text.workflow.rundir import (RESUMABLE_CHANGES, claim_run_dir, has_checkpoint, kept_step,
                                        weights_fingerprint, write_run_config)
from tf_rl_text.workflow.train import callbacks_for, evaluate_run, export_run, rl_note, train_run

__all__ = ["Built", "build", "build_agent", "build_reward", "load_data", "make_strategy",
           "preference_pairs", "upbeat_demonstrations", "zero_reward", "PANELS", "plot_run", "read_metrics",
           "RESUMABLE_CHANGES", "claim_run_dir", "has_checkpoint", "kept_step", "weights_fingerprint",
           "write_run_config", "callbacks_for", "evaluate_run", "export_run", "rl_note", "train_run"]
