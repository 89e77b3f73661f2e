"""Composition of extraction and the scorer: training, evaluation, scoring, the demo."""
