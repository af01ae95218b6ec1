"""``python -m instruct_ablate``: the same command line as ``instruct-ablate``."""

import sys

from .cli import main

sys.exit(main())
