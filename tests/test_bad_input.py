"""Bad input, case by case: each row raises the named exception type, and its message names the bad
value and what to do about it. docs/errors.md lists the same cases with their messages.

Reward rows run through ``trainer.step()`` and also check that nothing was trained (weights and
optimizer step counter as before). Export rows damage a copy of one tiny export. CLI rows
(``CLI_CASES``) run ``tf-rl-text``'s ``main``: exit status 2 and one line on stderr.
"""
import gzip
import math
import os
import shutil

import numpy as np
import pytest

import tf_rl_text
from conftest import make_tiny_model
from tf_rl_text import (A2CConfig, PPOConfig, QLearningConfig, ReinforceConfig, ReinforceTrainer, RLAgent,
                        TextGenerationEnv, data, metrics)
from tf_rl_text._compat import tf
from tf_rl_text.data import DataFormatError

PROMPTS = ["the movie was", "my day"]


def ones(completions, prompts, references):
    return [1.0] * len(completions)


class Ctx:
    """What the cases need, built once per module and on first use."""

    def __init__(self, tokenizer, tmp):
        self.tokenizer, self.tmp, self._cache = tokenizer, tmp, {}

    def _once(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def agent(self):
        return self._once("agent", lambda: RLAgent(make_tiny_model(self.tokenizer), self.tokenizer, seed=0))

    @property
    def export(self):
        """A complete tiny export (max_new_tokens=5, context 64)."""
        return self._once("export", lambda: tf_rl_text.export_policy(self.agent, str(self.tmp / "policy"), 5))

    @property
    def policy(self):
        return self._once("policy", lambda: tf_rl_text.load(self.export))

    def damaged_copy(self, name, damage):
        path = str(self.tmp / name)
        shutil.copytree(self.export, path)
        damage(path)
        return path

    def file(self, name, content: bytes):
        path = self.tmp / name
        path.write_bytes(content)
        return str(path)

    def env(self, **kwargs):
        args = dict(prompts=PROMPTS, tokenizer=self.tokenizer, reward_fn=ones, batch_size=2, max_new_tokens=3)
        args.update(kwargs)
        return TextGenerationEnv(**args)

    def no_pad_tokenizer(self):
        from tf_rl_text import default_tokenizer

        tok = default_tokenizer()
        tok.pad_token, tok.eos_token = None, None
        return tok


def truncate(relative, fraction=0.5):
    def damage(path):
        target = os.path.join(path, relative)
        with open(target, "r+b") as f:
            f.truncate(int(os.path.getsize(target) * fraction))
    return damage


def train_one_step_on(reward_fn):
    """A REINFORCE step whose reward function misbehaves: must raise, and must leave the weights alone."""
    def case(ctx):
        agent = ctx.agent
        trainer = ctx._once("trainer", lambda: ReinforceTrainer(agent, ctx.env(), ReinforceConfig(baseline="none")))
        before = [v.numpy().copy() for v in agent.model.variables]
        iterations = int(trainer.optimizer.iterations)
        trainer.env.reward_fn = reward_fn
        trainer.env.num_reward_batches = 0  # the shared env: each case is its first reward batch, in any test order
        try:
            trainer.step()
        finally:
            trainer.env.reward_fn = ones
            assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, agent.model.variables)), "weights changed"
            assert int(trainer.optimizer.iterations) == iterations and trainer.num_updates == 0
    return case


def raising_reward(completions, prompts, references):
    raise KeyError("label")


def foreign_savedmodel(ctx):
    module = tf.Module()
    module.v = tf.Variable(2.0)
    module.f = tf.function(lambda x: x * module.v, input_signature=[tf.TensorSpec([], tf.float32)])
    path = str(ctx.tmp / "foreign")
    tf.saved_model.save(module, path)
    return tf_rl_text.load(path)


def small_vocab_agent(ctx):
    from transformers import GPT2Config, TFGPT2LMHeadModel

    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=64, n_embd=16, n_layer=1, n_head=2))
    return RLAgent(model, ctx.tokenizer)


def run_folder_with_checkpoint(ctx, name, damage=None):
    """A run folder holding one checkpoint (step 0) of a REINFORCE trainer over a fresh tiny agent."""
    run_dir = str(ctx.tmp / name)
    agent = RLAgent(make_tiny_model(ctx.tokenizer, seed=1), ctx.tokenizer, seed=0)
    ReinforceTrainer(agent, ctx.env(), ReinforceConfig(baseline="none"), run_dir=run_dir).save_checkpoint()
    if damage is not None:
        damage(os.path.join(run_dir, "checkpoints"))
    return run_dir


def resume_into(model_kwargs=None, damage=None):
    def case(ctx):
        from tf_rl_text import default_model

        run_dir = run_folder_with_checkpoint(ctx, f"run{len(ctx._cache)}", damage)
        ctx._cache[run_dir] = True
        model = default_model(ctx.tokenizer, **(model_kwargs or dict(n_layer=1, n_embd=32, n_head=2)))
        agent = RLAgent(model, ctx.tokenizer, seed=0)
        return ReinforceTrainer(agent, ctx.env(), ReinforceConfig(baseline="none"), run_dir=run_dir)
    return case


def generate_with(**kwargs):
    def case(ctx):
        ids, mask = ctx.agent.encode_prompts(["the movie was"])
        return ctx.agent.generate(ids, mask, **{"max_new_tokens": 3, **kwargs})
    return case


# (id, case(ctx), exception type, substrings the message must hold: the bad value ..., what to do)
def _gym_of(env):
    from tf_rl_text.gymnasium_env import GymTextEnv

    return GymTextEnv(env)


def _gym(ctx, batch_size):
    gym_env = _gym_of(ctx.env(batch_size=batch_size))
    gym_env.reset(seed=0)
    return gym_env


CASES = [
    # ----------------------------------------------------------------- prompts
    ("env: empty prompt", lambda c: c.env(prompts=["ok", ""]),
     ValueError, ["prompts[1] is empty", "''", "drop it or fill it in"]),
    ("env: whitespace-only prompt", lambda c: c.env(prompts=["ok", " \t "]),
     ValueError, ["prompts[1] is empty or whitespace only", "' \\t '", "drop it or fill it in"]),
    ("env: non-string prompt", lambda c: c.env(prompts=["ok", 3]),
     ValueError, ["prompts[1] must be a string, got int: 3", "pass text"]),
    ("env: a single string", lambda c: c.env(prompts="the movie"),
     ValueError, ["got a single string", "wrap it in a list"]),
    ("env: no prompts", lambda c: c.env(prompts=[]), ValueError, ["prompts is empty", "at least one prompt"]),
    ("gym: GymTextEnv over a batch", lambda c: _gym(c, batch_size=2),
     ValueError, ["batch_size=1", "got batch_size=2", "GymTextVectorEnv"]),
    ("gym: a token id past the vocabulary", lambda c: _gym(c, batch_size=1).step(10**6),
     ValueError, ["action must be a token id in [0, ", "got 1000000"]),
    ("gym: wrapping something that is not a TextGenerationEnv", lambda c: _gym_of(object()),
     TypeError, ["wraps a TextGenerationEnv", "got object"]),
    ("load().generate: empty prompt", lambda c: c.policy.generate(["ok", ""]),
     ValueError, ["texts[1] is empty", "drop it or fill it in"]),
    ("load().generate: non-string prompt", lambda c: c.policy.generate([b"bytes"]),
     ValueError, ["texts[0] must be a string, got bytes", "pass text"]),
    ("load().generate: prompt longer than the context", lambda c: c.policy.generate(["word " * 80]),
     ValueError, ["texts[0]", "is 162 tokens", "max_new_tokens=5", "context of 64 tokens", "at most 59 tokens"]),
    ("env: prompt longer than the context", lambda c: c.env(prompts=["word " * 70]),
     ValueError, ["is 142 tokens", "context of 64 tokens", "Shorten the prompt or lower max_new_tokens"]),
    ("agent.generate: prompt + max_new_tokens past the context", generate_with(max_new_tokens=62),
     ValueError, ["prompt length 5 + max_new_tokens 62 = 67", "context of 64", "lower max_new_tokens"]),
    # ----------------------------------------------------------------- generation settings
    ("env: max_new_tokens = 0", lambda c: c.env(max_new_tokens=0), ValueError, ["got 0", "must be >= 1"]),
    ("env: max_new_tokens < 0", lambda c: c.env(max_new_tokens=-3), ValueError, ["got -3", "must be >= 1"]),
    ("env: max_new_tokens past the context", lambda c: c.env(max_new_tokens=64),
     ValueError, ["max_new_tokens=64", "context of 64 tokens", "lower max_new_tokens"]),
    ("agent.generate: max_new_tokens = 0", generate_with(max_new_tokens=0), ValueError, ["got 0", "must be >= 1"]),
    ("export: max_new_tokens = 0", lambda c: tf_rl_text.export_policy(c.agent, str(c.tmp / "zero"), 0),
     ValueError, ["got 0", "must be >= 1"]),
    ("RLAgent: temperature = 0", lambda c: RLAgent(c.agent.model, c.tokenizer, temperature=0),
     ValueError, ["got 0", "must be > 0"]),
    ("RLAgent: temperature < 0", lambda c: RLAgent(c.agent.model, c.tokenizer, temperature=-0.5),
     ValueError, ["got -0.5", "must be > 0"]),
    ("agent.generate: temperature = 0", generate_with(temperature=0.0),
     ValueError, ["got 0.0", "must be a finite number > 0", "use greedy decoding"]),
    ("RLAgent: top_k larger than the vocabulary", lambda c: RLAgent(c.agent.model, c.tokenizer, top_k=513),
     ValueError, ["top_k=513", "vocabulary of 512 tokens", "0 < top_k <= 512"]),
    ("agent.generate: top_k larger than the vocabulary", generate_with(top_k=1000),
     ValueError, ["got 1000", "integer in [0, 512]"]),
    ("RLAgent: negative top_k", lambda c: RLAgent(c.agent.model, c.tokenizer, top_k=-1),
     ValueError, ["got -1", "0 = no top-k filtering"]),
    # ----------------------------------------------------------------- reward functions (nothing trained)
    ("reward: wrong count", train_one_step_on(lambda c, p, r: [1.0]),
     ValueError, ["returned 1 rewards for 2 completions", "<lambda>", "batch 1", "exactly one number per completion"]),
    ("reward: NaN", train_one_step_on(lambda c, p, r: [1.0, math.nan]),
     ValueError, ["returned nan (not finite) for completion 1", "batch", "must be finite numbers"]),
    ("reward: Inf", train_one_step_on(lambda c, p, r: [math.inf, 1.0]),
     ValueError, ["returned inf (not finite) for completion 0", "batch", "must be finite numbers"]),
    ("reward: strings", train_one_step_on(lambda c, p, r: ["good", "bad"]),
     ValueError, ["must return numbers", "'good'", "batch"]),
    ("reward: None", train_one_step_on(lambda c, p, r: None), ValueError, ["must return numbers", "None", "batch"]),
    ("reward: raises", train_one_step_on(raising_reward),
     RuntimeError, ["reward_fn raising_reward raised KeyError", "'label'", "batch", "Nothing was trained",
                    "fix the reward function"]),
    # ----------------------------------------------------------------- tokenizers
    ("env: tokenizer without pad or EOS token", lambda c: c.env(tokenizer=c.no_pad_tokenizer()),
     ValueError, ["neither a pad token nor an EOS token", "set tokenizer.pad_token"]),
    ("RLAgent: tokenizer without pad or EOS token", lambda c: RLAgent(c.agent.model, c.no_pad_tokenizer()),
     ValueError, ["neither a pad token nor an EOS token", "set tokenizer.pad_token"]),
    ("RLAgent: tokenizer vocabulary larger than the model's", small_vocab_agent,
     ValueError, ["tokenizer has 512 tokens", "vocabulary has 256", "resize_token_embeddings(512)"]),
    # ----------------------------------------------------------------- names and rates
    ("unknown baseline", lambda c: ReinforceConfig(baseline="mean"), ValueError, ["got 'mean'", "must be one of"]),
    ("unknown KL estimator", lambda c: ReinforceConfig(kl_estimator="kl2"), ValueError, ["got 'kl2'", "must be one of"]),
    ("unknown metric", lambda c: metrics.score_texts(["a dog"], ["a dog"], metrics=["blue"]),
     ValueError, ["unknown metric 'blue'", "choose from"]),
    ("unknown Q-learning target", lambda c: QLearningConfig(target="double"), ValueError, ["got 'double'", "one of"]),
    ("REINFORCE: learning_rate = 0", lambda c: ReinforceConfig(learning_rate=0.0), ValueError, ["got 0.0", "must be > 0"]),
    ("REINFORCE: learning_rate < 0", lambda c: ReinforceConfig(learning_rate=-1e-3),
     ValueError, ["got -0.001", "must be > 0"]),
    ("REINFORCE: learning_rate NaN", lambda c: ReinforceConfig(learning_rate=math.nan), ValueError, ["got nan", "> 0"]),
    ("A2C: learning_rate = 0", lambda c: A2CConfig(learning_rate=0.0), ValueError, ["got 0.0", "must be > 0"]),
    ("PPO: learning_rate < 0", lambda c: PPOConfig(learning_rate=-1.0), ValueError, ["got -1.0", "must be > 0"]),
    ("Q-learning: learning_rate = 0", lambda c: QLearningConfig(learning_rate=0.0), ValueError, ["got 0.0", "> 0"]),
    # ----------------------------------------------------------------- data files
    ("jsonl: invalid UTF-8",
     lambda c: data.load_jsonl(c.file("bad.jsonl", b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')),
     DataFormatError, ["bad.jsonl, line 2: not valid UTF-8", "byte 0xe9", "re-save the file as UTF-8"]),
    ("csv.gz: invalid UTF-8",
     lambda c: data.load_csv(c.file("bad.csv.gz", gzip.compress(b"prompt\nok\nfine\n\xff\xfe\n"))),
     DataFormatError, ["bad.csv.gz, line 4: not valid UTF-8", "byte 0xff", "re-save the file as UTF-8"]),
    ("parallel: invalid UTF-8",
     lambda c: data.load_parallel(c.file("p.en", b"a\nb\n"), c.file("p.de", b"a\n\xc3(\n")),
     DataFormatError, ["p.de, line 2: not valid UTF-8", "re-save the file as UTF-8"]),
    ("jsonl: missing field",
     lambda c: data.load_jsonl(c.file("m.jsonl", b'{"prompt": "ok"}\n{"text": "x", "id": 2}\n')),
     DataFormatError, ["m.jsonl, line 2: field 'prompt' not found", "['id', 'text']", "prompt_field="]),
    ("jsonl: invalid JSON",
     lambda c: data.load_jsonl(c.file("j.jsonl", b'{"prompt": "ok"}\n{"prompt": "x",}\n')),
     DataFormatError, ["j.jsonl, line 2: invalid JSON", "one complete JSON object"]),
    ("csv: extra fields",
     lambda c: data.load_csv(c.file("x.csv", b"prompt,reference\na,b\nc,d,e\n"), reference_field="reference"),
     DataFormatError, ["x.csv, line 3: 3 fields but the header names 2 columns", "quote values"]),
    ("csv: missing field",
     lambda c: data.load_csv(c.file("s.csv", b"prompt,reference\na,b\nc\n"), reference_field="reference"),
     DataFormatError, ["s.csv, line 3: column 'reference' missing; the row has 1 field", "pass delimiter"]),
    ("parallel: files of different lengths",
     lambda c: data.load_parallel(c.file("a.en", b"1\n2\n3\n"), c.file("a.de", b"1\n2\n")),
     DataFormatError, ["a.en has 3 lines but", "a.de has 2", "ends after line 2", "remove or add the lines"]),
    ("data file that does not exist", lambda c: data.load_jsonl(str(c.tmp / "nope.jsonl")),
     FileNotFoundError, ["data file not found", "nope.jsonl", "check the path"]),
    # ----------------------------------------------------------------- exports
    ("load: path that does not exist", lambda c: tf_rl_text.load(str(c.tmp / "missing")),
     FileNotFoundError, ["missing' does not exist", "pass the folder"]),
    ("load: a file, not a folder", lambda c: tf_rl_text.load(c.file("notes.txt", b"hi")),
     NotADirectoryError, ["notes.txt' is a file", "pass the folder"]),
    ("load: a folder that is not a SavedModel", lambda c: tf_rl_text.load(str(c.tmp)),
     FileNotFoundError, ["is not a tf_rl_text SavedModel", "no saved_model.pb", "pass the folder"]),
    ("load: a SavedModel from another library", foreign_savedmodel,
     ValueError, ["foreign' is a SavedModel but not a tf_rl_text SavedModel", "tf.saved_model.load(path)"]),
    ("load: truncated saved_model.pb", lambda c: tf_rl_text.load(c.damaged_copy("t1", truncate("saved_model.pb"))),
     ValueError, ["t1' is a damaged tf_rl_text export", "does not load", "export it again"]),
    ("load: truncated variables",
     lambda c: tf_rl_text.load(c.damaged_copy("t2", truncate("variables/variables.data-00000-of-00001"))),
     ValueError, ["t2' is a damaged tf_rl_text export", "does not load", "export it again"]),
    ("load: missing variables",
     lambda c: tf_rl_text.load(c.damaged_copy("t3", lambda p: shutil.rmtree(os.path.join(p, "variables")))),
     ValueError, ["t3' is a damaged tf_rl_text export", "export it again"]),
    ("load: truncated metadata",
     lambda c: tf_rl_text.load(c.damaged_copy("t4", truncate("assets/tf_rl_text.json"))),
     ValueError, ["t4' is a damaged tf_rl_text export", "not valid JSON", "export it again"]),
    ("load: missing tokenizer",
     lambda c: tf_rl_text.load(c.damaged_copy("t5", lambda p: shutil.rmtree(os.path.join(p, "assets", "tokenizer")))),
     ValueError, ["t5' is a damaged tf_rl_text export", "tokenizer", "export it again"]),
    # ----------------------------------------------------------------- run folders and checkpoints
    ("trainer: run folder under a file",
     lambda c: ReinforceTrainer(c.agent, c.env(), run_dir=os.path.join(c.file("r.txt", b""), "run")),
     NotADirectoryError, ["cannot write the run folder", "r.txt' is a file, not a folder", "choose a path under a folder"]),
    ("trainer: a checkpoint from another config", resume_into(dict(n_layer=1, n_embd=16, n_head=2)),
     ValueError, ["no checkpoint in", "could be restored into this ReinforceTrainer", "a different model or config", "shape (1, 96)",
                  "use a new run_dir"]),
    ("trainer: a truncated checkpoint",
     resume_into(damage=truncate("ckpt-0.data-00000-of-00001")),
     ValueError, ["no checkpoint in", "could be restored", "damaged files", "use a new run_dir"]),
    ("trainer: a checkpoint whose index is damaged",
     resume_into(damage=truncate("ckpt-0.index", 0.3)),
     ValueError, ["no checkpoint in", "could be restored", "use a new run_dir"]),
    ("export: path under a file",
     lambda c: tf_rl_text.export_policy(c.agent, os.path.join(c.file("f.txt", b""), "policy"), 3),
     NotADirectoryError, ["f.txt' is a file, not a folder", "choose a path under a folder"]),
    ("export: a folder of other files",
     lambda c: tf_rl_text.export_policy(c.agent, os.path.dirname(c.file("notes.md", b"keep me")), 3),
     FileExistsError, ["holding other files", "an export replaces the whole folder", "pass a new or empty folder"]),
    ("export: path is a file", lambda c: tf_rl_text.export_policy(c.agent, c.file("g.txt", b""), 3),
     NotADirectoryError, ["g.txt': it is a file", "pass a folder path"]),
]


# ----------------------------------------------------------------- the command line (issue 14)
CLI_CONFIG = ("algorithm: reinforce\nmodel: {layers: 1, width: 32}\ndata: {source: prompts}\n"
              "reward: {name: sentiment}\nrun: {steps: 1, warm_start_steps: 0}\n")


def cli_config(ctx):
    return ctx._once("cli_config", lambda: ctx.file("cli.yaml", CLI_CONFIG.encode()))


def cli_run_folder_without_checkpoint(ctx):
    """A folder with a run's config.yaml but no checkpoints/ (a train that never reached a checkpoint)."""
    run_dir = ctx.tmp / "run_without_checkpoint"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "config.yaml").write_text(CLI_CONFIG)
    return str(run_dir)


# (id, argv(ctx), substrings of the one stderr line: the bad value ..., what to do). Each exits 2.
CLI_CASES = [
    ("cli train: unknown config field", lambda c: ["train", cli_config(c), "--set", "run.stepz=3"],
     ["unknown field run.stepz (value 3)", "cli.yaml", "did you mean run.steps?", "the fields of run are"]),
    ("cli train: wrong type", lambda c: ["train", cli_config(c), "--set", "trainer.learning_rate=fast"],
     ["cli.yaml", "trainer.learning_rate must be a number, got 'fast'"]),
    ("cli train: missing data file",
     lambda c: ["train", cli_config(c), "--set", "data.source=file", "--set", f"data.path={c.tmp / 'gone.jsonl'}"],
     ["data.path", "gone.jsonl' does not exist", "correct the path", "or create it"]),
    ("cli generate: a folder that is not an export", lambda c: ["generate", str(c.tmp), "the movie was"],
     ["is not a tf_rl_text SavedModel", "no saved_model.pb", "pass the folder that trainer.export(path)"]),
    ("cli generate: a file, not an export", lambda c: ["generate", cli_config(c), "the movie was"],
     ["export", "cli.yaml' is not a folder", "pass a SavedModel folder such as RUN_DIR/export"]),
    ("cli generate: a damaged export",
     lambda c: ["generate", c.damaged_copy("cli_t4", truncate("assets/tf_rl_text.json")), "the movie was"],
     ["cli_t4' is a damaged tf_rl_text export", "export it again"]),
    ("cli export: a run folder without checkpoint",
     lambda c: ["export", cli_run_folder_without_checkpoint(c), str(c.tmp / "never_written")],
     ["run_without_checkpoint' holds no checkpoint", "train it first with `tf-rl-text train CONFIG --run-dir"]),
    ("cli export: a folder that is not a run", lambda c: ["export", str(c.tmp / "missing_run"), str(c.tmp / "out")],
     ["missing_run' is not a run folder (no config.yaml)", "pass the --run-dir of `tf-rl-text train`"]),
    ("cli plot: a folder without metrics.jsonl", lambda c: ["plot", str(c.tmp)],
     ["has no metrics.jsonl", "pass the --run-dir of `tf-rl-text train`"]),
]


@pytest.fixture(scope="module")
def ctx(tokenizer, tmp_path_factory):
    return Ctx(tokenizer, tmp_path_factory.mktemp("bad_input"))


def test_the_table_holds_at_least_30_distinct_cases():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, case, error, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named_with_what_to_do(ctx, name, case, error, fragments):
    with pytest.raises(error) as info:
        case(ctx)
    assert type(info.value) is error, f"{name}: expected {error.__name__}, got {type(info.value).__name__}"
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{name}: {fragment!r} not in {message!r}"


@pytest.mark.parametrize("name, argv, fragments", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_exits_2_with_one_line_naming_value_and_fix(ctx, capsys, name, argv, fragments):
    """``tf-rl-text`` (its ``main``, in-process): exit status 2, nothing on stdout, exactly one line on
    stderr, no traceback, and that line names the bad value and the fix."""
    from tf_rl_text import cli

    args = argv(ctx)
    capsys.readouterr()
    rc = cli.main(args)  # an unexpected exception would propagate here (exit 1 with a traceback)
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", (name, rc, out)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, f"{name}: {err!r}"
    assert lines[0].startswith(f"tf-rl-text {args[0]}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{name}: {fragment!r} not in {lines[0]!r}"


def test_cli_exports_no_files_for_a_bad_run_folder(ctx):
    assert not os.path.exists(ctx.tmp / "never_written") and not os.path.exists(ctx.tmp / "out")


def test_docs_errors_md_lists_every_case():
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "errors.md"),
              encoding="utf-8") as f:
        listed = {line.split("|")[1].strip() for line in f if line.startswith("| ")}
    assert [name for name, *_ in CASES + CLI_CASES if name not in listed] == []
