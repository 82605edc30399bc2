"""``python -m fsm_pilot``: nothing before ``main`` may end in a traceback, not even SIGINT."""

import sys

try:
    from fsm_pilot.cli import main
except KeyboardInterrupt:  # interrupted before any of the pilot's work began
    sys.exit(130)

sys.exit(main())
