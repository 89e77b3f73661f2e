"""Honest frame-level evaluation: annotation files, the frame protocol and its metrics.

Public API::

    from memtsm.evaluate.protocol import EvalConfig, evaluate
    result = evaluate(EvalConfig(checkpoint="runs/seed0/best.pt", features=("features/test",),
                                 annotations="Temporal_Anomaly_Annotation.txt"))
"""
