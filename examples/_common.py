"""What the four sentiment examples (train_text_rl, train_ppo, train_q_learning, positive_reviews)
share: the agent they start from, the corpus warm start, the before/after reward and the metrics
file. The three task examples share ``_task_common.py``. Nothing here is imported by the package.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os

import numpy as np

from tf_rl_text import RLAgent, default_model, default_tokenizer, load_corpus, warm_start, with_precision


# --------------------------------------------------------------------------- flags
def _number(name, cast, kind, low, low_ok, high=None):
    """An argparse ``type`` that names the flag, the bad value and the allowed range."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
        if not (value >= low if low_ok else value > low) or (high is not None and value > high):
            bound = f">= {low}" if low_ok else f"> {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {bound}" + (f" and <= {high}" if high is not None else "")
                                             + f", got {value}")
        return value
    return parse


def positive_int(name):
    return _number(name, int, "an integer", 1, True)


def non_negative_int(name):
    return _number(name, int, "an integer", 0, True)


def positive_float(name):
    return _number(name, float, "a number", 0, False)


def non_negative_float(name):
    return _number(name, float, "a number", 0, True)


def seed_int(name="--seed"):
    return _number(name, int, "an integer", 0, True, 2**32 - 1)


def check_model_folder(parser, path, flag="--model"):
    """``parser.error`` unless ``path`` is a folder written by ``save_pretrained`` (has a config.json)."""
    if path is None:
        return
    if not os.path.isdir(path):
        parser.error(f"{flag} {path!r} is not a folder; pass a local folder written by save_pretrained")
    if not os.path.isfile(os.path.join(path, "config.json")):
        parser.error(f"{flag} {path!r} has no config.json, so it is not a saved model; pass a local folder "
                     "written by save_pretrained")


@contextlib.contextmanager
def user_errors(what):
    """Turn a bad-input error (bad data file, a setting that does not fit the model) into a one-line exit."""
    try:
        yield
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {what}: {e}") from None


def check_fits(tokenizer, prompts, max_new_tokens):
    """Exit before any training if a prompt + ``--max-new-tokens`` does not fit the model's context
    (the check the example's TextGenerationEnv would make later)."""
    from tf_rl_text import TextGenerationEnv

    with user_errors(f"--max-new-tokens {max_new_tokens}"):
        TextGenerationEnv(prompts, tokenizer, reward_fn=lambda c, p, r: [0.0] * len(c), batch_size=1,
                          max_new_tokens=max_new_tokens)


def add_precision_flag(parser, note=""):
    """``--precision``: float32 (default) or mixed_bfloat16 (every example takes it)."""
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                        help="mixed_bfloat16: bfloat16 math over float32 weights (faster matmuls on CPUs with "
                             "AVX512-BF16/AMX); default float32" + note)


def in_precision(model, precision):
    """``model`` itself for float32, else a copy with the same weights computing in ``precision``."""
    return model if precision == "float32" else with_precision(model, precision)


def make_agent(model_path, seed, precision="float32", strategy=None):
    """An RLAgent over a local pretrained causal LM folder (``save_pretrained``) or, with none, the embedded default.

    ``precision="mixed_bfloat16"``: the model computes in bfloat16 over float32 weights (``with_precision``).
    ``strategy``: model and agent are built in its scope (see docs/distributed.md)."""
    if strategy is not None:
        with strategy.scope():
            return make_agent(model_path, seed, precision)
    if model_path:
        from transformers import AutoTokenizer, TFAutoModelForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = TFAutoModelForCausalLM.from_pretrained(model_path)
    else:
        tokenizer = default_tokenizer()
        model = default_model(tokenizer, seed=seed)
    return RLAgent(in_precision(model, precision), tokenizer, seed=seed)


def warm_start_on_corpus(agent, steps, seed, progress, strategy=None):
    """``steps`` maximum-likelihood steps on the embedded corpus (none when 0), with the loss printed."""
    if steps:
        losses = warm_start(agent, load_corpus(), steps=steps, seed=seed, progress=progress, strategy=strategy)
        print(f"warm start: token NLL {losses[0]:.2f} -> {np.mean(losses[-20:]):.2f} over {len(losses)} steps")


def mean_reward(trainer, prompts, seed, env=None, agent=None):
    """Mean reward of 4 sampled completions of every prompt (fixed seed: comparable before/after).
    Pass ``env`` and ``agent`` instead of a trainer to score before the trainer exists (a resumed
    trainer holds the trained weights)."""
    env = env if env is not None else trainer.env
    agent = agent if agent is not None else trainer.agent
    rollout = env.rollout(agent, num_samples=4, seed=seed, prompts=prompts)
    return float(np.mean(rollout.rewards))


def write_metrics(metrics, path):
    """Write ``metrics`` as JSON to ``path`` (its folder made as needed); nothing when path is empty."""
    if path and is_chief():
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(metrics, f, indent=1)


# --------------------------------------------------------------------------- run folder, resume, determinism
RUN_ARGS_FILE = "example_args.json"
FINISHED_FILE = "finished.json"
_NOT_THE_RUN = ("run_dir", "metrics_file", "no_progress", "output", "checkpoint_every",
                "strategy")  # may change on a rerun (a checkpoint resumes under any strategy)
_STRATEGY = {}


def run_strategy(args):
    """The tf.distribute strategy ``--strategy`` names (made once per process; see docs/distributed.md)."""
    name = getattr(args, "strategy", "default")
    if name not in _STRATEGY:
        from tf_rl_text.distribute import make_strategy

        _STRATEGY[name] = make_strategy(name)
    return _STRATEGY[name]


def weights_fingerprint(model):
    """sha256 of all of ``model``'s weights (bit-exact: equal on workers that hold the same weights)."""
    import hashlib

    digest = hashlib.sha256()
    for v in model.weights:
        digest.update(np.ascontiguousarray(v.numpy()).tobytes())
    return digest.hexdigest()[:16]


def is_chief():
    """False on a non-chief worker of a multi-worker run (it writes no files)."""
    from tf_rl_text.distribute import is_chief as chief

    return all(chief(s) for s in _STRATEGY.values())


def add_run_flags(parser, example):
    """``--run-dir`` (default runs/<example>), ``--checkpoint-every`` and ``--deterministic``."""
    parser.add_argument("--run-dir", default=os.path.join("runs", example),
                        help="run folder: checkpoints/, tensorboard/, metrics.jsonl. Rerunning the same command "
                             "resumes from its last checkpoint (after a crash or Ctrl-C)")
    parser.add_argument("--checkpoint-every", type=positive_int("--checkpoint-every"), default=10,
                        help="save a checkpoint every N RL steps (also at the end and on SIGINT/SIGTERM)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic TF kernels (op determinism): the same seed gives the same numbers, "
                             "and a resumed run ends as the uninterrupted one would have")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multi_worker"],
                        help="tf.distribute strategy: default (one device), mirrored (all local GPUs), multi_worker "
                             "(MultiWorkerMirroredStrategy from TF_CONFIG; see docs/distributed.md)")


def start_run(args, default_run_dir):
    """Turn on op determinism if asked; make sure ``args.run_dir`` belongs to this run.

    The folder records the arguments (``example_args.json``). A rerun with the same arguments
    resumes. In the DEFAULT folder (the example's scratch space) a different or finished run is
    moved aside to ``<run_dir>.old`` and a new one starts; in a folder given with --run-dir a run
    with other arguments is an error, and a finished run is resumed (nothing left to train: it
    evaluates and exports again).
    """
    import shutil

    run_strategy(args)  # first: MultiWorkerMirroredStrategy must exist before TensorFlow runs any op
    if args.deterministic:
        from tf_rl_text._compat import tf

        tf.config.experimental.enable_op_determinism()
        tf.keras.utils.set_random_seed(args.seed)
    if not is_chief():  # a non-chief worker reads the chief's run folder (shared storage) and writes nothing
        return
    run_dir = args.run_dir
    import dataclasses

    wanted = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_THE_RUN}
    wanted = json.loads(json.dumps(wanted, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o)
                                   else str(o)))
    record = os.path.join(run_dir, RUN_ARGS_FILE)
    default = os.path.abspath(run_dir) == os.path.abspath(default_run_dir)
    if default and os.path.exists(os.path.join(run_dir, FINISHED_FILE)):
        # the example's scratch folder holds a finished run: this is a new run, not a resume
        shutil.rmtree(run_dir + ".old", ignore_errors=True)
        os.replace(run_dir, run_dir + ".old")
        print(f"{run_dir} held a finished run; moved it to {run_dir}.old and starting a new one")
    if os.path.exists(record):
        with open(record) as f:
            found = json.load(f)
        if found != wanted:
            changed = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            if not default:
                raise SystemExit(f"error: --run-dir {run_dir} holds a run with other arguments ({', '.join(changed)} "
                                 "differ); rerun with the same arguments to resume it, or pass a new --run-dir")
            shutil.rmtree(run_dir + ".old", ignore_errors=True)
            os.replace(run_dir, run_dir + ".old")
            print(f"{run_dir} held a run with other arguments ({', '.join(changed)}); moved it to {run_dir}.old")
    elif os.path.isdir(os.path.join(run_dir, "checkpoints")):
        raise SystemExit(f"error: --run-dir {run_dir} holds checkpoints of an unknown run; pass a new --run-dir")
    os.makedirs(run_dir, exist_ok=True)
    with open(record + ".tmp", "w") as f:
        json.dump(wanted, f, indent=1)
    os.replace(record + ".tmp", record)


def finish_run(args, metrics=None):
    """Mark ``args.run_dir`` as a finished run (``finished.json``, with the summary metrics)."""
    if not is_chief():
        return
    with open(os.path.join(args.run_dir, FINISHED_FILE), "w") as f:
        json.dump(metrics or {}, f, indent=1, default=str)


def run_callbacks():
    """TensorBoard (run_dir/tensorboard) and JSONL metrics (run_dir/metrics.jsonl) for ``trainer.train``."""
    from tf_rl_text.callbacks import JSONLLogger, TensorBoard

    return [TensorBoard(), JSONLLogger()]


def trainer_run_kwargs(args):
    return {"run_dir": args.run_dir, "checkpoint_every": args.checkpoint_every, "strategy": run_strategy(args)}


def resumed_note(trainer):
    """A line saying where the trainer resumed from (empty for a fresh run)."""
    if trainer.restored_from:
        return f"resumed from {trainer.restored_from} (step {trainer.global_step})"
    return ""
