"""Feature extraction: decoding, XFeat descriptors, clip pooling and the HDF5 feature store.

Public API (imported lazily so ``import memtsm.extract`` stays light)::

    from memtsm.extract import extract, ExtractConfig, FeatureSpec, FeatureStore
    summary = extract(["videos/"], "features/", ExtractConfig())
    store = FeatureStore("features/")
    record = store.read(store.video_ids[0])   # record.features [T, D], record.clip_frames [T, 2]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from memtsm.extract.config import ExtractConfig, FeatureSpec
    from memtsm.extract.runner import ExtractSummary, extract
    from memtsm.extract.store import FeatureStore, FeatureStoreWriter, VideoRecord

_EXPORTS = {
    "ExtractConfig": "memtsm.extract.config",
    "FeatureSpec": "memtsm.extract.config",
    "extract": "memtsm.extract.runner",
    "ExtractSummary": "memtsm.extract.runner",
    "FeatureStore": "memtsm.extract.store",
    "FeatureStoreWriter": "memtsm.extract.store",
    "VideoRecord": "memtsm.extract.store",
}

__all__ = ["ExtractConfig", "ExtractSummary", "FeatureSpec", "FeatureStore", "FeatureStoreWriter",
           "VideoRecord", "extract"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'memtsm.extract' has no attribute {name!r}")
