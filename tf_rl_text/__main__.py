"""``python -m tf_rl_text``: the ``tf-rl-text`` command (tf_rl_text/cli.py)."""
import sys

from tf_rl_text.cli import main

sys.exit(main())
