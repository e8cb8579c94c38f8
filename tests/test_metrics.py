"""metrics.py and the BLEU / ROUGE rewards: hand-computed values on real sentences, perplexity of a
uniform model equals the vocabulary size, distinct-n by hand, and evaluate() end to end."""
import gzip
import json
import math
import os

import numpy as np
import pytest
from nltk.translate import bleu_score
from rouge_score import rouge_scorer

from conftest import SHARED_DATA, make_tiny_model
from tf_rl_text import RLAgent, TextGenerationEnv, metrics
from tf_rl_text.adapters import ENCODER_DECODER
from tf_rl_text.data import PromptDataset, load_summarization, load_translation
from tf_rl_text.rewards import BleuReward, RougeReward, bleu_reward, rouge_l_reward

needs_shared_data = pytest.mark.skipif(
    not os.path.isdir(SHARED_DATA), reason=f"shared real data folder {SHARED_DATA} is absent"
)

# The few real sentences the hand checks below use, kept here so the checks never skip: Multi30k's
# validation lines 0-4 (English and German) and the 3 reference summaries of SciTLDR's first dev paper.
# test_the_hand_checked_sentences_are_the_real_data_lines checks them against /work/shared/data.
MULTI30K_VAL_EN = ["A group of men are loading cotton onto a truck",
                   "A man sleeping in a green room on a couch.",
                   "A boy wearing headphones sits on a woman's shoulders.",
                   "Two men setting up a blue ice fishing hut on an iced over lake",
                   "A balding man wearing a red life jacket is sitting in a small boat."]
MULTI30K_VAL_DE = ["Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen",
                   "Ein Mann schläft in einem grünen Raum auf einem Sofa.",
                   "Ein Junge mit Kopfhörern sitzt auf den Schultern einer Frau.",
                   "Zwei Männer bauen eine blaue Eisfischerhütte auf einem zugefrorenen See auf",
                   "Ein Mann mit beginnender Glatze, der eine rote Rettungsweste trägt, sitzt in einem kleinen Boot."]
SCITLDR_DEV_0_TARGETS = [
    "We devise adaptive loss scaling to improve mixed precision training that surpass the state-of-the-art results.",
    "Proposal for an adaptive loss scaling method during backpropagation for mix precision training where scale rate "
    "is decided automatically to reduce the underflow.",
    "The authors propose a method to train models in FP16 precision that adopts a more elaborate way to minimize "
    "underflow in every layer simultaneously and automatically."]


@pytest.fixture(scope="module")
def real():
    return {"en0": MULTI30K_VAL_EN[0], "en1": MULTI30K_VAL_EN[1], "de1": MULTI30K_VAL_DE[1]}


@needs_shared_data
def test_the_hand_checked_sentences_are_the_real_data_lines():
    for lang, lines in (("en", MULTI30K_VAL_EN), ("de", MULTI30K_VAL_DE)):
        with gzip.open(os.path.join(SHARED_DATA, "multi30k", f"val.{lang}.gz"), "rt", encoding="utf-8") as f:
            assert f.read().splitlines()[:5] == lines
    assert load_summarization(split="dev", limit=1, data_dir=SHARED_DATA).references[0] == SCITLDR_DEV_0_TARGETS


# --------------------------------------------------------------------------- tokenization, BLEU
def test_tokenize_lowercases_and_splits_punctuation():
    assert metrics.tokenize("A dog, running.") == ["a", "dog", ",", "running", "."]
    assert metrics.tokenize("Männern lädt's") == ["männern", "lädt", "'", "s"]


def test_sentence_bleu_by_hand_on_multi30k(real):
    # hyp (7 tokens) vs ref (11): clipped n-gram matches 7/7, 5/6, 3/5, 1/4; brevity penalty exp(1 - 11/7)
    hand = math.exp(1 - 11 / 7) * (1 * 5 / 6 * 3 / 5 * 1 / 4) ** 0.25
    assert metrics.sentence_bleu("A man sleeping on a couch.", real["en1"]) == pytest.approx(hand, rel=1e-9)
    # German, same structure; "schläft" stays one token
    assert metrics.sentence_bleu("Ein Mann schläft auf einem Sofa.", real["de1"]) == pytest.approx(hand, rel=1e-9)
    assert metrics.sentence_bleu(real["en1"].upper(), [real["en1"]]) == pytest.approx(1.0)
    assert metrics.sentence_bleu("", real["en1"]) == 0.0


def test_sentence_bleu_method1_smoothing_by_hand(real):
    # 8 tokens; matches 8/8, 5/7, 1/6, 0/5 -> method1 replaces the 0 by epsilon 0.1: 0.1/5
    hand = math.exp(1 - 11 / 8) * (1 * 5 / 7 * 1 / 6 * 0.1 / 5) ** 0.25
    hyp = "A man sleeping on a green couch."
    assert metrics.sentence_bleu(hyp, real["en1"]) == pytest.approx(hand, rel=1e-9)
    assert metrics.sentence_bleu(hyp, real["en1"], smoothing=None) == pytest.approx(0.0, abs=1e-12)


def test_corpus_bleu_pools_counts_by_hand_and_matches_nltk(real):
    hyps = ["A man sleeping on a couch.", real["en0"]]
    refs = [real["en1"], [real["en0"]]]
    # pooled matches: (7+10)/17, (5+9)/15, (3+8)/13, (1+7)/11; hyp length 17, reference length 21
    hand = math.exp(1 - 21 / 17) * (1 * 14 / 15 * 11 / 13 * 8 / 11) ** 0.25
    assert metrics.corpus_bleu(hyps, refs) == pytest.approx(hand, rel=1e-9)
    direct = bleu_score.corpus_bleu([[metrics.tokenize(real["en1"])], [metrics.tokenize(real["en0"])]],
                                    [metrics.tokenize(h) for h in hyps])
    assert metrics.corpus_bleu(hyps, refs) == pytest.approx(direct, rel=1e-12)
    with pytest.raises(ValueError, match="got 1 references for 2 hypotheses"):
        metrics.corpus_bleu(hyps, refs[:1])


# --------------------------------------------------------------------------- ROUGE
def test_rouge_by_hand_on_multi30k(real):
    # rouge_score tokens (stemmed, '.' dropped): hyp 6 tokens, ref 10; LCS = 6 (the whole hypothesis)
    scores = metrics.rouge(["A man sleeping on a couch."], [real["en1"]])
    assert scores["rougeL"] == pytest.approx(2 * 1.0 * 0.6 / 1.6)     # P = 6/6, R = 6/10
    assert scores["rouge1"] == pytest.approx(0.75)
    assert scores["rouge2"] == pytest.approx(2 * 4 / (5 + 9))           # 4 shared bigrams of 5 and 9


def test_rouge_multi_reference_on_scitldr_equals_library_max():
    refs = SCITLDR_DEV_0_TARGETS
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    # the first hypothesis is nearest the first reference, the second the third: the best is not always refs[0]
    hyps = ["We propose adaptive loss scaling to make mixed precision training easier.",
            "The authors train models in FP16 precision and minimize underflow in every layer automatically."]
    for hyp, nearest in zip(hyps, (0, 2)):
        direct = [scorer.score(r, hyp) for r in refs]
        best_l = max(s["rougeL"].fmeasure for s in direct)
        assert best_l == direct[nearest]["rougeL"].fmeasure > max(s["rougeL"].fmeasure for s in direct[:nearest] + direct[nearest + 1:]) + 0.1
        assert rouge_l_reward([hyp], references=[refs]) == [pytest.approx(best_l)]
        assert RougeReward("rouge2")([hyp], references=[refs]) == [pytest.approx(max(s["rouge2"].fmeasure for s in direct))]
        assert metrics.rouge([hyp], [refs])["rougeL"] == pytest.approx(best_l)
        single = scorer.score(refs[1], hyp)["rouge1"].fmeasure
        assert RougeReward("rouge1")([hyp], references=[refs[1]]) == [pytest.approx(single)]


# --------------------------------------------------------------------------- rewards
def test_bleu_reward_batch_and_multi_reference(real):
    hand = math.exp(1 - 11 / 7) * (1 * 5 / 6 * 3 / 5 * 1 / 4) ** 0.25
    out = bleu_reward(["A man sleeping on a couch.", real["en0"], ""], None,
                      [real["en1"], real["en0"], real["en0"]])
    assert out == [pytest.approx(hand), pytest.approx(1.0), 0.0]
    hyp, refs = "A man sleeping on a couch.", [real["en1"], "A man on a couch."]
    direct = bleu_score.sentence_bleu([metrics.tokenize(r) for r in refs], metrics.tokenize(hyp),
                                      smoothing_function=bleu_score.SmoothingFunction().method1)
    assert BleuReward()([hyp], references=[refs]) == [pytest.approx(direct)]
    assert BleuReward(scale=100)([hyp], references=[refs]) == [pytest.approx(100 * direct)]


def test_rewards_reject_missing_references_and_bad_options():
    with pytest.raises(ValueError, match="BleuReward needs references, got None"):
        BleuReward()(["a"], ["p"], None)
    with pytest.raises(ValueError, match="RougeReward: got 1 references for 2 completions"):
        RougeReward()(["a", "b"], None, ["x"])
    with pytest.raises(ValueError, match="smoothing must be None, a callable or 'method0'..'method7', got 'm9'"):
        BleuReward(smoothing="m9")
    with pytest.raises(ValueError, match="unknown ROUGE type 'rougeX'"):
        RougeReward("rougeX")


def test_rewards_work_through_the_env(tokenizer):
    env = TextGenerationEnv(["a", "b"], tokenizer, BleuReward(), references=["the cat sat", ["a dog", "the cat"]])
    rewards = env.compute_rewards(["the cat sat", "the cat"], ["a", "b"], env.references)
    # nltk + method1: a 3-token perfect match has no 4-gram, so p4 = epsilon 0.1 -> 0.1 ** (1/4);
    # 2 tokens: p3 = p4 = 0.1 -> 0.1 ** (2/4)
    np.testing.assert_allclose(rewards, [0.1 ** 0.25, 0.1 ** 0.5], rtol=1e-6)


# --------------------------------------------------------------------------- distinct-n, length
def test_distinct_n_and_mean_length_by_hand():
    texts = ["The cat the cat", "the dog."]
    # unigrams: the cat the cat | the dog . -> 7 total, distinct {the, cat, dog, .} = 4
    assert metrics.distinct_n(texts, 1) == pytest.approx(4 / 7)
    # bigrams: (the cat) (cat the) (the cat) | (the dog) (dog .) -> 5 total, 4 distinct
    assert metrics.distinct_n(texts, 2) == pytest.approx(4 / 5)
    assert metrics.distinct_n(["one"], 2) == 0.0
    assert metrics.mean_length(texts) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        metrics.distinct_n(texts, 0)


# --------------------------------------------------------------------------- perplexity
@pytest.fixture(scope="module")
def uniform_agent(tokenizer):
    model = make_tiny_model(tokenizer)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])  # every logit is 0: uniform
    return RLAgent(model, tokenizer, seed=0)


def test_perplexity_of_uniform_model_is_vocab_size_on_inline_pairs(uniform_agent, tokenizer):
    prompts = ["translate english to german: " + s for s in MULTI30K_VAL_EN] + ["", "a"]
    references = MULTI30K_VAL_DE + ["hello there", ["x", "y z"]]  # an empty prompt, a multi-reference pair
    flat = MULTI30K_VAL_DE + ["hello there", "x", "y z"]
    vocab = uniform_agent.vocab_size
    assert vocab == len(tokenizer) == 512
    with pytest.warns(UserWarning, match="1 of 8 references are longer than the model's context of 64 tokens"):
        nll, tokens = metrics.reference_nll(uniform_agent, prompts, references, batch_size=3)
    # + EOS each; a reference longer than the 64-token context keeps its first 63 tokens (one prompt token stays)
    assert max(len(tokenizer(r)["input_ids"]) for r in MULTI30K_VAL_DE) + 1 > 63
    assert tokens == sum(min(len(tokenizer(r)["input_ids"]) + 1, 63) for r in flat)
    assert nll == pytest.approx(tokens * math.log(vocab), rel=1e-4)
    assert metrics.perplexity(uniform_agent, prompts, references, batch_size=2) == pytest.approx(vocab, rel=1e-3)


@needs_shared_data
def test_perplexity_of_uniform_model_is_vocab_size(uniform_agent, tokenizer):
    ds = load_translation(split="val", limit=5, prefix="translate english to german: ", data_dir=SHARED_DATA)
    vocab = uniform_agent.vocab_size
    assert vocab == len(tokenizer) == 512
    assert metrics.perplexity(uniform_agent, ds.prompts, ds.references, batch_size=2) == pytest.approx(vocab, rel=1e-3)
    with pytest.warns(UserWarning, match="1 of 5 references are longer than the model's context of 64 tokens"):
        nll, tokens = metrics.reference_nll(uniform_agent, ds.prompts, ds.references, batch_size=3)
    # + EOS each; a reference longer than the 64-token context keeps its first 63 tokens (one prompt token stays)
    assert max(len(tokenizer(r)["input_ids"]) for r in ds.references) + 1 > 63
    assert tokens == sum(min(len(tokenizer(r)["input_ids"]) + 1, 63) for r in ds.references)
    assert nll == pytest.approx(tokens * math.log(vocab), rel=1e-4)
    # empty prompt, multi-reference and an abstract longer than the 64-token context (truncated)
    long = load_summarization(split="dev", limit=1, data_dir=SHARED_DATA)
    ppl = metrics.perplexity(uniform_agent, ["", "a", long.prompts[0]], ["hello there", ["x", "y z"], long.references[0]])
    assert ppl == pytest.approx(vocab, rel=1e-3)


def test_perplexity_matches_sequence_log_probs_of_each_pair(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer, seed=3), tokenizer, seed=0)
    prompts, refs = ["the movie was", "my day", "our dinner was very"], ["good fun", "long", "nice and warm"]
    nll, count = 0.0, 0
    for p, r in zip(prompts, refs):  # one unpadded sequence at a time: prompt + reference + EOS
        p_ids = tokenizer(p)["input_ids"]
        r_ids = tokenizer(r)["input_ids"] + [tokenizer.eos_token_id]
        ids = np.array([p_ids + r_ids], np.int32)
        logp = agent.sequence_log_probs(ids, np.ones_like(ids)).numpy()[0]  # (L-1,)
        nll -= logp[-len(r_ids):].sum()
        count += len(r_ids)
    expected = math.exp(nll / count)
    assert metrics.perplexity(agent, prompts, refs, batch_size=2) == pytest.approx(expected, rel=1e-4)
    assert 100 < expected < 2000  # a random model: near the vocabulary size, not uniform


class _Seq2SeqStub:
    """Only the interface perplexity uses; every completion token has probability 1/4."""

    family = ENCODER_DECODER  # its model family's adapter: the source is apart, references are not cut
    pad_token_id, eos_token_id, context_length = 1, 0, 64

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.masks = []

    def encode_prompts(self, texts):
        return np.ones((len(texts), 3), np.int32), np.ones((len(texts), 3), np.int32)

    def log_probs(self, prompt_ids, prompt_mask, completion_ids, completion_mask):
        self.masks.append(completion_mask.numpy())
        return np.log(0.25) * completion_mask.numpy().astype(np.float32)


def test_perplexity_uses_only_the_log_probs_interface(tokenizer):
    stub = _Seq2SeqStub(tokenizer)
    assert metrics.perplexity(stub, ["a", "b"], ["the cat", "a long reference here"]) == pytest.approx(4.0)
    assert stub.masks[0][0, 0] == 1 and stub.masks[0][:, -1].tolist() in ([0, 1], [1, 0])  # right padded


# --------------------------------------------------------------------------- evaluate
class _EchoAgent:
    """generate_text returns a fixed answer per prompt; counts its calls."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def generate_text(self, prompts, max_new_tokens=32, greedy=False, seed=None):
        self.calls.append((list(prompts), max_new_tokens, greedy))
        return [self.answers[p] for p in prompts]


def test_evaluate_batches_generation_and_scores_against_references(real):
    ds = PromptDataset(["p0", "p1", "p2"], [real["en0"], real["en1"], [real["en1"], "A man on a couch."]])
    agent = _EchoAgent({"p0": real["en0"], "p1": "A man sleeping on a couch.", "p2": "A man on a couch."})
    result, completions = metrics.evaluate(agent, ds, metrics=["bleu", "sentence_bleu", "rouge", "distinct", "length"],
                                           max_new_tokens=7, batch_size=2, return_completions=True)
    assert [len(c[0]) for c in agent.calls] == [2, 1] and agent.calls[0][1:] == (7, True)
    assert completions == [agent.answers[p] for p in ds.prompts]
    assert result["bleu"] == pytest.approx(metrics.corpus_bleu(completions, ds.references))
    hand = math.exp(1 - 11 / 7) * (1 * 5 / 6 * 3 / 5 * 1 / 4) ** 0.25
    assert result["sentence_bleu"] == pytest.approx((1.0 + hand + 1.0) / 3)
    assert result["rougeL"] == pytest.approx((1.0 + 0.75 + 1.0) / 3)
    assert set(result) == {"bleu", "sentence_bleu", "rouge1", "rouge2", "rougeL", "distinct_1", "distinct_2",
                           "mean_length", "num_examples"}
    with pytest.raises(ValueError, match="unknown metric 'meteor'"):
        metrics.evaluate(agent, ds, metrics=["meteor"])
    with pytest.raises(ValueError, match=r"metrics \['bleu'\] need references"):
        metrics.evaluate(agent, PromptDataset(["p0"]), metrics=["bleu"])


def test_evaluate_real_agent_uniform_model_on_inline_pairs(uniform_agent):
    # all logits equal: greedy picks token 0 = EOS at once, so every completion is empty
    ds = PromptDataset(MULTI30K_VAL_EN[:3], MULTI30K_VAL_DE[:3])
    result = metrics.evaluate(uniform_agent, ds, max_new_tokens=2, batch_size=2)
    assert result["perplexity"] == pytest.approx(512, rel=1e-3)
    assert result["bleu"] == 0.0 and result["rougeL"] == 0.0 and result["mean_length"] == 0.0
    assert result["num_examples"] == 3.0


@needs_shared_data
def test_evaluate_real_agent_uniform_model(uniform_agent):
    # all logits equal: greedy picks token 0 = EOS at once, so every completion is empty
    ds = load_translation(split="val", limit=3, data_dir=SHARED_DATA)
    result = metrics.evaluate(uniform_agent, ds, max_new_tokens=2, batch_size=2)
    assert result["perplexity"] == pytest.approx(512, rel=1e-3)
    assert result["bleu"] == 0.0 and result["rougeL"] == 0.0 and result["mean_length"] == 0.0
    assert result["num_examples"] == 3.0
