"""Per-token credit: what each generated token cost or earned, as the trainer sees it (issue 28).

    from tf_rl_text import explain
    rows = explain.explain(trainer)                  # the trainer's next batch, left untouched for its next step
    rows = explain.explain(trainer, ["the movie was"], num_samples=2)
    explain.to_html(rows, "advantage", "credit.html")    # tokens coloured by a quantity; no scripts
    explain.to_png(rows, "log_ratio", "credit.png")      # a heatmap
    explain.screenshot("credit.html", "credit_page.png") # the page as a browser shows it (headless Chromium)

For every generated token (one :class:`TokenExplanation` per sequence, arrays of shape (T,) over
its completion tokens):

* ``log_prob``, ``entropy``: log pi(a_t | s_t) and the entropy of pi(. | s_t) under the policy;
* ``ref_log_prob``, ``log_ratio`` (log pi - log pi_ref) and ``kl`` (the trainer's per-token KL
  estimate, ``config.kl_estimator``) against the frozen reference model (when there is one);
* the credit the trainer assigned it: REINFORCE ``advantage`` (the sequence's return minus its
  baseline, spread over its tokens, KL shaping included) with ``reward`` and ``baseline`` per
  sequence; GRPO ``advantage`` (the completion's group-relative advantage on each of its tokens);
  A2C/PPO ``value``, ``advantage`` (GAE) and ``return``; Q-learning ``q`` (Q(s_t, a_t))
  and ``td_target``.

The numbers come from the trainer itself: it rolls out through its own experience source
(``trainer.source``) and scores the rollout as its update does (``trainer.token_credit(rollout)``,
its ``score(batch, per_token=True)``); nothing is trained and no run state moves: with no prompts,
the rollout is the batch the trainer's next ``step()`` draws, and the source's order, sampling RNG,
baseline and reward-normaliser states are put back, so that step sees the same batch.
An export (``tf_rl_text.load``) gives ``log_prob`` and, with ``reference=`` another export of the same
tokenizer, ``ref_log_prob``/``log_ratio``: which tokens moved most against the reference is where
reward hacking first shows (``tf-rl-text explain EXPORT "text" --reference MLE_EXPORT``).
"""
from __future__ import annotations


import copy
import dataclasses
import html
import os

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf
from tf_rl_text.experience import rollout_ids, token_scores
from tf_rl_text.validation import check_prompts

QUANTITIES = {
    "log_prob": "log pi(a_t | s_t) under the policy",
    "entropy": "entropy of pi(. | s_t) (nats)",
    "ref_log_prob": "log pi_ref(a_t | s_t) under the frozen reference",
    "log_ratio": "log pi - log pi_ref: how far this token's probability moved from the reference",
    "kl": "the trainer's per-token KL estimate to the reference",
    "advantage": "the credit the update gave this token (REINFORCE: return - baseline; A2C/PPO: GAE)",
    "value": "V(s_t), the value head (A2C/PPO)",
    "return": "the return target of V(s_t) (A2C/PPO)",
    "q": "Q(s_t, a_t) (Q-learning)",
    "td_target": "the TD target of Q(s_t, a_t) (Q-learning; at the last token: the reward)",
}


@dataclasses.dataclass
class TokenExplanation:
    """One generated sequence: its tokens and, per quantity, one number per token (arrays of shape (T,))."""

    prompt: str
    completion: str
    tokens: list
    quantities: dict
    reward: float | None = None
    baseline: float | None = None

    def top_moved(self, n: int = 5) -> list:
        """The ``n`` tokens whose log-probability moved most against the reference: [(token, log_ratio)]."""
        if "log_ratio" not in self.quantities:
            return []
        ratio = self.quantities["log_ratio"]
        order = np.argsort(-np.abs(ratio))[:n]
        return [(self.tokens[i], float(ratio[i])) for i in order]


# --------------------------------------------------------------------------- the rollout
def _snapshot(trainer):
    return trainer.rollout_state(), copy.deepcopy(trainer._python_state())


def _restore(trainer, snap):
    rollout, python = snap
    trainer.set_rollout_state(rollout)
    trainer._load_python_state(python)


def _tokens(tokenizer, ids, mask):
    return [tokenizer.decode([int(t)]) for t, m in zip(ids, mask) if m]


def _rows(tokenizer, rollout, quantities, rewards=None, baselines=None):
    mask = np.asarray(rollout.completion_mask)
    out = []
    for i in range(mask.shape[0]):
        n = int(mask[i].sum())
        out.append(TokenExplanation(
            prompt=rollout.prompts[i], completion=rollout.completions[i],
            tokens=_tokens(tokenizer, rollout.completion_ids[i], mask[i]),
            quantities={k: np.asarray(v)[i, :n].astype(np.float64) for k, v in quantities.items()},
            reward=None if rewards is None else float(rewards[i]),
            baseline=None if baselines is None else float(baselines[i])))
    return out


def explain(source, prompts=None, references=None, num_samples: int | None = None, seed: int = 0,
            greedy: bool = False, reference=None, max_new_tokens: int = 16) -> list:
    """Per-token credit of one rollout (see the module docstring); returns a list of :class:`TokenExplanation`.

    source: a trainer (REINFORCE, A2C, PPO, Q-learning), an :class:`~tf_rl_text.RLAgent`, or an export
    loaded with :func:`tf_rl_text.load`. prompts (and references): what to roll out; None with a trainer:
    its env's next batch (left for its next step). num_samples: completions per prompt (a trainer's
    ``num_samples_per_prompt`` by default). reference: the model to compare against (an agent's
    reference model, or an export for an export); a trainer uses its own frozen reference.
    max_new_tokens: completion length for an agent (a trainer uses its env's, an export its own).
    """
    from tf_rl_text.export import LoadedPolicy
    from tf_rl_text.trainers.base import Trainer

    if prompts is not None:
        prompts = check_prompts(prompts)
        if not prompts:
            raise ValueError("explain needs at least one prompt, got an empty list")
    if isinstance(source, LoadedPolicy):
        return _explain_export(source, prompts, reference, greedy, seed)
    if isinstance(source, Trainer):
        return _explain_trainer(source, prompts, references, num_samples, seed, greedy)
    if hasattr(source, "completion_logits"):  # an agent
        if prompts is None:
            raise ValueError("explain(agent) needs prompts (a trainer can use its env's next batch)")
        from tf_rl_text.env import TextGenerationEnv

        env = TextGenerationEnv(prompts, source.tokenizer, lambda c, p, r: [0.0] * len(c), references=references,
                                batch_size=len(prompts), max_new_tokens=max_new_tokens, shuffle=False,
                                agent=source)
        rollout = env.rollout(source, num_samples=num_samples or 1, greedy=greedy, seed=seed, prompts=prompts,
                              references=references)
        return _rows(source.tokenizer, rollout, token_scores(source, rollout_ids(rollout), reference, "kl"))
    raise TypeError(f"explain needs a trainer, an RLAgent or a loaded export, got {type(source).__name__}")


def _explain_trainer(trainer, prompts, references, num_samples, seed, greedy):
    """One rollout through the trainer's own source, scored by the trainer (:meth:`Trainer.token_credit`)."""
    rollouts = trainer.source.rollouts
    if rollouts is None:
        raise ValueError(f"this {trainer.algorithm} trainer learns from {type(trainer.source).__name__}, not from "
                         "completions it samples: explain(trainer.agent, prompts) shows its policy's tokens")
    field = trainer.group_size_field
    group = rollouts.num_samples
    k = num_samples or group
    if field is not None and k != group:  # the baseline compares a prompt's k samples
        raise ValueError(f"num_samples={num_samples}: this {trainer.algorithm} trainer's baseline compares "
                         f"{field}={group} samples of a prompt; leave num_samples unset")
    snap = _snapshot(trainer)
    try:
        if prompts is None:  # exactly what the next step() draws
            rollout = rollouts.rollout(num_samples=k)
        else:
            rollout = rollouts.rollout(num_samples=k, greedy=greedy, seed=seed, prompts=prompts, references=references)
        scored = trainer.token_credit(rollout)
        return _rows(trainer.agent.tokenizer, rollout, scored.tokens, rollout.rewards, scored.baseline)
    finally:
        _restore(trainer, snap)


def _explain_export(policy, prompts, reference, greedy, seed):
    if prompts is None:
        raise ValueError("explain(export) needs prompts")
    if reference is not None:
        mine, theirs = policy.metadata.get("tokenizer_sha256"), reference.metadata.get("tokenizer_sha256")
        if mine != theirs or len(policy.tokenizer) != len(reference.tokenizer):
            raise ValueError(f"the reference export {reference.path!r} has another tokenizer than {policy.path!r}; "
                             "compare exports of one run (e.g. its mle and rl exports)")
    ids, mask = policy._encode(prompts)
    ids, mask = tf.constant(ids), tf.constant(mask)
    if greedy:
        out = policy.module.generate(ids, mask)
    else:
        out = policy.module.signatures["sample"](input_ids=ids, attention_mask=mask,
                                                 seed=tf.constant([seed, 0], tf.int32),
                                                 **policy._sample_options({}))
    completion_ids, completion_mask = out["sequences"], out["completion_mask"]
    m = tf.cast(completion_mask, tf.float32)
    logp = policy.module.log_probs(ids, mask, completion_ids, completion_mask)["log_probs"] * m
    quantities = {"log_prob": logp}
    if reference is not None:
        ref = reference.module.log_probs(ids, mask, completion_ids, completion_mask)["log_probs"] * m
        quantities.update(ref_log_prob=ref, log_ratio=(logp - ref) * m, kl=ops.kl_penalty(logp, ref, m, "kl"))
    from tf_rl_text.tokens import ids_to_texts

    cids, cmask = completion_ids.numpy(), completion_mask.numpy()
    texts = ids_to_texts(policy.tokenizer, cids, cmask)
    rollout = type("R", (), {"completion_mask": cmask, "completion_ids": cids, "prompts": list(prompts),
                             "completions": texts})
    return _rows(policy.tokenizer, rollout, quantities)


def credit_text(prompt: str, seed: int = 0):
    """A function ``trainer -> markdown``: one sampled completion of ``prompt``, token by token, with every
    quantity of :func:`explain` (for ``TensorBoard(eval_text=credit_text("the movie was"))``)."""
    check_prompts([prompt])

    def table(trainer) -> str:
        row = explain(trainer, [prompt], seed=seed)[0]  # the first of its samples
        names = list(row.quantities)
        lines = [f"**{row.prompt}** -> {row.completion}" + ("" if row.reward is None else f" (reward {row.reward:+.3f})"),
                 "", "| token | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {t!r} | " + " | ".join(f"{row.quantities[n][i]:+.4f}" for n in names) + " |"
                  for i, t in enumerate(row.tokens)]
        return "\n".join(lines)

    return table


# --------------------------------------------------------------------------- views
def _check_quantity(rows, quantity):
    if not rows:
        raise ValueError("nothing to show: explain returned no sequences")
    have = sorted(rows[0].quantities)
    if quantity not in rows[0].quantities:
        raise ValueError(f"quantity {quantity!r} is not in this explanation; it has {have}")


def _colour(value, scale):
    """Blue for negative, red for positive, white at 0; |value| = scale is the strongest."""
    x = 0.0 if scale == 0 else max(-1.0, min(1.0, value / scale))
    strength = int(round(200 * abs(x)))
    r, g, b = (255, 255 - strength, 255 - strength) if x > 0 else (255 - strength, 255 - strength, 255)
    return f"rgb({r},{g},{b})"


def to_html(rows, quantity: str = "advantage", path: str | None = None, title: str = "tf_rl_text: per-token credit",
            top: int = 5) -> str:
    """An HTML page (inline CSS, no scripts): one line per sequence, one ``<span class="tok">`` per token
    coloured by ``quantity`` (red positive, blue negative; every quantity of the token in its tooltip),
    and, with a reference, the tokens whose probability moved most. Written to ``path`` when given."""
    _check_quantity(rows, quantity)
    scale = max([float(np.max(np.abs(r.quantities[quantity]))) for r in rows if len(r.tokens)] or [0.0])
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;margin:1.5em;max-width:70em} .seq{margin:.6em 0;line-height:1.9}"
             ".tok{padding:.1em .05em;border-radius:3px;white-space:pre} .prompt{color:#555}"
             ".meta{font-size:.8em;color:#666} table{border-collapse:collapse;font-size:.85em}"
             "td,th{border:1px solid #ccc;padding:.2em .5em}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>Colour: <b>{html.escape(quantity)}</b> ({html.escape(QUANTITIES.get(quantity, ''))}); red &gt; 0, "
             f"blue &lt; 0, full colour at |{scale:.4g}|. Hover a token for every quantity.</p>"]
    for r in rows:
        meta = []
        if r.reward is not None:
            meta.append(f"reward {r.reward:.4g}")
        if r.baseline is not None:
            meta.append(f"baseline {r.baseline:.4g}")
        spans = []
        for t, token in enumerate(r.tokens):
            tip = "; ".join(f"{k}={v[t]:.4g}" for k, v in r.quantities.items())
            spans.append(f"<span class='tok' style='background:{_colour(float(r.quantities[quantity][t]), scale)}' "
                         f"title='{html.escape(tip, quote=True)}'>{html.escape(token)}</span>")
        parts.append(f"<div class='seq'><span class='prompt'>{html.escape(r.prompt)}</span> {''.join(spans)}"
                     f"<div class='meta'>{html.escape(', '.join(meta))}</div></div>")
    moved = [(r.prompt, tok, v) for r in rows for tok, v in r.top_moved(top)]
    if moved:
        moved.sort(key=lambda x: -abs(x[2]))
        parts.append("<h2>Tokens whose probability moved most against the reference</h2><table>"
                     "<tr><th>prompt</th><th>token</th><th>log pi - log pi_ref</th></tr>")
        parts.extend(f"<tr><td>{html.escape(p)}</td><td>{html.escape(t)}</td><td>{v:+.3f}</td></tr>"
                     for p, t, v in moved[:top * 2])
        parts.append("</table>")
    parts.append("</body></html>")
    page = "\n".join(parts)
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
    return page


def to_png(rows, quantity: str = "advantage", path: str = "credit.png", max_rows: int = 16) -> str:
    """A heatmap (matplotlib): one row per sequence, one cell per token, coloured by ``quantity``."""
    _check_quantity(rows, quantity)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[:max_rows]
    width = max(len(r.tokens) for r in rows) or 1
    grid = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        grid[i, : len(r.tokens)] = r.quantities[quantity]
    scale = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    fig, ax = plt.subplots(figsize=(min(2 + 0.6 * width, 18), 1 + 0.45 * len(rows)))
    im = ax.imshow(grid, cmap="coolwarm", vmin=-scale or -1, vmax=scale or 1, aspect="auto")
    for i, r in enumerate(rows):
        for t, token in enumerate(r.tokens):
            ax.text(t, i, token.strip()[:8], ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [r.prompt[:30] for r in rows], fontsize=7)
    ax.set_xlabel("completion token")
    ax.set_title(f"{quantity}: {QUANTITIES.get(quantity, '')}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser():
    """The path of a Chromium-family browser on PATH (``$TF_RL_TEXT_BROWSER`` first), or None."""
    import shutil

    for name in (os.environ.get("TF_RL_TEXT_BROWSER"), *BROWSERS):
        path = name and (shutil.which(name) or (os.path.isfile(name) and name))
        if path:
            return path
    return None


def screenshot(html_path: str, png_path: str, width: int = 1000, height: int = 600, browser: str | None = None,
               timeout_s: float = 120) -> str:
    """Render the page at ``html_path`` in a headless Chromium and save a ``width`` x ``height`` PNG.

    ``browser``: the executable (default :func:`find_browser`). Runs offline: the page has no scripts and
    loads nothing from outside. Returns ``png_path``.
    """
    import subprocess

    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no headless browser found: install Chromium (e.g. apt-get install chromium) or "
                                "set TF_RL_TEXT_BROWSER to a Chrome/Chromium executable; the HTML page itself needs "
                                "no browser to be written")
    if not os.path.isfile(html_path):
        raise FileNotFoundError(f"no page at {html_path!r}; write one with explain.to_html(rows, quantity, path)")
    png_path = os.path.abspath(png_path)
    if os.path.exists(png_path):
        os.remove(png_path)  # so a stale file never passes for this page's picture
    cmd = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run", f"--screenshot={png_path}",
           f"--window-size={int(width)},{int(height)}", "file://" + os.path.abspath(html_path)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if not os.path.isfile(png_path):
        raise RuntimeError(f"{browser} wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return png_path


__all__ = ["explain", "credit_text", "to_html", "to_png", "screenshot", "find_browser", "TokenExplanation",
           "QUANTITIES"]
