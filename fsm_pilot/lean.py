"""Optional imports of the pilot's libraries that a pilot never uses, kept out of its memory.

requests looks for a character-set detector (charset_normalizer, else chardet) at import, only to
guess the encoding of a reply that declares none, for ``Response.text``. The pilot decodes its
replies itself (JSON or form-encoded bytes); without a detector requests falls back to UTF-8.
charset_normalizer's compiled detector is 2.6 MiB of a pilot's RSS (measured: a bare python3
importing transitions, requests, psutil and structlog is 31.8 MiB with it, 29.2 MiB without).
"""

from __future__ import annotations

import sys
import warnings

#: Modules a pilot never imports: ``import`` of them raises ImportError (None in sys.modules).
UNUSED = ("charset_normalizer", "chardet")


def skip_unused() -> None:
    """Keep ``UNUSED`` out of this process (call before requests is imported; later it is too late)."""
    if "requests" in sys.modules:
        return
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable", by design
    # requests says so at import; for the pilot it is the intended set-up, not a problem to report
    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection dependency")
