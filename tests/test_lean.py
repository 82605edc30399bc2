"""The pilot keeps requests' character detection out of its memory, and requests still works without it."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
from fsm_pilot.lean import skip_unused
skip_unused()
import sys, requests
assert "charset_normalizer" not in [m for m, v in sys.modules.items() if v is not None], "loaded"
reply = requests.Response()
reply._content = "caf\\u00e9".encode()
print(reply.apparent_encoding, reply.text)
"""


def test_requests_imports_without_a_charset_detector_and_says_nothing() -> None:
    # a fresh interpreter: this test process has requests (and its detector) loaded already
    done = subprocess.run([sys.executable, "-W", "default", "-c", CHECK], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "utf-8 caf\u00e9"
    assert done.stderr == ""  # no RequestsDependencyWarning on the pilot's console
