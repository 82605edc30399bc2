"""``python -m fsm_pilot``."""

import sys

from fsm_pilot.cli import main

sys.exit(main())
