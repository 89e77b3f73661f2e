"""The feature identity: what makes two sets of stored features interchangeable.

Every feature store carries one (root attribute ``identity`` of each shard, and ``store.json``),
every checkpoint carries the identity of the features it was trained on, and every consumer
compares identities through :meth:`FeatureIdentity.diff`:

* appending to a store: every field must match (:class:`~memtsm.extract.store.FeatureStoreWriter`);
* combining stores for training: every field must match (:func:`memtsm.train.data.open_stores`);
* scoring stored features or raw video with a checkpoint: every field but the storage
  ``dtype`` must match (:data:`SCORING_IGNORES`, :func:`memtsm.score.stored.check_identity`).

Identities are made in one place: :meth:`FeatureIdentity.of_extraction` for features that
``memtsm extract`` computes, :meth:`FeatureIdentity.of_import` for external features brought in
by ``memtsm import-features``. The dict form (:meth:`FeatureIdentity.to_dict`) is what the files
hold; it is unchanged from the first store format, so old stores and checkpoints compare equal
to new ones.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from memtsm.extract.config import FeatureSpec

#: The extractor name of features computed by ``memtsm extract``.
XFEAT_EXTRACTOR = "xfeat"
#: Fields that may differ between a checkpoint's features and the features it scores: the
#: storage precision of stored features does not change what they mean, and a scorer trained on
#: single crops scores the mean over crops (what RTFM, UR-DMU and VadCLIP report), so the crop
#: view of a store is recorded but does not stop scoring.
SCORING_IGNORES = ("dtype", "crops")
_OPTIONAL = ("extractor", "xfeat_weights_sha256", "network_precision", "crops")
#: The precision of the network of every store written before ``network_precision`` existed.
FULL_PRECISION = "fp32"


@dataclass(frozen=True)
class FeatureIdentity:
    """What the features are; equal identities mean interchangeable features.

    Attributes:
        feature_dim: D of every ``features [T, D]`` array.
        layout: pooling layout (``max128``...) or ``imported:<name>`` for external features.
        feature_spec: everything else that changes the values (``FeatureSpec.to_dict()`` of an
            extraction; ``feature_name``, ``normalize``, ``clip_len`` of an import).
        dtype: storage dtype of the stored arrays.
        extractor: ``"xfeat"`` for features memtsm computes from video; ``None`` for imported
            ones (memtsm cannot recompute those from raw video).
        xfeat_weights_sha256: the network weights that computed them (``None`` if imported).
        network_precision: ``None`` for fp32 (every fp32 engine gives the same features, and
            stores written before this field existed are fp32); ``"bf16"`` or ``"int8"``
            otherwise, each of which makes different features.
        crops: for features published per crop (RTFM's ``[T, 10, D]``, UR-DMU's
            ``Name__k.npy``): ``{"count": n, "use": "mean" | "each" | "crop k"}`` (see
            :mod:`memtsm.extract.external`); ``None`` for features without crops.
        extra: keys of a newer format that this version does not know; kept and compared.
    """

    feature_dim: int
    layout: str = ""
    feature_spec: Mapping[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    extractor: str | None = None
    xfeat_weights_sha256: str | None = None
    network_precision: str | None = None
    crops: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.feature_dim, bool) or not isinstance(self.feature_dim, int) \
                or self.feature_dim < 1:
            raise ValueError(f"feature_dim must be an int >= 1, got {self.feature_dim!r}")
        # JSON round trip: a canonical, plain copy (tuples -> lists) that compares like the file.
        object.__setattr__(self, "feature_spec", json.loads(json.dumps(dict(self.feature_spec))))
        object.__setattr__(self, "extra", json.loads(json.dumps(dict(self.extra))))
        if self.crops is not None:
            object.__setattr__(self, "crops", json.loads(json.dumps(dict(self.crops))))

    # -- the two producers ---------------------------------------------------------------------

    @classmethod
    def of_extraction(cls, spec: FeatureSpec, feature_dim: int, weights_sha256: str,
                      precision: str = FULL_PRECISION) -> FeatureIdentity:
        """Identity of features computed with ``spec``, these weights and this precision."""
        return cls(feature_dim=feature_dim, layout=spec.layout, feature_spec=spec.to_dict(),
                   dtype=spec.dtype, extractor=XFEAT_EXTRACTOR,
                   xfeat_weights_sha256=weights_sha256,
                   network_precision=None if precision == FULL_PRECISION else precision)

    @property
    def precision(self) -> str:
        """The network precision of extracted features (``fp32`` unless recorded)."""
        return self.network_precision or FULL_PRECISION

    @classmethod
    def of_import(cls, feature_name: str, normalize: str, clip_len: int,
                  feature_dim: int, crops: Mapping[str, Any] | None = None,
                  audio: str | None = None) -> FeatureIdentity:
        """Identity of external features (C3D, I3D...) imported as ``float32``.

        The file format they came in is provenance, not identity: Sultani text files and CSV
        files of the same C3D features train and evaluate together. ``crops`` is the crop view
        of per-crop features; ``audio`` names a second modality concatenated to every row
        (``"vggish"``), recorded in the spec only when there is one.
        """
        spec: dict[str, Any] = {"feature_name": feature_name, "normalize": normalize,
                                "clip_len": clip_len}
        if audio is not None:
            spec["audio"] = audio
        return cls(feature_dim=feature_dim, layout=f"imported:{feature_name}",
                   feature_spec=spec, dtype="float32", crops=crops)

    # -- files ---------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | FeatureIdentity) -> FeatureIdentity:
        """Read the dict form (of any memtsm version; unknown keys go to ``extra``).

        Raises:
            ValueError: not a mapping, or no valid ``feature_dim``.
        """
        if isinstance(data, FeatureIdentity):
            return data
        if not isinstance(data, Mapping) or "feature_dim" not in data:
            raise ValueError(f"not a feature identity (no feature_dim): {data!r}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The dict form stored in shards, ``store.json`` and checkpoints."""
        data: dict[str, Any] = {"feature_dim": self.feature_dim, "layout": self.layout,
                                "feature_spec": dict(self.feature_spec), "dtype": self.dtype}
        data.update({k: getattr(self, k) for k in _OPTIONAL if getattr(self, k) is not None})
        data.update(self.extra)
        return data

    # -- comparison ----------------------------------------------------------------------------

    @property
    def is_extracted(self) -> bool:
        """Whether memtsm can compute these features from raw video (``memtsm extract``)."""
        return self.extractor == XFEAT_EXTRACTOR

    def diff(self, other: FeatureIdentity | Mapping[str, Any],
             ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
        """Fields that differ: ``{name: (self's value, other's value)}``, ``ignore`` left out.

        An empty dict means the features are interchangeable for the caller's purpose.
        """
        mine, theirs = self.to_dict(), FeatureIdentity.from_dict(other).to_dict()
        return {key: (mine.get(key), theirs.get(key))
                for key in sorted(set(mine) | set(theirs))
                if key not in ignore and mine.get(key) != theirs.get(key)}


def describe_diff(differences: Mapping[str, tuple[Any, Any]], first: str, second: str) -> str:
    """``"layout: store has 'max128', run has 'mean128'; ..."`` for error messages."""
    return "; ".join(f"{key}: {first} has {a!r}, {second} has {b!r}"
                     for key, (a, b) in differences.items())
