"""Standard benchmarks in one command: import, train every seed, evaluate with the protocol.

Public API::

    from memtsm.benchmark.runner import BenchmarkConfig, FeatureInput, run_benchmark
    result = run_benchmark(BenchmarkConfig(name="ucf-crime", train=FeatureInput(("train/",)),
                                           test=FeatureInput(("test/",)),
                                           annotations="Temporal_Anomaly_...txt", out="bench"))
"""
