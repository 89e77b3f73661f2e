"""Live scoring of camera streams and growing files (``memtsm watch``).

:mod:`memtsm.watch.sources` (where frames come from), :mod:`memtsm.watch.scoring` (provisional
and final scores over the scorer's receptive field), :mod:`memtsm.watch.alerts` (hysteresis,
evidence clips, hooks), :mod:`memtsm.watch.runner` (threads, reconnection, events) and
:mod:`memtsm.watch.dashboard` (the live page). Only
:mod:`memtsm.watch.config` is imported here: the CLI reads its defaults without torch or PyAV.
"""

from memtsm.watch.config import RTSP_TRANSPORTS, AlertConfig, WatchConfig

__all__ = ["RTSP_TRANSPORTS", "AlertConfig", "WatchConfig"]
