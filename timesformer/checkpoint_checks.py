"""What stands between an untrusted checkpoint file and memory: what the file is, whether it fits, what it says.

The app lets strangers load files, so nothing in one is trusted before it is checked: the container is told
from its first bytes, never from its name; the memory a model needs is estimated from its config and from the
tensors' real storage before anything is built; a refused pickle names the code it holds; and our format's
metadata is checked field by field, so callers can use `LoadedModel.metadata` as it is. Every problem is one
`CheckpointError` of one line.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import reprlib
import stat
import zipfile
from pathlib import Path
from typing import Literal, get_origin, get_type_hints

import torch
from torch import Tensor

from .cost import MEMORY_BUDGET, available_memory_bytes, parameter_count
from .model import TimeSformerConfig
from .video import SAMPLING_MODES

Container = Literal["safetensors", "torch zip", "torch pickle"]
Normalization = tuple[tuple[float, ...], tuple[float, ...]]

MAX_DEPTH = 100
"""More blocks than any ViT has (ViT-G: 48); deeper files are refused, since building them alone takes long."""
JSON_LIMIT = 16 * 2**20
"""Largest config.json read: a config with ten thousand labels is well under a megabyte."""
LEGACY_MAGICS = tuple(
    pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=p) for p in range(2, pickle.HIGHEST_PROTOCOL + 1)
)
"""How a legacy (non-zip) `torch.save` file starts: its magic number, pickled."""
SPECIAL_FILES = {
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}
CONFIG_TYPES = {
    name: str if get_origin(hint) is Literal else hint for name, hint in get_type_hints(TimeSformerConfig).items()
}
KIND_WORDS = {
    int: "a positive whole number",
    float: "a finite number of at least 0",
    str: "a string",
    dict: "a JSON object",
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason in words."""


# --- the file ---


def file_type(path: Path) -> Literal["folder", "file"]:
    """A folder or a regular file; anything else (missing, unreadable, a FIFO, socket or device) is refused here,
    before an `open` that could block forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise CheckpointError(f"{path} cannot be read ({error})") from None
    if stat.S_ISDIR(mode):
        return "folder"
    if not stat.S_ISREG(mode):
        kind = next((words for test, words in SPECIAL_FILES.items() if test(mode)), "not a regular file")
        raise CheckpointError(
            f"{path.name} is {kind}, not a checkpoint: give a checkpoint file or a Hugging Face model folder"
        )
    return "file"


def regular_file(path: Path) -> None:
    """Refuse anything but a regular file: a folder, or what `file_type` refuses."""
    if file_type(path) == "folder":
        raise CheckpointError(f"{path} is a folder, not a file")


def container(path: Path) -> Container:
    """What holds the tensors, from the first bytes: safetensors (an 8-byte little-endian header length, then a JSON
    object), a torch zip (`PK\\x03\\x04`) or a legacy torch pickle (its pickled magic number)."""
    regular_file(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(32)
    except OSError as error:
        raise CheckpointError(f"{path.name} cannot be read ({error})") from None
    if not head:
        raise CheckpointError(f"{path.name} is empty (0 bytes)")
    if head[8:9] == b"{":  # a truncated header is still safetensors, for safetensors to report
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "torch zip"
    if head.startswith(LEGACY_MAGICS):
        return "torch pickle"
    raise CheckpointError(
        f"{path.name} is not a checkpoint: by its first bytes, not a readable PyTorch checkpoint (zip or pickle) nor "
        "safetensors; give a .pyth, .pth, .bin or .safetensors file"
    )


def check_storage_fits(path: Path, kind: Container) -> None:
    """Refuse, before reading, a file whose tensors would not fit in memory. A zip's entries may be compressed,
    so their stated sizes count (torch checks them on reading); other containers store tensors as they are."""
    size = path.stat().st_size
    if kind == "torch zip":
        try:
            with zipfile.ZipFile(path) as archive:
                size = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise CheckpointError(
                f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt: {error})"
            ) from None
    require_memory(size, path.name, "its tensors")


def torch_load_error(name: str, text: str) -> CheckpointError:
    """One line for a failed `torch.load`. A pickle that would import code names what it imports; torch's
    advice to switch the protection off is never passed on."""
    code = re.search(r"unsupported global:?\s+(?:global\s+)?([\w.]+)", text, re.IGNORECASE)
    if code:
        return CheckpointError(
            f"{name}: refused: the file contains code ({code.group(1)}), not only tensors; Python objects other "
            "than plain tensors are never unpickled, since that could run any code: re-save it as a state dict or "
            "safetensors"
        )
    if re.search(r"weights[ _]only", text, re.IGNORECASE):
        return CheckpointError(
            f"{name}: refused: its pickle cannot be checked to hold only tensors; re-save it with torch.save's "
            "defaults or as safetensors"
        )
    return CheckpointError(
        f"{name} is not a readable PyTorch checkpoint (truncated or corrupt): {_first_line(text)[:200]}"
    )


def _first_line(text: str) -> str:
    return text.partition("\n")[0]


def check_tensors(state: dict, name: str) -> dict[str, Tensor]:
    """`state` if it maps names to dense CPU tensors of floating-point numbers, all that weights ever are."""
    if not state:
        raise CheckpointError(f"{name} holds an empty state dict: there are no weights in it")
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{name} does not contain a state dict of tensors: its key {key!r:.60} is not a name")
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{name} does not contain a state dict of tensors: {key!r:.80} is not a tensor "
                f"(type {type(value).__name__})"
            )
        if value.layout != torch.strided or value.device.type != "cpu" or not value.is_floating_point():
            raise CheckpointError(
                f"{name}: {key!r:.80} is a {value.layout} {value.dtype} tensor on {value.device.type}; weights "
                "are dense floating-point CPU tensors"
            )
    return state


# --- memory ---


def require_memory(needed: int, name: str, what: str, detail: str = "") -> None:
    """Refuse what would take more than MEMORY_BUDGET of the memory this process can still get."""
    available = available_memory_bytes()
    if needed > MEMORY_BUDGET * available:
        raise CheckpointError(
            f"{name}: refused: {what} would need {_size(needed)}{detail}; this machine has {_size(available)} "
            f"available, of which {MEMORY_BUDGET:.0%} may be used: use a smaller model or a machine with more memory"
        )


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def check_model_size(config: TimeSformerConfig, state: dict[str, Tensor], name: str) -> None:
    """Refuse, before anything is built, a model that would not fit next to the tensors already read (their real
    storage: a stride-0 view of one number costs one number), or one deeper than any TimeSformer."""
    try:
        params = parameter_count(config)  # on the meta device: nothing is allocated
    except (ValueError, RuntimeError, TypeError) as error:  # a grid the scheme cannot tile; sizes beyond int64
        raise CheckpointError(
            f"{name} describes no TimeSformer that can be built ({_first_line(str(error))})"
        ) from None
    storage = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in state.values()}
    count = f"{params / 1e9:.1f} billion" if params >= 1e9 else f"{params / 1e6:.1f} million"
    weights = params * torch.get_default_dtype().itemsize
    require_memory(weights + sum(storage.values()), name, "the model", f" for {count} parameters")
    if config.depth > MAX_DEPTH:
        raise CheckpointError(
            f"{name}: refused: {config.depth} blocks are more than any TimeSformer has (at most {MAX_DEPTH} are loaded)"
        )


def check_stored(state: dict[str, Tensor], name: str) -> None:
    """Refuse tensors with more numbers than their storage holds (stride-0 or overlapping views): copied into a
    model that fits the budget, a few bytes of file would still fill gigabytes. A saved model stores every weight."""
    for key, tensor in state.items():
        stored = tensor.untyped_storage().nbytes()
        if tensor.numel() * tensor.element_size() > stored:
            raise CheckpointError(
                f"{name}: refused: {key!r:.80} has {tensor.numel():,} numbers but stores {stored:,} bytes (an expanded "
                "view); re-save the model's own state dict"
            )


# --- what the file says ---


def read_json(path: Path) -> object:
    """A config file, read without trusting its size or its nesting."""
    regular_file(path)
    try:
        with path.open("rb") as handle:
            text = handle.read(JSON_LIMIT + 1)
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read ({error})") from None
    if len(text) > JSON_LIMIT:
        raise CheckpointError(f"{path} is larger than {JSON_LIMIT // 2**20} MB, too large for a config")
    return parse_json(text, str(path))


def parse_json(text: str | bytes, where: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{where} is not valid JSON ({error})") from None


def check_fields(fields: object, types: dict[str, type], where: str) -> dict:
    """`fields` if it is a JSON object whose fields named in `types` have those types: whole numbers are sizes
    or counts, so positive; other numbers finite and not negative."""
    if not isinstance(fields, dict):
        raise CheckpointError(f"{where}: expected a JSON object, not a {type(fields).__name__}")
    for field, kind in types.items():
        if field in fields and not _has_type(fields[field], kind):
            raise CheckpointError(f"{where}: {field} must be {KIND_WORDS[kind]}, not {reprlib.repr(fields[field])}")
    return fields


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _has_type(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if kind is float:
        return _number(value) and value >= 0
    return isinstance(value, kind)


def config_from(fields: object, where: str) -> TimeSformerConfig:
    """A config from fields nobody vouches for: every name known, every value of its type, the whole consistent."""
    values = check_fields(fields, CONFIG_TYPES, where)
    unknown = sorted(repr(field) for field in set(values) - set(CONFIG_TYPES))
    if unknown:
        raise CheckpointError(f"{where}: unknown field {', '.join(unknown)[:200]}")
    try:
        return TimeSformerConfig(**values)
    except ValueError as error:
        raise CheckpointError(f"{where}: {error}") from None


def normalization(value: object, where: str) -> Normalization:
    """(mean, std) from [mean, std]: three finite numbers each, the stds positive (pixels are divided by them)."""
    if not (isinstance(value, list) and len(value) == 2 and all(map(_three_numbers, value)) and min(value[1]) > 0):
        raise CheckpointError(
            f"{where}: normalization must be [mean, std], three numbers each, stds positive, not {reprlib.repr(value)}"
        )
    mean, std = (tuple(map(float, part)) for part in value)
    return mean, std


def _three_numbers(part: object) -> bool:
    return isinstance(part, list) and len(part) == 3 and all(map(_number, part))


def _whole(text: str) -> bool:
    """True when `int(text)`, as inference reads it, is at least 1."""
    try:
        return int(text) >= 1
    except ValueError:
        return False


def our_metadata(metadata: dict[str, str], name: str) -> tuple[TimeSformerConfig, Normalization, list[str]]:
    """Config, normalisation and labels of our format, and the sampling fields inference reads as they are:
    `sampling_stride` a whole number of at least 1, `sampling` one of SAMPLING_MODES."""
    where = f"{name}: bad metadata"
    missing = [key for key in ("config", "normalization", "labels") if key not in metadata]
    if missing:
        raise CheckpointError(f"{where}: no {', '.join(missing)}; re-save it with save_checkpoint")
    config = config_from(parse_json(metadata["config"], f"{where}: config"), f"{where}: config")
    mean_std = normalization(parse_json(metadata["normalization"], f"{where}: normalization"), where)
    labels = parse_json(metadata["labels"], f"{where}: labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise CheckpointError(f"{where}: labels must be a list of names")
    if len(labels) != config.num_classes:
        raise CheckpointError(
            f"{where}: {len(labels)} labels for {config.num_classes} classes; give one label per class"
        )
    stride = metadata.get("sampling_stride", "1")
    if not _whole(stride):
        raise CheckpointError(f"{where}: sampling_stride must be a whole number of at least 1, not {stride!r:.40}")
    sampling = metadata.get("sampling", "center")
    if sampling not in SAMPLING_MODES:
        raise CheckpointError(f"{where}: sampling must be one of {', '.join(SAMPLING_MODES)}, not {sampling!r:.40}")
    return config, mean_std, labels
