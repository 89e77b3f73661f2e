"""Children that a test interrupts must see Ctrl-C even when the test run itself ignores it."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGINT back to its default disposition.

    A shell starts background jobs (``pytest ... &``, nohup, some CI runners) with SIGINT
    ignored, children inherit that, and Python then installs no KeyboardInterrupt handler: an
    interrupted child would run to the end and the test would wrongly fail.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
