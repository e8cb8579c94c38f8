"""The outer training loop every trainer shares: ``num_steps`` calls of ``step()`` with a progress bar."""
from __future__ import annotations


def run_steps(step, num_steps, desc, unit="step", postfix=None, progress=True, callback=None) -> list[dict]:
    """Call ``step()`` ``num_steps`` times; show ``postfix(stats)`` on a tqdm bar; return the stats.

    ``callback(stats)`` runs after each step when given.
    """
    if int(num_steps) != num_steps or num_steps < 0:
        raise ValueError(f"num_steps must be an integer >= 0, got {num_steps}")
    from tqdm.auto import tqdm

    bar = tqdm(range(int(num_steps)), desc=desc, disable=not progress, unit=unit)
    out = []
    for _ in bar:
        stats = step()
        out.append(stats)
        if postfix is not None:
            bar.set_postfix(**postfix(stats))
        if callback is not None:
            callback(stats)
    return out
