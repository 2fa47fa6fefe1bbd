"""Load TimeSformer weights from the formats people actually have, and save our own.

Formats (detected from the file, not the name):
- ours: a safetensors file whose metadata holds the config, normalisation and label names;
- official: a `.pyth` from facebookresearch/TimeSformer, `{"model_state": ...}` with keys prefixed `model.`;
- Hugging Face: a directory with config.json and model.safetensors / pytorch_model.bin, or a bare state dict
  of `TimesformerForVideoClassification` (keys `timesformer.*`, `classifier.*`);
- MMAction2: `{"state_dict": ...}` with `backbone.*` / `cls_head.*` keys and inputs scaled to [-1, 1].

Files are read with `torch.load(weights_only=True)` or safetensors only, and every key must find its place:
a mismatch is an error that lists what is missing and unexpected, never a silent partial load. Files may come
from strangers: `checkpoint_checks` vets each one (container, size, metadata) before memory is spent on it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .checkpoint_checks import (
    CheckpointError,
    Normalization,
    check_fields,
    check_model_size,
    check_storage_fits,
    check_stored,
    check_tensors,
    config_from,
    container,
    file_type,
    normalization,
    our_metadata,
    read_json,
    torch_load_error,
)
from .key_names import HF_RULES, rename, rename_mmaction
from .label_sets import Labels, default_labels, hf_labels, resolve_labels
from .model import TimeSformer, TimeSformerConfig
from .video import OFFICIAL_NORMALIZATION

MMACTION_NORMALIZATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
FORMAT_TAG = "timesformer-explorer"
HF_TYPES = {
    "attention_type": str,
    "num_frames": int,
    "image_size": int,
    "patch_size": int,
    "num_channels": int,
    "hidden_size": int,
    "num_hidden_layers": int,
    "num_attention_heads": int,
    "intermediate_size": int,
    "num_labels": int,
    "id2label": dict,
}
"""The fields of a Hugging Face TimesformerConfig that we read, and their types."""


@dataclass
class LoadedModel:
    """A model ready for inference with everything needed to feed it and read its output."""

    model: TimeSformer
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    labels: list[str]
    source_format: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> TimeSformerConfig:
        return self.model.config


# --- reading files ---


def _torch_load(path: Path) -> object:
    """The object in a torch file. torch.load is given the open file, since given a path it picks the reader by
    the name (.safetensors) where the content has decided already."""
    try:
        with path.open("rb") as handle:
            return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad pickle or zip
        raise torch_load_error(path.name, str(error)) from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """A safetensors file's metadata alone (how it was made, for ours), without reading its tensors."""
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def _safetensors_load(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        metadata = read_metadata(path)
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path.name} is not a readable safetensors file (truncated or corrupt): {error}"
        ) from None


def _read_state(path: Path) -> tuple[dict[str, Tensor], dict[str, str], object]:
    """(tensors, safetensors metadata, the raw torch object or None) of a file, whatever its container and name."""
    kind = container(path)
    check_storage_fits(path, kind)
    if kind == "safetensors":
        state, metadata = _safetensors_load(path)
        return check_tensors(state, path.name), metadata, None
    raw = _torch_load(path)
    return _state_dict_of(raw, path.name), {}, raw


def _state_dict_of(raw: object, name: str) -> dict[str, Tensor]:
    """The state dict of a loaded torch file: the file itself, or under one of the keys training code wraps it in."""
    if isinstance(raw, dict):
        for key in ("model_state", "state_dict", "model", "module"):
            if isinstance(raw.get(key), dict):
                raw = raw[key]
                break
    if not isinstance(raw, dict):
        raise CheckpointError(f"{name} does not contain a state dict of tensors (it holds a {type(raw).__name__})")
    return check_tensors(raw, name)


# --- building the config from what a checkpoint says ---


def _infer_config(
    state: dict[str, Tensor], name: str, num_frames: int | None, num_heads: int | None
) -> TimeSformerConfig:
    """Architecture from tensor shapes, for formats that carry no config (official, MMAction2, bare HF).

    Shapes do not tell the number of heads: without `num_heads` we take ViT's 64 channels per head
    (12 heads for ViT-B, 16 for ViT-L), which holds for every released TimeSformer.
    """
    blocks = [int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d{1,9})\.", k))]  # longer: no block of ours
    if not blocks:
        raise CheckpointError(f"{name} has no blocks.N.* tensors, so it holds no TimeSformer blocks")

    def dims(key: str, rank: int) -> torch.Size:
        shape = state[key].shape
        if len(shape) != rank or 0 in shape:
            raise CheckpointError(
                f"{name}: {key} has shape {tuple(shape)}; a TimeSformer's has {rank} non-empty dimensions"
            )
        return shape

    try:
        dim, chans, patch, _ = dims("patch_embed.proj.weight", 4)
        patches = dims("pos_embed", 3)[1] - 1
        num_classes = dims("head.weight", 2)[0]
        hidden = dims("blocks.0.mlp.fc1.weight", 2)[0]
        frames = dims("time_embed", 3)[1] if "time_embed" in state else (num_frames or 8)
    except KeyError as error:
        raise CheckpointError(f"{name} lacks the tensors that define a TimeSformer ({error})") from None
    if "blocks.0.temporal_attn.qkv.weight" in state:
        scheme = "divided_space_time"
    elif "time_embed" in state:
        scheme = "joint_space_time"
    else:
        scheme = "space_only"
    side = int(round(patches**0.5))
    return config_from(
        dict(
            scheme=scheme,
            num_frames=frames,
            image_size=side * patch,
            patch_size=patch,
            in_chans=chans,
            embed_dim=dim,
            depth=1 + max(blocks),
            num_heads=num_heads or max(1, dim // 64),
            mlp_ratio=hidden / dim,
            num_classes=num_classes,
        ),
        f"{name}: its tensor shapes give no valid config",
    )


def _hf_config(config_json: object, where: str) -> TimeSformerConfig:
    settings = check_fields(config_json, HF_TYPES, where)
    try:
        return config_from(
            dict(
                scheme=settings.get("attention_type", "divided_space_time"),
                num_frames=settings["num_frames"],
                image_size=settings["image_size"],
                patch_size=settings["patch_size"],
                in_chans=settings.get("num_channels", 3),
                embed_dim=settings["hidden_size"],
                depth=settings["num_hidden_layers"],
                num_heads=settings["num_attention_heads"],
                mlp_ratio=settings["intermediate_size"] / settings["hidden_size"],
                num_classes=len(settings.get("id2label") or {}) or settings.get("num_labels", 400),
            ),
            where,
        )
    except KeyError as error:
        raise CheckpointError(f"{where}: it has no {error}") from None


def _hf_normalization(folder: Path) -> Normalization:
    processor = folder / "preprocessor_config.json"
    if os.path.exists(processor):
        where = f"{processor} is not a preprocessor config"
        settings = check_fields(read_json(processor), {}, where)
        if "image_mean" in settings and "image_std" in settings:
            return normalization([settings["image_mean"], settings["image_std"]], where)
    return OFFICIAL_NORMALIZATION


def _build(config: TimeSformerConfig, state: dict[str, Tensor], source: str, name: str) -> TimeSformer:
    """Model from config and renamed state; any missing, unexpected or mis-shaped tensor is an error.

    Sizes, shapes and storage are checked before the model is allocated (the expected shapes come from the model,
    built on the meta device), so a small file that claims a huge model costs nothing.
    """
    check_model_size(config, state, name)
    with torch.device("meta"):
        model = TimeSformer(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:

        def listing(title: str, items: list[str]) -> str:
            more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
            return f"\n  {title}: {', '.join(items[:8])}{more}" if items else ""

        raise CheckpointError(
            f"{name}: the {source} checkpoint does not fit a {config.scheme} TimeSformer"
            + listing("missing", missing)
            + listing("unexpected", unexpected)
            + listing("wrong shape", wrong)
        )
    check_stored(state, name)
    # The file's tensors become the parameters (copied once, in the model's dtype): a model built on the meta device
    # is never randomly initialised only to be overwritten, which was 3.4 s of a ViT-B's 4.3 s load.
    owned = {k: v.detach().to(expected[k].dtype, copy=True).contiguous() for k, v in state.items()}
    model.load_state_dict(owned, strict=True, assign=True)
    return model.eval()


def load_checkpoint(
    path: str | Path, num_frames: int | None = None, num_heads: int | None = None, labels: Labels | None = None
) -> LoadedModel:
    """Load any supported checkpoint; anything unusable or hostile is one CheckpointError, before memory is spent.

    `num_frames` and `num_heads` matter only for files without a config: space-only models store no frame
    count, and no format without a config stores the number of heads. Class names come from the file (ours, a
    Hugging Face id2label), else from the public dataset with the head's class count (`label_sets`), else
    "class i"; `labels` (a `label_sets.LABEL_SETS` name or one name per class) overrides them.
    """
    path = Path(path)
    loaded = _load(path, num_frames, num_heads)
    if labels is not None:
        try:
            loaded.labels = resolve_labels(labels, loaded.config.num_classes)
        except ValueError as error:
            raise CheckpointError(f"{path.name}: {error}") from None
    return loaded


def _load(path: Path, num_frames: int | None, num_heads: int | None) -> LoadedModel:
    if file_type(path) == "folder":
        return _load_hf_folder(path)
    state, metadata, raw = _read_state(path)
    name = path.name
    if metadata.get("format") == FORMAT_TAG:
        config, (mean, std), labels = our_metadata(metadata, name)
        return LoadedModel(_build(config, state, "our", name), mean, std, labels, "ours", metadata)
    keys = list(state)
    if any(k.startswith("timesformer.") for k in keys):
        state = rename(state, HF_RULES)
        config = _infer_config(state, name, num_frames, num_heads)
        model = _build(config, state, "Hugging Face", name)
        return LoadedModel(model, *OFFICIAL_NORMALIZATION, default_labels(config.num_classes), "huggingface")
    if any(k.startswith("backbone.") for k in keys):
        state = rename_mmaction(state)
        config = _infer_config(state, name, num_frames, num_heads)
        model = _build(config, state, "MMAction2", name)
        return LoadedModel(model, *MMACTION_NORMALIZATION, default_labels(config.num_classes), "mmaction2")
    if all(k.startswith("model.") for k in keys):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    if "patch_embed.proj.weight" in state:
        config = _infer_config(state, name, num_frames, num_heads)
        source = "official" if isinstance(raw, dict) and "model_state" in raw else "plain"
        model = _build(config, state, source, name)
        return LoadedModel(model, *OFFICIAL_NORMALIZATION, default_labels(config.num_classes), source)
    first = ", ".join(f"{k!r:.60}" for k in keys[:5])
    raise CheckpointError(f"{name} is not a TimeSformer checkpoint; its first keys are {first}")


def _load_hf_folder(folder: Path) -> LoadedModel:
    config_path = folder / "config.json"
    if not os.path.exists(config_path):
        raise CheckpointError(
            f"{folder} is a folder without config.json, so not a Hugging Face model; give a checkpoint file or a "
            "Hugging Face model folder"
        )
    config_json = read_json(config_path)
    where = f"{config_path} is not a TimeSformer config"
    config = _hf_config(config_json, where)
    labels = hf_labels(config_json, where) or default_labels(config.num_classes)
    weights = [folder / name for name in ("model.safetensors", "pytorch_model.bin") if os.path.exists(folder / name)]
    if not weights:
        raise CheckpointError(f"{folder} has no model.safetensors or pytorch_model.bin")
    state, _, _ = _read_state(weights[0])
    model = _build(config, rename(state, HF_RULES), "Hugging Face", weights[0].name)
    return LoadedModel(model, *_hf_normalization(folder), labels, "huggingface")


def save_checkpoint(path: str | Path, loaded: LoadedModel, **metadata: str) -> None:
    """Write our safetensors format: weights plus config, normalisation, labels and any extra metadata."""
    model = loaded.model
    info = {
        "format": FORMAT_TAG,
        "config": json.dumps(model.config.to_dict()),
        "normalization": json.dumps([list(loaded.mean), list(loaded.std)]),
        "labels": json.dumps(loaded.labels),
        **metadata,
    }
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=info)
