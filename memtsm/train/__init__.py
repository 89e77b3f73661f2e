"""Training a scorer from video-level labels: config, bags, loop, checkpoints, DDP, sweeps.

Public API::

    from memtsm.train.config import TrainConfig
    from memtsm.train.loop import train
    result = train(TrainConfig(features=("features/train",), out="runs/seed0"))
"""
