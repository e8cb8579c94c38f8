"""The package's import graph, read with ``ast`` (module-level imports and those inside functions alike):
no import cycle. A cycle anywhere fails here, naming its files."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "tf_rl_text")
KNOWN_CYCLES = []  # none left: agent <-> choice went when the two policies became siblings on policy.PolicyBase


def modules():
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def import_graph(exempt_root=True):
    """module -> set of package modules it imports anywhere in its code (TYPE_CHECKING blocks included).

    ``exempt_root=False``: ``import tf_rl_text`` and ``from tf_rl_text import Name`` (a name of the package
    root, not a submodule) count as imports of the root ``tf_rl_text/__init__.py``, which imports nearly
    everything; ``from tf_rl_text import ops`` counts as an import of ``tf_rl_text.ops`` only."""
    mods = modules()
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.endswith("__init__.py") else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                names = [base] + subs if exempt_root or len(subs) < len(node.names) else subs
            for name in names:
                if name in mods and name != mod and not (exempt_root and name == "tf_rl_text"
                                                         and mod.startswith("tf_rl_text")):
                    graph[mod].add(name)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "tf_rl_text.trainers.base" in graph["tf_rl_text.trainers.grpo"]  # it reads imports
    found = cycles(graph)
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"{gone} is no longer a cycle: take it off KNOWN_CYCLES"


def test_no_module_below_the_package_root_imports_it():
    """The root ``tf_rl_text/__init__.py`` imports nearly every module for the public names, so a module it
    imports that imports the root back (``import tf_rl_text; tf_rl_text.load(...)``, even inside a function)
    is an import running back up: a cycle once the root counts. Only entry points above it (cli.py,
    workflow/, scripts.py) may import the root."""
    graph = import_graph(exempt_root=False)
    assert "tf_rl_text" in graph["tf_rl_text.cli"] and "tf_rl_text" in graph["tf_rl_text.workflow.train"]
    assert "tf_rl_text.ops" in graph["tf_rl_text.trainers.grpo"] and "tf_rl_text" not in graph["tf_rl_text.trainers.grpo"]
    found = cycles(graph)
    assert not found, f"modules that import the package root while it imports them: {[sorted(c) for c in found]}"


def test_the_cycle_finder_finds_a_cycle_through_an_in_function_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [{"a", "b", "c"}]
    source = "def f():\n    from tf_rl_text import export\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "tf_rl_text" for n in ast.walk(tree))


def test_the_public_api_is_the_agent_the_env_and_each_algorithm_and_moved_names_say_where_they_went():
    """The rule: the top level holds the agent and the env, the embedded default model and tokenizer, the
    Trainer base, every registered algorithm's trainer and config, the choice trainers (library-only: not in
    the registry) with their config, the warm start, export and load; nothing else. Each name is declared in
    the __all__ of the module that defines it."""
    import tf_rl_text
    from tf_rl_text.trainers import registry

    core = {"RLAgent", "TextGenerationEnv", "default_model", "default_tokenizer", "Trainer", "warm_start",
            "export_policy", "load"}
    algorithms = {cls.__name__ for pair in registry.ALGORITHMS.values() for cls in pair}
    choice = {"ChoiceReinforceTrainer", "ChoiceQLearningTrainer", "ChoiceQConfig"}
    assert set(tf_rl_text.__all__) == core | algorithms | choice, set(tf_rl_text.__all__) ^ (core | algorithms | choice)
    assert len(tf_rl_text.__all__) == len(set(tf_rl_text.__all__))
    for name in tf_rl_text.__all__:
        obj = getattr(tf_rl_text, name)
        owner = __import__(obj.__module__, fromlist=[name])
        assert name in owner.__all__ and getattr(owner, name) is obj, (name, obj.__module__)  # declared where defined
    for name, module in tf_rl_text.MOVED.items():  # gone from the top level in 0.1.0: the error names the import
        assert name not in tf_rl_text.__all__ and name in __import__(module, fromlist=[name]).__all__
        try:
            getattr(tf_rl_text, name)
        except AttributeError as e:
            assert f"from {module} import {name}" in str(e)
        else:
            raise AssertionError(f"tf_rl_text.{name} must raise AttributeError")
    assert tf_rl_text.fairness.__name__ == "tf_rl_text.fairness"  # a submodule not imported yet loads on access
    try:
        tf_rl_text.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_every_update_runs_through_the_one_update_runner_and_modules_stay_small():
    """apply_clipped (clip + apply) is called only by the update runner, update.py, which
    holds the one chunk and replica loop; no module of the package is far over 450 lines."""
    callers, sizes = set(), {}
    for mod, path in modules().items():
        source = open(path, encoding="utf-8").read()
        sizes[mod] = source.count("\n")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in ("apply_clipped", "chunk_bounds"):
                    callers.add(mod)
    assert callers == {"tf_rl_text.update"}, callers
    too_big = {m: n for m, n in sizes.items() if n > 500}
    assert not too_big, too_big


def test_one_families_table_feeds_autograph_lora_recompute_and_the_generation_cache():
    from tf_rl_text import generation, lora, models, recompute
    from tf_rl_text.families import FAMILIES, KINDS, tokens_needed

    assert all(f.kind in KINDS for f in FAMILIES.values())
    keras_hub = {name for name, f in FAMILIES.items() if f.keras_hub}
    assert keras_hub == {"keras_hub_gpt2", "keras_hub_llama", "keras_hub_mistral", "keras_hub_qwen"}
    assert models.PLAIN_GRAPH_MODEL_TYPES == {"gpt2", "t5", "mistral"} | keras_hub
    assert generation.STATIC_CACHE_MODEL_TYPES == {"xglm"}
    assert set(recompute.BLOCKS) == {"gpt2", "gptj", "mistral", "opt"}
    assert lora.DEFAULT_TARGETS["gpt2"] == ("c_attn",) and lora.DEFAULT_TARGETS["t5"] == ("q", "v")
    assert lora.DEFAULT_TARGETS["bert"] == ("query", "value") and set(lora.DEFAULT_TARGETS) == {
        name for name, f in FAMILIES.items() if f.lora_targets}
    # a causal LM holds prompt and completion in one context; an encoder-decoder keeps them apart
    assert tokens_needed(False, 10, 6) == 16 and tokens_needed(True, 10, 6) == 10 and tokens_needed(True, 3, 6) == 6


def test_the_agent_and_the_decode_loop_leave_family_differences_to_the_adapters():
    """No branch on an agent's ``.is_encoder_decoder`` in agent.py or generation.py: the family adapter
    (tf_rl_text/adapters.py) does what differs."""
    for name in ("tf_rl_text.agent", "tf_rl_text.generation"):
        tree = ast.parse(open(modules()[name], encoding="utf-8").read())
        branches = [node.lineno for node in ast.walk(tree) if isinstance(node, (ast.If, ast.IfExp))
                    and any(isinstance(n, ast.Attribute) and n.attr == "is_encoder_decoder"
                            for n in ast.walk(node.test))]
        assert not branches, (name, branches)


def test_only_the_adapters_read_is_encoder_decoder():
    """Family differences live in the adapters: outside them (and where a model is first classified) no module
    reads ``.is_encoder_decoder`` (attribute or ``getattr`` string). ``RLAgent`` still sets it for users."""
    allowed = {"tf_rl_text.adapters", "tf_rl_text.families",
               "tf_rl_text.workflow.build"}  # picks TFAutoModelForSeq2SeqLM or ForCausalLM from a config
    readers = {}
    for name, path in modules().items():
        if name in allowed:
            continue
        tree = ast.parse(open(path, encoding="utf-8").read())
        lines = [n.lineno for n in ast.walk(tree)
                 if (isinstance(n, ast.Attribute) and n.attr == "is_encoder_decoder" and isinstance(n.ctx, ast.Load))
                 or (isinstance(n, ast.Constant) and n.value == "is_encoder_decoder")]
        if lines:
            readers[name] = lines
    assert not readers, readers


# --------------------------------------------------------------------------- floors
DOC = os.path.join(REPO, "docs", "architecture.md")


def floors() -> dict:
    """Each room's floor from the imports: a top-level module (``env.py``) or a package folder (``trainers/``,
    its modules' imports together) is one above the highest room it imports; one that imports none is on 1."""
    mods, graph = modules(), import_graph(exempt_root=False)

    def room(mod):
        rel = os.path.relpath(mods[mod], PACKAGE)
        return rel.split(os.sep)[0] + "/" if os.sep in rel else rel

    rooms = {}
    for mod, deps in graph.items():
        rooms.setdefault(room(mod), set()).update(room(d) for d in deps if room(d) != room(mod))
    out = {}

    def floor(r, path=()):
        if r not in out:
            assert r not in path, f"a cycle between rooms: {path + (r,)}"
            out[r] = 1 + max((floor(d, path + (r,)) for d in rooms[r]), default=0)
        return out[r]

    for r in rooms:
        floor(r)
    return out


def documented_floors() -> dict:
    """{room: floor} of the floor table in docs/architecture.md (its rows: | floor | `a.py`, `b/` | ... |)."""
    import re

    text = open(DOC, encoding="utf-8").read()
    table = text[text.index("| floor | modules |"):]
    out = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`([^`]+)`", cells[1]):
            out[name] = int(cells[0])
    return out


def test_the_floor_table_of_the_architecture_page_is_the_codes():
    code, doc = floors(), documented_floors()
    wrong = {r: (f"doc {doc.get(r)}", f"code {code.get(r)}") for r in set(code) | set(doc) if doc.get(r) != code.get(r)}
    assert not wrong, f"docs/architecture.md's floor table differs from the imports: {wrong}"


def test_no_function_of_the_package_is_over_80_lines():
    long = {}
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long[f"{mod}.{node.name}"] = node.end_lineno - node.lineno + 1
    assert not long, long


# --------------------------------------------------------------------------- a toy algorithm, as the page builds it
def test_the_architecture_pages_toy_algorithm_is_score_and_optimize_and_one_registry_line(tmp_path):
    """The first Python block of "Adding an algorithm" in docs/architecture.md, run here as printed: the trainer
    defines score and optimize (and its gradient), nothing of the loop; a run folder resumes it with no call of
    its own; the registry line makes it a config's algorithm."""
    import re

    import numpy as np

    from tf_rl_text import RLAgent, TextGenerationEnv, default_model, default_tokenizer
    from tf_rl_text.configfile import load_config
    from tf_rl_text.trainers import registry

    text = open(DOC, encoding="utf-8").read()
    section = text[text.index("## Adding an algorithm"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "_auto_resume" not in code and "def _step" not in code
    saved = dict(registry.ALGORITHMS)
    namespace = {"__name__": "toy_algorithm"}
    try:
        exec(compile(code, DOC, "exec"), namespace)  # noqa: S102
        cls = namespace["MeanBaselineTrainer"]
        assert registry.trainer_class("mean_baseline") is cls
        assert {"score", "optimize"} <= set(vars(cls)) and not {"_step", "step", "train"} & set(vars(cls))
        config_file = tmp_path / "toy.yaml"
        config_file.write_text("algorithm: mean_baseline\ntrainer: {learning_rate: 0.03, num_samples_per_prompt: 2}\n")
        cfg = load_config(str(config_file))
        assert isinstance(cfg.trainer, namespace["MeanBaselineConfig"]) and cfg.trainer.num_samples_per_prompt == 2

        tokenizer = default_tokenizer()

        def build(run_dir):
            agent = RLAgent(default_model(tokenizer, n_layer=1, n_embd=32, n_head=2), tokenizer, seed=0)
            env = TextGenerationEnv(["the movie was", "my day"], tokenizer, lambda c, p, r: [len(x) / 10 for x in c],
                                    batch_size=2, max_new_tokens=4, seed=0)
            return cls(agent, env, cfg.trainer, run_dir=run_dir, checkpoint_every=1)

        straight = build(None)
        straight.train(3, progress=False)
        first = build(str(tmp_path / "run"))
        first.train(2, progress=False)
        resumed = build(str(tmp_path / "run"))  # restored at construction: no call in the class
        assert resumed.global_step == 2 and resumed.restored_from is not None
        resumed.train(3, progress=False)
        for a, b in zip(straight.agent.trainable_variables, resumed.agent.trainable_variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)  # the straight run's weights
        assert [h["reward_mean"] for h in resumed.history] == [h["reward_mean"] for h in straight.history]
    finally:
        registry.ALGORITHMS.clear()
        registry.ALGORITHMS.update(saved)


def test_registering_an_algorithm_refuses_what_would_not_run():
    import pytest

    from tf_rl_text import PPOConfig, ReinforceConfig, ReinforceTrainer
    from tf_rl_text.trainers import registry

    with pytest.raises(ValueError, match="'reinforce' is already registered as ReinforceTrainer; pick another name"):
        registry.register("reinforce", ReinforceTrainer, PPOConfig)
    with pytest.raises(TypeError, match="trainer_class must be a Trainer subclass"):
        registry.register("mine", object, ReinforceConfig)
    with pytest.raises(ValueError, match="ReinforceTrainer.config_class is ReinforceConfig, not PPOConfig"):
        registry.register("mine", ReinforceTrainer, PPOConfig)
    with pytest.raises(ValueError, match="must be a Python identifier"):
        registry.register("my algo", ReinforceTrainer, ReinforceConfig)
    registry.register("reinforce", ReinforceTrainer, ReinforceConfig)  # the same entry again: nothing changes
    assert "mine" not in registry.names() and registry.trainer_class("reinforce") is ReinforceTrainer
