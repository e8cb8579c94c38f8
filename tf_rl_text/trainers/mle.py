"""Maximum-likelihood warm start (teacher forcing): the usual step before RL fine-tuning.

    L = -(1/N) sum over non-pad tokens of log p(x_t | x_<t)     (a per-token mean)
"""
from __future__ import annotations

import time

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import keras, tf
from tf_rl_text.tokens import encode_texts, text_to_ids
from tf_rl_text.update import count_mask_tokens


def _mle_update(agent, strategy, optimizer, loss_fn, num_inputs, count_tokens):
    """``update(*tensors) -> loss``: an MLE step through the update runner
    (:func:`~tf_rl_text.update.compile_update`), clipped to a global norm of 1. On one device
    the gradient of ``loss_fn``, the batch's per-token mean; under another ``strategy`` each replica
    takes the gradient of its rows' share (its tokens / the batch's tokens) and the runner sums them."""
    from tf_rl_text import distribute
    from tf_rl_text.update import compile_update

    distribute.check_in_scope(strategy, agent.trainable_variables)
    variables = agent.trainable_variables
    spec, scalar = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.float32)

    def grad_fn(*args):
        *tensors, _total_rows, total_tokens = args
        with tf.GradientTape() as tape:
            loss = loss_fn(*tensors) * (count_tokens(tensors) / total_tokens)
        return tape.gradient(loss, variables), {"loss": loss}

    grad_fn = agent.compile_fn(grad_fn, [spec] * num_inputs + [scalar, scalar])
    fn = compile_update(grad_fn, [spec] * num_inputs, variables, optimizer, 1.0, strategy,
                        count_tokens=count_tokens)

    def update(*tensors):
        if not distribute.is_default(strategy):
            distribute.global_batch_check(int(tensors[0].shape[0]), strategy)
        return fn(list(tensors))["loss"]

    return update


def warm_start(agent, texts, steps: int = 300, batch_size: int = 32, learning_rate: float = 3e-3,
               max_length: int = 32, seed: int = 0, progress: bool = True, prefix: str | None = None,
               strategy=None):
    """Fit ``agent.model`` to ``texts`` by maximum likelihood for ``steps`` Adam updates.

    Each text is followed by EOS so the model learns where completions end; batches are drawn
    with replacement with a fixed seed. Returns the list of per-step losses (mean token NLL).
    ``strategy``: a ``tf.distribute.Strategy`` (default: the current one); under another one each
    batch is split over its replicas and their gradients summed (build the agent in its scope).
    """
    from tf_rl_text import distribute

    strategy = distribute.resolve(strategy)
    texts = list(texts)
    if not texts:
        raise ValueError("warm_start needs at least one text, got none")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps}")
    if max_length > agent.context_length:
        max_length = agent.context_length
    ids, mask = encode_texts(agent.tokenizer, texts, max_length)
    with strategy.scope():
        optimizer = keras.optimizers.Adam(learning_rate)

    def mean_nll(batch_ids, batch_mask):
        logits = agent.token_logits(batch_ids, batch_mask, training=True)[:, :-1]  # (B, L-1, V)
        nll = -ops.gather_log_probs(logits, batch_ids[:, 1:])
        return ops.masked_mean(nll, tf.cast(batch_mask[:, 1:], tf.float32))

    update = _mle_update(agent, strategy, optimizer, mean_nll, 2,
                         lambda t: tf.reduce_sum(tf.cast(t[1][:, 1:], tf.float32)))
    from tqdm.auto import tqdm

    rng = np.random.RandomState(seed)
    losses = []
    bar = tqdm(range(int(steps)), desc=prefix or "warm start (MLE)", disable=not progress, unit="step")
    for _ in bar:
        pick = rng.randint(0, len(texts), size=min(batch_size, len(texts)))
        width = int(mask[pick].sum(axis=1).max())  # trim padding columns of this batch
        losses.append(float(update(tf.constant(ids[pick, :width]), tf.constant(mask[pick, :width]))))
        bar.set_postfix(nll=f"{losses[-1]:.3f}")
    return losses



def _keep_last_tokens(tokenizer, text, n):
    ids = text_to_ids(tokenizer, text, verbose=False)  # cut below, as intended
    return text if len(ids) <= n else tokenizer.decode(ids[-n:])


def _check_pairs(prompts, targets, steps, max_seconds, label_smoothing):
    """fit_pairs' arguments, each bad one named with its fix."""
    if not prompts:
        raise ValueError("fit_pairs needs at least one (prompt, target) pair, got none")
    if len(prompts) != len(targets):
        raise ValueError(f"prompts and targets must pair up: got {len(prompts)} prompts and {len(targets)} targets")
    for i, t in enumerate(targets):
        if not isinstance(t, str):
            raise ValueError(f"targets[{i}] must be a string (pick one reference per prompt), got {type(t).__name__}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0 (or None: no time limit), got {max_seconds!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1) (0 = plain maximum likelihood, 0.1 is usual), got "
                         f"{label_smoothing!r}")


def fit_pairs(agent, prompts, targets, steps: int = 300, batch_size: int = 32, learning_rate: float = 1e-3,
              max_prompt_tokens: int | None = None, max_target_tokens: int = 32, seed: int = 0,
              progress: bool = True, prefix: str | None = None, strategy=None, optimizer=None,
              max_seconds: float | None = None, callback=None, label_smoothing: float = 0.0):
    """Supervised fine-tuning on (prompt or source, target) pairs: maximum likelihood of each
    target (followed by EOS) given its prompt, for causal and encoder-decoder agents alike.

        L = -(1/N) sum over target tokens of log pi(y_t | x, y_<t)     (a per-token mean)

    ``label_smoothing`` (epsilon in [0, 1)): each token's target is smoothed towards uniform,
    (1 - epsilon) * -log pi(y_t) + epsilon * mean_v -log pi(v) (:func:`tf_rl_text.ops.label_smoothed_nll`),
    the regulariser of the Transformer's training (0.1 there); 0 is plain maximum likelihood.

    It scores through ``agent.log_probs`` (the same function RL trains), so the warm-started
    policy is exactly the one the trainers then improve. Prompts longer than
    ``max_prompt_tokens`` keep their last tokens; targets are cut at ``max_target_tokens``.
    Returns the per-step losses. ``strategy``: as for :func:`warm_start`.
    ``optimizer``: a Keras optimizer to use instead of a new Adam(learning_rate) (successive calls
    then continue one Adam state; build it under the strategy's scope). ``max_seconds``: also stop
    once the updates (batching, forward, backward, step; not the preparation nor the callback) have
    taken this much wall time: a time budget, e.g. an equal-compute control run.
    ``callback(step, loss, train_seconds)`` runs after every update (``step`` counts from 1,
    ``train_seconds`` is the update time so far); a true return value stops training (early
    stopping: evaluate dev every N steps, stop when it stalls).
    """
    from tf_rl_text import distribute

    strategy = distribute.resolve(strategy)
    prompts, targets = list(prompts), list(targets)
    _check_pairs(prompts, targets, steps, max_seconds, label_smoothing)
    tok = agent.tokenizer
    if max_prompt_tokens is None:
        max_prompt_tokens = agent.family.prompt_room(agent.context_length, max_target_tokens)
    if max_prompt_tokens < 1:
        raise ValueError(
            f"max_target_tokens={max_target_tokens} leaves no room for the prompt in the model's context "
            f"of {agent.context_length} tokens; lower max_target_tokens"
        )
    prompts = [_keep_last_tokens(tok, p, max_prompt_tokens) for p in prompts]
    target_ids, target_mask = encode_texts(tok, targets, max_target_tokens)
    if optimizer is None:
        with strategy.scope():
            optimizer = keras.optimizers.Adam(learning_rate)

    def mean_nll(p_ids, p_mask, t_ids, t_mask):
        if label_smoothing:
            logits = agent.completion_logits(p_ids, p_mask, t_ids, t_mask, training=True)  # (B, T, V)
            return ops.masked_mean(ops.label_smoothed_nll(logits, t_ids, label_smoothing), tf.cast(t_mask, tf.float32))
        logp = agent.log_probs(p_ids, p_mask, t_ids, t_mask, training=True)  # (B, T)
        return -ops.masked_mean(logp, tf.cast(t_mask, tf.float32))

    update = _mle_update(agent, strategy, optimizer, mean_nll, 4, count_mask_tokens)
    from tqdm.auto import tqdm

    rng = np.random.RandomState(seed)
    losses = []
    bar = tqdm(range(int(steps)), desc=prefix or "supervised warm start", disable=not progress, unit="step")
    train_seconds = 0.0
    for _ in bar:
        if max_seconds is not None and train_seconds >= max_seconds:
            break
        start = time.perf_counter()
        pick = rng.randint(0, len(prompts), size=min(batch_size, len(prompts)))
        p_ids, p_mask = agent.encode_prompts([prompts[i] for i in pick])
        width = int(target_mask[pick].sum(axis=1).max())
        loss = update(tf.constant(p_ids), tf.constant(p_mask), tf.constant(target_ids[pick, :width]),
                      tf.constant(target_mask[pick, :width]))
        losses.append(float(loss))
        train_seconds += time.perf_counter() - start
        bar.set_postfix(nll=f"{losses[-1]:.3f}")
        if callback is not None and callback(len(losses), losses[-1], train_seconds):
            break
    return losses


__all__ = ["warm_start", "fit_pairs"]
