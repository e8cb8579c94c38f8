"""Keras-style callbacks for :meth:`Trainer.train <tf_rl_text.trainers.base.Trainer.train>`.

A callback overrides any of ``on_train_begin(trainer)``, ``on_step_end(step, logs)``,
``on_eval_end(step, logs)`` and ``on_train_end(logs)``; ``step`` is the trainer's global step
after the step (1 for the first), ``logs`` the step's statistics (floats). Built-ins:

* :class:`TensorBoard` - namespaced scalars (``rollout/reward_mean``, ``objective/kl``,
  ``objective/kl_coef``, ``loss/policy``, ``loss/value``, ``policy/entropy``,
  ``policy/clip_fraction``, ``time/step_s``, ``lr``, ...) and sample completions as text;
* :class:`JSONLLogger` - one JSON line per step (a resumed run drops the lines past its checkpoint);
* :class:`ProgressBar` - tqdm;
* :class:`CheckpointCallback` - a checkpoint every N steps;
* :class:`EvalCallback` - a held-out evaluation every N steps that keeps the best weights.

Example::

    from tf_rl_text.callbacks import EvalCallback, JSONLLogger, TensorBoard
    trainer = ReinforceTrainer(agent, env, config, run_dir="runs/demo")
    trainer.train(200, callbacks=[TensorBoard("runs/demo/tensorboard"), JSONLLogger("runs/demo/metrics.jsonl"),
                                  EvalCallback(dev_set, ["bleu"], every=50, keep_best="bleu")])
"""
from tf_rl_text.callbacks.base import SCALAR_NAMES, Callback, CallbackList, LambdaCallback, scalar_name
from tf_rl_text.callbacks.recording import JSONLLogger, ProgressBar, TensorBoard, read_jsonl
from tf_rl_text.callbacks.evaluation import CheckpointCallback, EvalCallback, default_callbacks

__all__ = ["Callback", "LambdaCallback", "CallbackList", "TensorBoard", "JSONLLogger", "ProgressBar",
           "CheckpointCallback", "EvalCallback", "SCALAR_NAMES", "scalar_name", "default_callbacks", "read_jsonl"]
