"""`python -m rlsweep` is the `rlsweep` command."""

import sys

from rlsweep.cli import main

sys.exit(main())
