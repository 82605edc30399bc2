"""``python -m fsm_pilot.dispatcher dispatcher|submit|status ...``."""

import sys

from fsm_pilot.dispatcher.cli import main

sys.exit(main())
