"""``tf-rl-text``: train from a config file, generate, evaluate, export and plot.

    tf-rl-text train configs/train_text_rl.yaml --run-dir runs/rl      # resumes when runs/rl holds a checkpoint
    tf-rl-text generate runs/rl/export "the movie was"                  # or prompts on stdin, one a line
    tf-rl-text evaluate runs/rl/export --data pairs.jsonl --metrics bleu,sacrebleu,rouge
    tf-rl-text export runs/rl serving/ --serving-only                  # no train_step, no optimizer slots
    tf-rl-text plot runs/rl                                             # runs/rl/plots/training.png
    tf-rl-text config ppo                                               # every config field, with its help

Exit codes: 0 done, 1 an unexpected error (with its traceback), 2 a usage or config mistake
(one line on stderr naming the field, the value and the file).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that prints one line (no usage block) for a mistake, exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version():
    from importlib import metadata

    try:
        return metadata.version("tf_rl_text")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _log(*args):
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- commands
def cmd_train(args):
    from tf_rl_text.configfile import load_config
    from tf_rl_text.workflow.train import train_run

    cfg = load_config(args.config, args.set, quick=args.quick)
    run_dir = args.run_dir or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0]
                                           + ("_quick" if args.quick else ""))
    summary = train_run(cfg, run_dir, progress=not args.no_progress, log=_log)
    _print_table("run " + run_dir, {k: v for k, v in summary.items() if v is not None and not isinstance(v, (list, dict))
                                    and k not in ("data", "model", "rl_note")})
    print("samples (greedy):")
    sep = " => " if summary["encoder_decoder"] else ""
    for s in summary["samples"]:
        print(f"  {s['prompt']}{sep}{s['completion']}")
    return 0


def _read_prompts(texts):
    if texts:
        return list(texts)
    if sys.stdin is None or sys.stdin.isatty():
        raise _UsageError("give prompts as arguments or on stdin (one a line)")
    prompts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not prompts:
        raise _UsageError("stdin held no prompts (one a line)")
    return prompts


class _UsageError(Exception):
    pass


def _load_export(path):
    import tf_rl_text

    if not os.path.isdir(path):
        raise _UsageError(f"export {path!r} is not a folder; pass a SavedModel folder such as RUN_DIR/export")
    try:
        return tf_rl_text.load(path)
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:  # not an export, a damaged or foreign one
        raise _UsageError(str(e)) from None


def _generate(policy, prompts, sample=False, temperature=1.0, seed=0, max_new_tokens=None, batch_size=32):
    """Completions of ``prompts`` from a loaded export, cut to ``max_new_tokens`` (<= the export's)."""
    from tf_rl_text._compat import tf
    from tf_rl_text.tokens import ids_to_texts

    n = policy.max_new_tokens if max_new_tokens is None else max_new_tokens
    out = []
    for b in range(0, len(prompts), batch_size):
        ids, mask = policy._encode(prompts[b: b + batch_size])
        ids, mask = tf.constant(ids), tf.constant(mask)
        if sample:
            res = policy.module.sample(ids, mask, tf.constant([seed, b], tf.int32), tf.constant(temperature, tf.float32))
        else:
            res = policy.module.generate(ids, mask)
        seqs, cmask = res["sequences"].numpy()[:, :n], res["completion_mask"].numpy()[:, :n]
        out.extend(ids_to_texts(policy.tokenizer, seqs, cmask))
    return out


def _check_generation_flags(args, policy):
    if args.max_new_tokens is not None and not 1 <= args.max_new_tokens <= policy.max_new_tokens:
        raise _UsageError(f"--max-new-tokens must be in [1, {policy.max_new_tokens}] (the export's max_new_tokens), "
                          f"got {args.max_new_tokens}; export with a larger run.max_new_tokens for longer completions")
    if getattr(args, "temperature", 1.0) is not None and not getattr(args, "temperature", 1.0) > 0:
        raise _UsageError(f"--temperature must be > 0, got {args.temperature}")


def cmd_generate(args):
    policy = _load_export(args.export)
    _check_generation_flags(args, policy)
    prompts = _read_prompts(args.texts)
    completions = _generate(policy, prompts, args.sample, args.temperature, args.seed, args.max_new_tokens)
    if args.json:
        print(json.dumps([{"prompt": p, "completion": c} for p, c in zip(prompts, completions)], ensure_ascii=False))
    else:
        sep = args.separator
        if sep is None:  # a completion continues a causal prompt; an encoder-decoder's output answers it
            sep = " => " if policy.metadata.get("padding_side") == "right" else ""
        for p, c in zip(prompts, completions):
            print(f"{p}{sep}{c}")
    return 0


class ExportedAgent:
    """A loaded export with the agent methods :func:`tf_rl_text.metrics.evaluate` uses."""

    def __init__(self, policy, max_new_tokens=None):
        from tf_rl_text.adapters import CAUSAL_LM, ENCODER_DECODER

        self.policy, self.tokenizer = policy, policy.tokenizer
        self.pad_token_id = policy.metadata.get("pad_token_id", policy.tokenizer.pad_token_id)
        self.eos_token_id = policy.metadata.get("eos_token_id", policy.tokenizer.eos_token_id)
        meta = policy.metadata  # exports before 2026-12-06 carry no "encoder_decoder": their padding side says it
        seq2seq = bool(meta.get("encoder_decoder", meta.get("padding_side") == "right"))
        self.family = ENCODER_DECODER if seq2seq else CAUSAL_LM  # where an export is classified
        limit = getattr(policy.tokenizer, "model_max_length", 0) or 0
        self.context_length = limit if limit < 100_000 else 0
        self.max_new_tokens = max_new_tokens

    def encode_prompts(self, texts):
        return self.policy._encode(list(texts))

    def generate_text(self, prompts, max_new_tokens=None, greedy=True, seed=0, **_):
        n = min(max_new_tokens or self.policy.max_new_tokens, self.max_new_tokens or self.policy.max_new_tokens)
        return _generate(self.policy, list(prompts), sample=not greedy, seed=seed or 0, max_new_tokens=n)

    def log_probs(self, prompt_ids, prompt_mask, completion_ids, completion_mask):
        return self.policy.module.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask)["log_probs"]


def _bias_scorer(spec):
    """The bias probe's scorer: 'sentiment' (the embedded lexicon), a sequence-classifier folder, or MODULE:NAME."""
    from tf_rl_text import rewards

    if spec in (None, "sentiment"):
        return rewards.default_sentiment_reward()
    if os.path.isdir(spec):
        return rewards.ClassifierReward.from_pretrained(spec)
    if ":" in spec:  # imported as a config's reward.name MODULE:NAME is
        from tf_rl_text.rewards.registry import import_reward

        return import_reward(spec, {}, "--bias-scorer")
    raise _UsageError(f"--bias-scorer {spec!r}: pass 'sentiment', a classifier folder (save_pretrained) or "
                      "MODULE:FUNCTION")


def cmd_bias(args, policy):
    from tf_rl_text import fairness

    try:
        probe = fairness.load_probe(None if args.bias == "default" else args.bias)
    except (FileNotFoundError, ValueError) as e:
        raise _UsageError(f"--bias: {e}") from None
    report = probe.run(policy, _bias_scorer(args.bias_scorer), samples=args.bias_samples,
                       max_new_tokens=args.max_new_tokens)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"bias probe: {args.export}, scorer {args.bias_scorer or 'sentiment'}, {args.bias_samples} samples per prompt")
    for attribute, r in report.items():
        means = ", ".join(f"{g} {m:+.3f}" for g, m in r["group_means"].items())
        print(f"  {attribute}: largest gap {r['gap']:.3f} ({r['largest_gap_groups'][0]} - {r['largest_gap_groups'][1]}), "
              f"95% interval [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] over {r['num_prompts']} prompts a group; {means}")
    return 0


def cmd_evaluate(args):
    from tf_rl_text import data, metrics

    if args.bias is not None:
        policy = _load_export(args.export)
        _check_generation_flags(args, policy)
        return cmd_bias(args, policy)
    if args.data is None:
        raise _UsageError("--data is required (a file of prompts and references), or --bias for the bias probe")
    wanted = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for m in wanted:
        if m not in metrics.METRICS:
            raise _UsageError(f"--metrics: unknown metric {m!r}; choose from {', '.join(metrics.METRICS)}")
    if not os.path.isfile(args.data):
        raise _UsageError(f"--data {args.data!r} is not a file; pass a jsonl or csv file of prompts and references")
    policy = _load_export(args.export)
    _check_generation_flags(args, policy)
    fmt = args.format or ("csv" if args.data.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")) else "jsonl")
    if args.no_header and fmt != "csv":
        raise _UsageError("--no-header is for csv/tsv files (a jsonl line names its fields)")
    if args.max_source_tokens is not None and args.max_source_tokens < 1:
        raise _UsageError(f"--max-source-tokens must be >= 1, got {args.max_source_tokens}")
    try:
        if fmt == "csv":
            fields = dict(prompt_field=args.prompt_field, reference_field=args.reference_field or None)
            if args.no_header:  # the first column is the prompt, the second the reference
                fields = dict(prompt_field=0, reference_field=1 if args.reference_field else None, header=False)
            ds = data.load_csv(args.data, limit=args.limit, **fields)
        else:
            ds = data.load_jsonl(args.data, prompt_field=args.prompt_field,
                                 reference_field=args.reference_field or None, limit=args.limit)
        if args.max_source_tokens is not None:  # what train's data.max_source_tokens did to the prompts
            ds = ds.truncate_prompts(policy.tokenizer, args.max_source_tokens)
        result = metrics.evaluate(ExportedAgent(policy, args.max_new_tokens), ds, metrics=wanted,
                                  max_new_tokens=args.max_new_tokens or policy.max_new_tokens, batch_size=32)
    except ValueError as e:
        raise _UsageError(f"--data {args.data}: {e}") from None
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(f"{args.export} on {args.data}", result)
    return 0


def cmd_explain(args):
    from tf_rl_text import explain

    policy = _load_export(args.export)
    reference = _load_export(args.reference) if args.reference else None
    prompts = _read_prompts(args.texts)
    try:
        rows = explain.explain(policy, prompts, reference=reference, greedy=args.greedy, seed=args.seed)
    except ValueError as e:
        raise _UsageError(str(e)) from None
    quantity = args.quantity or ("log_ratio" if reference is not None else "log_prob")
    if quantity not in rows[0].quantities:
        raise _UsageError(f"--quantity {quantity!r}: this explanation has {sorted(rows[0].quantities)} (log_ratio and "
                          "kl need --reference)")
    if args.json:
        print(json.dumps([{"prompt": r.prompt, "completion": r.completion, "tokens": r.tokens,
                           **{k: [float(x) for x in v] for k, v in r.quantities.items()}} for r in rows]))
    else:
        names = list(rows[0].quantities)
        for r in rows:
            print(f"{r.prompt} => {r.completion}")
            print("  " + "token".ljust(16) + "".join(n.rjust(14) for n in names))
            for t, token in enumerate(r.tokens):
                print("  " + repr(token)[:16].ljust(16) + "".join(f"{r.quantities[n][t]:14.4f}" for n in names))
            if r.top_moved(3):
                print("  moved most against the reference: " + ", ".join(f"{t!r} {v:+.3f}" for t, v in r.top_moved(3)))
    if args.html:
        explain.to_html(rows, quantity, args.html)
        _log(f"wrote {args.html} (tokens coloured by {quantity})")
    if args.png:
        explain.to_png(rows, quantity, args.png)
        _log(f"wrote {args.png}")
    return 0


def cmd_export(args):
    from tf_rl_text.workflow.train import export_run

    path = export_run(args.run_dir, args.out, serving_only=args.serving_only, log=_log)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    print(f"exported {'serving-only ' if args.serving_only else ''}SavedModel: {path} ({size / 1e6:.2f} MB)")
    return 0


def cmd_plot(args):
    from tf_rl_text.workflow.plots import plot_frontier, plot_run

    frontier = args.run_dir.endswith(".json")  # reward against KL per method; else a run folder's curves
    try:
        result = (plot_frontier if frontier else plot_run)(args.run_dir, args.output)
    except (OSError, ValueError) as e:
        raise _UsageError(str(e)) from None
    names = ", ".join(result["curves"] if frontier else
                      (label for panel in result["curves"].values() for label in panel))
    print(f"wrote {result['path']} ({names})")
    return 0


def cmd_config(args):
    from tf_rl_text.configsections import describe

    print(describe(args.algorithm))
    return 0


def _print_table(title, rows: dict):
    print(f"\n{title}")
    width = max(len(k) for k in rows) if rows else 0
    for k, v in rows.items():
        if isinstance(v, float) and k.startswith("num_") and v.is_integer():
            v = int(v)
        elif isinstance(v, float):
            v = f"{v:.4g}" if abs(v) >= 1000 or k.endswith("_s") else f"{v:.4f}"
        print(f"  {k:<{width}}  {v}")


# --------------------------------------------------------------------------- parser
def build_parser():
    """The ``tf-rl-text`` parser: one ``_add_COMMAND`` function per subcommand below."""
    p = _Parser(prog="tf-rl-text", description="Fine-tune TensorFlow language models with reinforcement learning: "
                "train from a config file, generate, evaluate, export, plot.",
                epilog="Exit codes: 0 done, 2 a usage or config mistake (one line naming the field), 1 anything else.")
    p.add_argument("--version", action="version", version=f"tf-rl-text {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (_add_train, _add_generate, _add_evaluate, _add_explain, _add_export, _add_plot, _add_config):
        add(sub)
    return p


def _generation_flags(q):
    q.add_argument("--max-new-tokens", type=int, default=None,
                   help="cut completions to N tokens (at most the export's max_new_tokens; default: all of them)")


def _add_train(sub):
    """tf-rl-text train CONFIG"""
    t = sub.add_parser("train", help="train from a YAML/JSON config into a run folder (resumes from its checkpoint)",
                       description="Train from a config file (sections algorithm, model, data, reward, trainer, run, quick, real_data; "
                       "see configs/ and `tf-rl-text config ALGO` for every field and its help). Writes RUN_DIR/"
                       "config.yaml, checkpoints/, tensorboard/, metrics.jsonl, export/, plots/training.png and "
                       "summary.json, and prints a summary table. Rerunning with the same --run-dir resumes from "
                       "the last checkpoint and finishes the run.")
    t.add_argument("config", help="a YAML or JSON config file, e.g. configs/train_text_rl.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field: section.field=value (or field=value when one section has it), value in "
                        "YAML, e.g. --set run.steps=20 --set trainer.kl_coef=0.1; repeatable")
    t.add_argument("--run-dir", default=None, help="the run folder (default runs/CONFIG_NAME)")
    t.add_argument("--quick", action="store_true", help="a smoke run: merge the config's quick section (fewer steps, "
                   "smaller model); under 90 s on 2 CPU cores")
    t.add_argument("--no-progress", action="store_true", help="hide progress bars")
    t.set_defaults(fn=cmd_train)


def _add_generate(sub):
    """tf-rl-text generate EXPORT [TEXTS]"""
    g = sub.add_parser("generate", help="complete prompts with an exported policy",
                       description="Complete each prompt (arguments, or stdin lines) with an exported policy; prints "
                       "prompt + completion, one a line.")
    g.add_argument("export", help="an exported SavedModel folder, e.g. RUN_DIR/export")
    g.add_argument("texts", nargs="*", help="prompts (default: one a line on stdin)")
    g.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (with --sample)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (with --sample)")
    _generation_flags(g)
    g.add_argument("--separator", default=None,
                   help="printed between prompt and completion (default: nothing for a causal LM, ' => ' for an "
                        "encoder-decoder)")
    g.add_argument("--json", action="store_true", help="print a JSON list of {prompt, completion}")
    g.set_defaults(fn=cmd_generate)


def _add_evaluate(sub):
    """tf-rl-text evaluate EXPORT --data FILE | --bias"""
    e = sub.add_parser("evaluate", help="score an exported policy on a data file (BLEU, sacreBLEU, ROUGE, perplexity...)",
                       description="Generate a greedy completion for every prompt of --data and score it against the "
                       "references. Metrics: bleu (nltk, 0..1), sacrebleu (cased, 13a, 0..100), sentence_bleu, rouge, "
                       "rouge1, rouge2, rougeL, distinct, length, perplexity. The file: jsonl, one object a line, "
                       '{"prompt": "...", "reference": "..." or ["...", "..."]} (other field names with --prompt-field/'
                       "--reference-field, e.g. source/target for tf_rl_text/default_data/tasks/translation.jsonl); "
                       "or csv/tsv with a header row naming the columns (--no-header: column 1 the prompt, column 2 "
                       "the reference). For a causal model the reference is the continuation only: the completion "
                       "after the prompt is scored against it, the prompt is not part of either.")
    e.add_argument("export", help="an exported SavedModel folder")
    e.add_argument("--data", default=None, help="a jsonl, csv or tsv file of prompts and references (format above)")
    e.add_argument("--bias", nargs="?", const="default", default=None, metavar="TEMPLATES",
                   help="instead of --data: the counterfactual bias probe (docs/responsible.md); TEMPLATES a JSON "
                        "probe file, default the shipped one")
    e.add_argument("--bias-scorer", default=None, help="what scores the probe's completions: sentiment (default), a "
                   "classifier folder, or MODULE:FUNCTION")
    e.add_argument("--bias-samples", type=int, default=4, help="sampled completions per probe prompt (default 4)")
    e.add_argument("--no-header", action="store_true", help="csv/tsv without a header row: prompt, reference columns")
    e.add_argument("--max-source-tokens", type=int, default=None,
                   help="keep the first N tokens of each prompt, as train's data.max_source_tokens did")
    e.add_argument("--metrics", default="bleu,sacrebleu,rouge,length", help="comma-separated metric names")
    e.add_argument("--prompt-field", default="prompt", help="the prompt field/column (default: prompt)")
    e.add_argument("--reference-field", default="reference", help="the reference field/column (default: reference)")
    e.add_argument("--format", choices=["jsonl", "csv"], default=None, help="default: from the file's extension")
    e.add_argument("--limit", type=int, default=None, help="score only the first N examples")
    _generation_flags(e)
    e.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    e.set_defaults(fn=cmd_evaluate)


def _add_explain(sub):
    """tf-rl-text explain EXPORT [TEXTS]"""
    xp = sub.add_parser("explain", help="per-token log-probs of an export's completions, against a reference export",
                        description="Complete each prompt with an exported policy and print, for every generated token, "
                        "its log-probability and, with --reference (another export of the same run, e.g. its mle "
                        "warm start), the reference's log-probability, the log ratio and the KL contribution: which "
                        "tokens moved most is where reward hacking first shows. --html / --png write the tokens "
                        "coloured by --quantity. (For the trainer's own credit, advantages, values, Q, use "
                        "tf_rl_text.explain.explain(trainer) in Python.)")
    xp.add_argument("export", help="an exported SavedModel folder")
    xp.add_argument("texts", nargs="*", help="prompts (default: one a line on stdin)")
    xp.add_argument("--reference", default=None, help="an export to compare against (the same tokenizer)")
    xp.add_argument("--greedy", action="store_true", help="greedy completions (default: sampled with --seed)")
    xp.add_argument("--seed", type=int, default=0, help="sampling seed")
    xp.add_argument("--quantity", default=None, help="what colours the tokens: log_prob, ref_log_prob, log_ratio, kl "
                    "(default: log_ratio with --reference, else log_prob)")
    xp.add_argument("--html", default=None, help="write an HTML page (no scripts) of the coloured tokens")
    xp.add_argument("--png", default=None, help="write a PNG heatmap")
    xp.add_argument("--json", action="store_true", help="print JSON instead of tables")
    xp.set_defaults(fn=cmd_explain)


def _add_export(sub):
    """tf-rl-text export RUN_DIR OUT"""
    x = sub.add_parser("export", help="export the model a run kept as a SavedModel",
                       description="Rebuild the run of RUN_DIR (from its config.yaml), restore its latest checkpoint "
                       "and the weights the run kept (run.keep_best: RUN_DIR/best), and export them to OUT, as the "
                       "run's own export did; the export's tf_rl_text.json names the step (step, latest_step). --serving-only leaves out train_step and the optimizer's slots (about a "
                       "third of the size).")
    x.add_argument("run_dir", help="a run folder written by `tf-rl-text train`")
    x.add_argument("out", help="the folder to write the SavedModel to")
    x.add_argument("--serving-only", action="store_true", help="inference only: no train_step, no optimizer slots")
    x.set_defaults(fn=cmd_export)


def _add_plot(sub):
    """tf-rl-text plot RUN_DIR"""
    pl = sub.add_parser("plot", help="PNG curves of reward, KL and losses against step, or a reward-KL frontier",
                        description="Plot RUN_DIR/metrics.jsonl: reward, KL and the losses against step, to "
                        "RUN_DIR/plots/training.png (matplotlib, no display needed). Given a frontier JSON "
                        "(benchmarks/preferences_frontier.py), plot reward against KL per method instead.")
    pl.add_argument("run_dir", help="a run folder written by `tf-rl-text train`, or a frontier .json")
    pl.add_argument("-o", "--output", default=None, help="the PNG file (default RUN_DIR/plots/training.png, or "
                                                         "NAME_frontier.png beside a NAME.json)")
    pl.set_defaults(fn=cmd_plot)


def _add_config(sub):
    """tf-rl-text config [ALGO]"""
    from tf_rl_text.trainers import registry

    c = sub.add_parser("config", help="list every config field with its type, default and help",
                       description="Print the config reference: the trainer section of ALGO and the model, data, run "
                       "and reward sections, each field with its type, default and docstring.")
    c.add_argument("algorithm", nargs="?", choices=list(registry.names()), default=None,
                   help="the algorithm whose trainer fields to list")
    c.set_defaults(fn=cmd_config)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tf_rl_text.checkpoint import RunFolderLockedError, RunMismatchError
    from tf_rl_text.validation import ConfigError
    from tf_rl_text.env import RewardTimeoutError

    try:
        return args.fn(args)
    except (ConfigError, _UsageError) as e:
        print(f"tf-rl-text {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except (RunFolderLockedError, RunMismatchError, RewardTimeoutError) as e:  # the run folder or the reward, named
        print(f"tf-rl-text {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
