"""TextGenerationEnv: the tf-agents contract, episode semantics, and clear errors."""
import numpy as np
import pytest
from tf_rl_text import specs as env_utils  # tf-agents' validate_py_environment where it is installed

from conftest import make_tiny_model
from tf_rl_text import RLAgent, TextGenerationEnv

PROMPTS = ["the movie was", "my day", "our dinner was very"]


def length_reward(completions, prompts, references):
    return [len(c) / 10 for c in completions]


def test_passes_tf_agents_validation(tokenizer):
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=3, max_new_tokens=4)
    env_utils.validate_py_environment(env, episodes=3)
    assert env.batched and env.batch_size == 3


def test_episode_ends_at_eos_or_max_new_tokens_with_reward_on_last_step(tokenizer):
    env = TextGenerationEnv(PROMPTS[:2], tokenizer, length_reward, batch_size=2, max_new_tokens=3, shuffle=False)
    ts = env.reset()
    assert ts.is_first().all()
    eos, word = tokenizer.eos_token_id, 264  # " the"
    ts = env.step(np.array([eos, word]))      # row 0 ends at once
    assert ts.is_mid().all() and (ts.reward == 0).all()
    assert ts.observation["attention_mask"][0, -1] == 1 and ts.observation["input_ids"][0, -1] == eos
    ts = env.step(np.array([word, word]))     # row 0's action is ignored (padding, mask 0)
    assert ts.observation["attention_mask"][0, -1] == 0 and ts.observation["input_ids"][0, -1] == tokenizer.pad_token_id
    ts = env.step(np.array([word, eos]))      # max_new_tokens reached
    assert ts.is_last().all()
    assert env.completions == ["", " the the"]
    np.testing.assert_allclose(ts.reward, [0.0, 0.8])
    # the observation keeps the whole prompt: the last 3 + 3 tokens are prompt + completion
    prompt_ids = tokenizer(env.batch_prompts[1], add_special_tokens=False)["input_ids"]
    obs = ts.observation["input_ids"][1]
    assert obs[-3 - len(prompt_ids):-3].tolist() == prompt_ids
    assert env.step(np.array([word, word])).is_first().all()  # auto-reset after LAST


def test_all_rows_ending_early_end_the_episode(tokenizer):
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=5)
    env.reset()
    ts = env.step(np.full(2, tokenizer.eos_token_id))
    assert ts.is_last().all()


def test_agent_acts_through_the_step_api(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=3, max_new_tokens=4)
    ts = env.reset()
    steps = 0
    while not ts.is_last().all():
        ts = env.step(agent.act(ts))
        steps += 1
    assert 1 <= steps <= 4 and len(env.completions) == 3
    np.testing.assert_allclose(ts.reward, [len(c) / 10 for c in env.completions], rtol=1e-6)


def test_rollout_scores_a_batch_and_repeats_prompts(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, references=["a", "b", "c"], batch_size=2,
                            max_new_tokens=5)
    r = env.rollout(agent, num_samples=3)
    assert r.completion_ids.shape == (6, 5) and r.prompt_ids.shape[1] == env.max_prompt_length
    assert r.prompts[0] == r.prompts[1] == r.prompts[2] and r.references[3] == r.references[5]
    np.testing.assert_allclose(r.rewards, [len(c) / 10 for c in r.completions], rtol=1e-6)


def test_prompts_are_drawn_in_shuffled_epochs(tokenizer):
    prompts = ["a", "b", "c", "d", "e", "f"]

    def epochs(env, n=4):  # each epoch is 3 batches of 2
        return [sum((env.next_prompts()[0] for _ in range(3)), []) for _ in range(n)]

    shuffled = epochs(TextGenerationEnv(prompts, tokenizer, length_reward, batch_size=2, seed=3))
    assert all(sorted(e) == prompts for e in shuffled)  # every prompt once per epoch
    assert sum(e != prompts for e in shuffled) >= 3 and len({tuple(e) for e in shuffled}) >= 3  # orders differ
    assert shuffled == epochs(TextGenerationEnv(prompts, tokenizer, length_reward, batch_size=2, seed=3))  # seeded
    # the control: with shuffling off, every epoch is the prompts in their order
    assert epochs(TextGenerationEnv(prompts, tokenizer, length_reward, batch_size=2, shuffle=False)) == [prompts] * 4


def test_choice_env_draws_states_as_the_text_env_does(tokenizer):
    """One BatchedEnv under both envs: the same seed draws the same state order, a state_dict moves
    between them, and the unshuffled draw wraps around the epoch (hand-computed indices)."""
    from tf_rl_text.choice import ChoiceEnv
    from tf_rl_text.env import BatchedEnv

    prompts = ["a", "b", "c", "d", "e"]
    text = TextGenerationEnv(prompts, tokenizer, length_reward, batch_size=2, seed=3)
    choice = ChoiceEnv(prompts, tokenizer, length_reward, labels=2, batch_size=2, seed=3)
    assert isinstance(text, BatchedEnv) and isinstance(choice, BatchedEnv) and choice.batch_size == 2
    drawn = [text.next_prompts()[0] for _ in range(5)]
    assert drawn == [[prompts[i] for i in choice.next_indices()] for _ in range(5)]
    assert sorted(sum(drawn[:2], []) + drawn[2][:1]) == prompts  # the first epoch holds every prompt once
    choice.load_state_dict(text.state_dict())
    resumed = [[prompts[i] for i in choice.next_indices(3)] for _ in range(3)]
    assert [text.next_prompts(3)[0] for _ in range(3)] == resumed
    in_order = ChoiceEnv(prompts, tokenizer, length_reward, labels=2, batch_size=2, shuffle=False)
    assert [in_order.next_indices() for _ in range(4)] == [[0, 1], [2, 3], [4, 0], [1, 2]]


@pytest.mark.parametrize("kwargs, match", [
    ({"prompts": []}, "prompts is empty"),
    ({"prompts": "the movie"}, "single string"),
    ({"prompts": ["ok", 3]}, r"prompts\[1\] must be a string"),
    ({"max_new_tokens": 0}, "max_new_tokens must be >= 1, got 0"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"prompts": ["word " * 70]}, "exceeds the model's context of 64 tokens"),
    ({"references": ["only one"]}, "one entry per prompt"),
    ({"reward_fn": "bleu"}, "reward_fn must be callable"),
])
def test_bad_input_gets_a_clear_error(tokenizer, kwargs, match):
    args = dict(prompts=PROMPTS, tokenizer=tokenizer, reward_fn=length_reward, max_new_tokens=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TextGenerationEnv(**args)


@pytest.mark.parametrize("reward_fn, match", [
    (lambda c, p, r: [1.0], "returned 1 rewards for 2 completions"),
    (lambda c, p, r: [1.0, float("nan")], r"returned nan \(not finite\) for completion 1"),
    (lambda c, p, r: ["x", "y"], "must return numbers"),
])
def test_bad_reward_function_output_is_named(tokenizer, reward_fn, match):
    env = TextGenerationEnv(PROMPTS, tokenizer, reward_fn, batch_size=2, max_new_tokens=2)
    with pytest.raises(ValueError, match=match):
        env.compute_rewards(["a", "b"], ["p", "q"], [None, None])
