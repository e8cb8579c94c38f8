"""The Gymnasium face: check_env passes, a Gymnasium random-agent loop and RLAgent both drive it, the vector
form runs rows in lockstep with NEXT_STEP autoreset."""
import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from conftest import make_tiny_model
from tf_rl_text import RLAgent, TextGenerationEnv
from tf_rl_text.gymnasium_env import GymTextEnv, GymTextVectorEnv

PROMPTS = ["the movie was", "my day", "our dinner was very"]


def length_reward(completions, prompts, references):
    return [len(c) / 10 for c in completions]


def test_check_env_passes(tokenizer):
    gym_env = GymTextEnv(TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=1, max_new_tokens=4))
    check_env(gym_env, skip_render_check=True)
    assert isinstance(gym_env.action_space, gymnasium.spaces.Discrete) and gym_env.action_space.n == len(tokenizer)
    assert set(gym_env.observation_space.spaces) == {"input_ids", "attention_mask"}


def test_random_agent_loop_ends_within_max_new_tokens_with_the_env_reward(tokenizer):
    gym_env = GymTextEnv(TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=1, max_new_tokens=5))
    gym_env.action_space.seed(0)
    obs, info = gym_env.reset(seed=1)
    assert info["prompt"] in PROMPTS and obs in gym_env.observation_space
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, info = gym_env.step(gym_env.action_space.sample())
        steps += 1
        done = terminated or truncated
        assert obs in gym_env.observation_space
        if not done:
            assert reward == 0.0
    assert steps <= 5 and (truncated == (steps == 5) or terminated)
    assert reward == pytest.approx(len(info["completion"]) / 10)  # the env's reward_fn on the last step


def test_eos_terminates_and_the_length_limit_truncates(tokenizer):
    gym_env = GymTextEnv(TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=1, max_new_tokens=2))
    gym_env.reset(seed=0)
    _, reward, terminated, truncated, info = gym_env.step(tokenizer.eos_token_id)
    assert (terminated, truncated, info["completion"], reward) == (True, False, "", 0.0)
    gym_env.reset()
    word = 264  # " the"
    assert gym_env.step(word)[2:4] == (False, False)
    _, reward, terminated, truncated, info = gym_env.step(word)
    assert (terminated, truncated, info["completion"]) == (False, True, " the the")
    assert reward == pytest.approx(0.8)
    with pytest.raises(ValueError, match="batch_size=1"):
        GymTextEnv(TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2))
    with pytest.raises(ValueError, match="token id"):
        gym_env.step(len(tokenizer))


def test_rl_agent_drives_the_gymnasium_env_greedily_like_generate(tokenizer):
    """RLAgent.act on the Gymnasium observation (a batch of one) gives the tokens of agent.generate."""
    agent = RLAgent(make_tiny_model(tokenizer, seed=3), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=1, max_new_tokens=4, agent=agent)
    gym_env = GymTextEnv(env)
    obs, info = gym_env.reset(seed=0)
    done, tokens = False, []
    while not done:
        action = agent.act(obs, greedy=True)  # one Gymnasium observation: one int
        tokens.append(action)
        obs, reward, terminated, truncated, info = gym_env.step(action)
        done = terminated or truncated
    ids, mask = agent.encode_prompts([info["prompt"]])
    expected = agent.generate(ids, mask, max_new_tokens=4, greedy=True)
    n = int(expected.completion_mask.numpy()[0].sum())
    assert tokens[:n] == expected.completion_ids.numpy()[0][:n].tolist()
    assert info["completion"] == agent.decode_completions(expected.completion_ids.numpy(),
                                                          expected.completion_mask.numpy())[0]


def test_vector_env_runs_rows_in_lockstep_with_next_step_autoreset(tokenizer):
    vec = GymTextVectorEnv(TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=3))
    assert vec.num_envs == 2 and vec.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    obs, info = vec.reset(seed=0)
    assert obs["input_ids"].shape[0] == 2 and obs in vec.observation_space
    eos, word = tokenizer.eos_token_id, 264
    _, rewards, terminated, truncated, _ = vec.step(np.array([eos, word]))  # row 0 ends; the batch goes on
    assert not terminated.any() and not truncated.any() and (rewards == 0).all()
    vec.step(np.array([word, word]))
    obs, rewards, terminated, truncated, info = vec.step(np.array([word, word]))
    assert terminated.tolist() == [True, False] and truncated.tolist() == [False, True]
    assert list(info["completion"]) == ["", " the the the"]
    np.testing.assert_allclose(rewards, [0.0, 1.2])
    obs, rewards, terminated, truncated, info = vec.step(np.array([word, word]))  # NEXT_STEP: a new batch
    assert not terminated.any() and (rewards == 0).all() and obs["attention_mask"][:, -1].all()
    # equal seeds, equal prompt draws
    assert list(vec.reset(seed=5)[1]["prompt"]) == list(vec.reset(seed=5)[1]["prompt"])
