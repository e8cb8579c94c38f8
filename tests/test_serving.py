"""Serving: tf_rl_text.load(path).generate under concurrent load returns exactly what it returns
single-threaded, with no errors and flat memory; nothing in the package unpickles or runs remote code."""
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import tf_rl_text
from conftest import REPO, make_tiny_model
from tf_rl_text import RLAgent

WORDS = "the movie was great and my day went really well but i did not enjoy the ending at all".split()


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_requests(n, distinct, seed=0):
    """``n`` requests drawn from ``distinct`` different ones: batches of 1-8 prompts of 1-25 words."""
    rng = random.Random(seed)
    pool = [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25))) for _ in range(rng.choice([1, 2, 3, 5, 8]))]
            for _ in range(distinct)]
    return [pool[i % distinct] for i in rng.sample(range(n), n)]


@pytest.fixture(scope="module")
def policy(tokenizer, tmp_path_factory):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    return tf_rl_text.load(tf_rl_text.export_policy(agent, str(tmp_path_factory.mktemp("serve") / "p"), max_new_tokens=6))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident memory is read from /proc")
def test_eight_threads_200_requests_match_single_threaded_greedy_with_flat_memory(policy):
    requests = make_requests(200, distinct=40)
    expected = {}
    for request in requests:  # single-threaded reference, one per distinct request
        key = tuple(request)
        if key not in expected:
            expected[key] = policy.generate(request)
    assert len(expected) == 40 and {len(r) for r in requests} == {1, 2, 3, 5, 8}
    errors, mismatches = [], []

    def serve(request):
        try:
            out = policy.generate(request)
            if out != expected[tuple(request)]:
                mismatches.append((request, out))
        except Exception as err:  # noqa: BLE001 - every error is a failure, counted below
            errors.append(repr(err))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(serve, requests[:20]))
        after_20 = rss_mb()
        list(pool.map(serve, requests[20:]))
    after_200 = rss_mb()
    assert errors == [] and mismatches == []
    assert after_200 <= 1.10 * after_20, f"resident memory grew from {after_20:.0f} MB to {after_200:.0f} MB"


def test_the_lock_covers_the_tokenizer_only_not_the_graph_call(policy, monkeypatch):
    """Two callers are inside the exported graph at the same time: requests do not queue behind one lock."""
    inside, peak, count_lock = [0], [0], threading.Lock()
    real = policy.module.generate

    def slow_generate(ids, mask):
        with count_lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.3)
        try:
            return real(ids, mask)
        finally:
            with count_lock:
                inside[0] -= 1

    monkeypatch.setattr(policy, "module", type("Module", (), {"generate": staticmethod(slow_generate)})())
    with ThreadPoolExecutor(max_workers=2) as pool:
        outs = list(pool.map(policy.generate, [["the movie"], ["my day"]]))
    assert peak[0] == 2 and [len(o) for o in outs] == [1, 1]


def test_nothing_in_the_package_unpickles_or_trusts_remote_code():
    """Weights load only from SavedModels, checkpoints, h5 or safetensors (docs/serving.md)."""
    banned = re.compile(r"\bimport pickle\b|\bpickle\.loads?\(|\bcPickle\b|\bdill\b|\bjoblib\.load\(|torch\.load\(|"
                        r"allow_pickle\s*=\s*True|trust_remote_code\s*=\s*True|\bfrom_pt\s*=\s*True|\bmarshal\.loads\(")
    hits = []
    for folder in ("tf_rl_text", "examples", "benchmarks"):
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        for number, line in enumerate(f, 1):
                            if banned.search(line):
                                hits.append(f"{os.path.relpath(root, REPO)}/{name}:{number}: {line.strip()}")
    assert hits == []
