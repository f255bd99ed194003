"""`python -m rlsweep` is the `rlsweep` command."""

import sys

from rlsweep.experiments.cli import main

sys.exit(main())
