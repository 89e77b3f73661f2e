"""Shared infrastructure of every command: devices, worker topology, progress, files, memory.

Nothing here knows about videos, features or models; every other package may use it. Importing
it is cheap (torch is imported only by :mod:`memtsm.runtime.devices` and :meth:`World.device`).
"""
