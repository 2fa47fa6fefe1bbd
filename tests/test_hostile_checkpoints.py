"""Hostile checkpoints, as a stranger could hand them to the demo server: every one is refused with one clear
`CheckpointError`, never a traceback, before memory is spent. Every file is generated here."""

import json
import os
import pickle
import re
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from timesformer import TimeSformer, checkpoint_checks, preset
from timesformer.checkpoints import CheckpointError, LoadedModel, load_checkpoint, read_metadata, save_checkpoint
from timesformer.inference import sampling_mode, sampling_stride
from timesformer.key_names import official_state_dict

ROOT = Path(__file__).resolve().parents[1]
LISTINGS = ("  missing: ", "  unexpected: ", "  wrong shape: ")
"""The only lines a message may have after its first: the listings of a checkpoint that does not fit."""
BOMB = r"refused: the model would need [\d.]+ GB for 40\.2 billion parameters; this machine has [\d.]+ [GM]B available"
CODE = r"refused: the file contains code \((os|posix)\.system\), not only tensors"


def tiny() -> TimeSformer:
    torch.manual_seed(0)
    return TimeSformer(preset("tiny", num_classes=3)).eval()


def official() -> dict[str, torch.Tensor]:
    """The tiny model's weights in the official layout."""
    return official_state_dict(tiny())


def expanded(*shape: int) -> torch.Tensor:
    """A tensor of any size whose storage is one number: what a few-KB memory bomb is made of."""
    return torch.zeros(1).expand(*shape)


def ours(path: Path, fields: dict | None = None, **metadata: str | None) -> Path:
    """The tiny model in our format, with its config fields and metadata changed (None drops a field)."""
    save_checkpoint(path, LoadedModel(tiny(), (0.45,) * 3, (0.225,) * 3, ["a", "b", "c"], "ours"), sampling_stride="1")
    info = read_metadata(path)
    info["config"] = json.dumps(json.loads(info["config"]) | (fields or {}))
    info |= metadata
    save_file(load_file(str(path)), str(path), metadata={k: v for k, v in info.items() if v is not None})
    return path


def hf_folder(path: Path, **changes) -> Path:
    """A folder whose config.json is a Hugging Face TimeSformer config with fields changed."""
    path.mkdir()
    config = {
        "model_type": "timesformer",
        "attention_type": "divided_space_time",
        "num_frames": 8,
        "image_size": 32,
        "patch_size": 8,
        "num_channels": 3,
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "id2label": {"0": "a", "1": "b", "2": "c"},
    }
    (path / "config.json").write_text(json.dumps(config | changes))
    return path


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def torch_save(path: Path, obj: object, legacy: bool = False) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def unix_socket(path: Path) -> Path:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def device(path: Path) -> Path:
    path.symlink_to(os.devnull)
    return path


def folder_of_notes(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("not a model")
    return path


BOMB_STATE = {
    "model.patch_embed.proj.weight": expanded(768, 3, 16, 16),
    "model.pos_embed": expanded(1, 197, 768),
    "model.time_embed": expanded(1, 8, 768),
    "model.head.weight": expanded(400, 768),
    "model.blocks.0.mlp.fc1.weight": expanded(3072, 768),
    "model.blocks.0.temporal_attn.qkv.weight": expanded(10**6, 768),
    "model.blocks.3999.x": expanded(1),
}
"""3 KB of stride-0 tensors that say: a divided ViT-B with 4000 blocks, 40 billion parameters."""
BASE_4000 = {"image_size": 224, "patch_size": 16, "embed_dim": 768, "depth": 4000, "num_heads": 12, "num_classes": 3}
NOT_A_CHECKPOINT = r"is not a checkpoint: by its first bytes"
STRIDE = r"sampling_stride must be a whole number of at least 1, not "

CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    # 1. memory bombs: a few KB that claim a 160 GB model, and shapes that do not fit
    "bomb.pth": (lambda p: torch_save(p, BOMB_STATE), BOMB),
    "bomb.safetensors": (lambda p: ours(p, BASE_4000), BOMB),
    "misfit.pth": (
        lambda p: torch_save(p, official() | {"model.norm.weight": expanded(10**6, 768)}),
        r"wrong shape: norm\.weight \(1000000, 768\) != \(64,\)",
    ),
    "inflated.pth": (
        lambda p: torch_save(p, {k: expanded(*v.shape) for k, v in official().items()}),
        r"refused: 'cls_token' has 64 numbers but stores 4 bytes \(an expanded view\)",
    ),
    "huge_size.safetensors": (lambda p: ours(p, {"num_frames": 10**30}), r"describes no TimeSformer that can be built"),
    "deep.pth": (
        lambda p: torch_save(p, official() | {"model.blocks.499.norm1.weight": torch.ones(64)}),
        r"refused: 500 blocks are more than any TimeSformer has",
    ),
    # 2. pickles that would run code
    "code.pth": (lambda p: torch_save(p, {"weights": RunsCode(p.with_suffix(".ran"))}), CODE),
    "code_legacy.pth": (lambda p: torch_save(p, {"weights": RunsCode(p.with_suffix(".ran"))}, legacy=True), CODE),
    # 3. neither container, whatever the name says
    "junk.safetensors": (lambda p: write(p, b"\x00\x01 not a tensor file " * 50), NOT_A_CHECKPOINT),
    "plain.pkl": (lambda p: write(p, pickle.dumps({"weights": [1.0, 2.0]})), NOT_A_CHECKPOINT),
    # 4. configs and metadata that say the wrong thing
    "hf_list": (
        lambda p: write(folder_of_notes(p) / "config.json", "[1, 2]").parent,
        r"config\.json is not a TimeSformer config: expected a JSON object, not a list",
    ),
    "hf_types": (
        lambda p: hf_folder(p, num_frames="eight"),
        r"num_frames must be a positive whole number, not 'eight'",
    ),
    "hf_labels": (lambda p: hf_folder(p, id2label={"first": "a"}), r"id2label must map the numbers 0 to N-1"),
    "hf_nested": (lambda p: write(folder_of_notes(p) / "config.json", "[" * 100_000).parent, r"is not valid JSON"),
    "config_not_json.safetensors": (lambda p: ours(p, config="{depth: 4"), r"bad metadata: config is not valid JSON"),
    "unknown_field.safetensors": (lambda p: ours(p, {"colour": "red"}), r"config: unknown field 'colour'"),
    "depth_text.safetensors": (lambda p: ours(p, {"depth": "4"}), r"depth must be a positive whole number, not '4'"),
    "no_normalization.safetensors": (lambda p: ours(p, normalization=None), r"bad metadata: no normalization"),
    "two_value_mean.safetensors": (
        lambda p: ours(p, normalization="[[0.4, 0.4], [0.2, 0.2, 0.2]]"),
        r"normalization must be \[mean, std\], three numbers each",
    ),
    "stride_zero.safetensors": (lambda p: ours(p, sampling_stride="0"), STRIDE + "'0'"),
    "stride_text.safetensors": (lambda p: ours(p, sampling_stride="abc"), STRIDE + "'abc'"),
    "sampling.safetensors": (lambda p: ours(p, sampling="random"), r"sampling must be one of center, uniform, not"),
    "few_labels.safetensors": (lambda p: ours(p, labels='["a", "b"]'), r"2 labels for 3 classes"),
    "pos_1d.pth": (
        lambda p: torch_save(p, official() | {"model.pos_embed": torch.zeros(17)}),
        r"pos_embed has shape \(17,\); a TimeSformer's has 3 non-empty dimensions",
    ),
    "empty_state.pth": (lambda p: torch_save(p, {}), r"holds an empty state dict"),
    "not_a_tensor.pth": (
        lambda p: torch_save(p, official() | {"model.note": 3}),
        r"'model\.note' is not a tensor \(type int\)",
    ),
    "sparse.pth": (
        lambda p: torch_save(p, official() | {"model.norm.weight": torch.ones(64).to_sparse()}),
        r"'model\.norm\.weight' is a torch\.sparse_coo .* weights are dense floating-point CPU tensors",
    ),
    "no_blocks.pth": (
        lambda p: torch_save(p, {k: v for k, v in official().items() if ".blocks." not in k}),
        r"has no blocks\.N\.\* tensors",
    ),
    # 5. paths that are no file to read
    "folder": (folder_of_notes, r"is a folder without config\.json, so not a Hugging Face model"),
    "fifo.pth": (fifo, r"is a FIFO \(named pipe\), not a checkpoint"),
    "socket.pth": (unix_socket, r"is a socket, not a checkpoint"),
    "device.pth": (device, r"is a character device, not a checkpoint"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """Every case, generated once in one short folder (a socket's path has to be short)."""
    folder = tmp_path_factory.mktemp("hostile")
    for name, (make, _) in CASES.items():
        make(folder / name)
    return folder


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The device of every TimeSformer built during the test: a refusal may build one on "meta", never on "cpu"."""
    devices = []
    original = TimeSformer.__init__

    def spy(self, config):
        devices.append(torch.get_default_device().type)
        original(self, config)

    monkeypatch.setattr(TimeSformer, "__init__", spy)
    return devices


def assert_one_clear_line(message: str, pattern: str) -> None:
    _, *rest = message.split("\n")
    assert all(line.startswith(LISTINGS) for line in rest), message
    assert re.search(pattern, message), message
    assert "weights_only" not in message and "Traceback" not in message


@pytest.mark.parametrize("name", CASES)
def test_hostile_file_is_one_clear_error_and_allocates_no_model(name: str, hostile: Path, builds: list[str]) -> None:
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(hostile / name)
    assert_one_clear_line(str(refused.value), CASES[name][1])
    assert "cpu" not in builds, "a model was allocated before the refusal"
    assert not list(hostile.glob("*.ran")), "unpickling ran the file's code"


@pytest.fixture(scope="module")
def cli_baseline_rss() -> int:
    """Peak memory of the CLI when it loads nothing: what importing it costs."""
    code, _, peak = run_cli("info", "--preset", "tiny")
    assert code == 0
    return peak


def run_cli(*argv: str) -> tuple[int, str, int]:
    """Exit code, stderr and peak resident memory (bytes) of `python -m timesformer ARGV` in a fresh process.
    One still running after five minutes is killed, so a read that blocks fails the test instead of hanging it."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "timesformer", *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        guard = threading.Timer(300, process.kill)
        guard.start()
        _, status, usage = os.wait4(process.pid, 0)  # wait4, unlike Popen.wait, gives this child's peak memory
        guard.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        return process.returncode, stderr.read().decode(), usage.ru_maxrss * 1024


CLI_FAST = {
    "bomb.pth",
    "bomb.safetensors",
    "misfit.pth",
    "code.pth",
    "code_legacy.pth",
    "junk.safetensors",
    "hf_types",
    "stride_text.safetensors",
    "pos_1d.pth",
    "fifo.pth",
}
"""One case per kind of refusal (a fresh process costs a second or two); the other cases run as `slow`."""


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=() if name in CLI_FAST else pytest.mark.slow) for name in CASES]
)
def test_cli_answers_a_hostile_file_with_one_error_line(name: str, hostile: Path, cli_baseline_rss: int) -> None:
    code, stderr, peak = run_cli("info", str(hostile / name))
    assert code == 2 and "Traceback" not in stderr, f"exit code {code}, stderr: {stderr}"
    assert stderr.startswith("error: ") and stderr.count("error: ") == 1 and stderr.endswith("\n"), stderr
    assert_one_clear_line(stderr.removeprefix("error: ").removesuffix("\n"), CASES[name][1])
    grown = peak - cli_baseline_rss
    assert grown < 200 * 2**20, f"refusing took {grown / 2**20:.0f} MB more than loading nothing"


def test_format_is_told_from_the_content_not_the_name(tmp_path) -> None:
    model = tiny()
    save_checkpoint(tmp_path / "ours.pt", LoadedModel(model, (0.45,) * 3, (0.225,) * 3, ["a", "b", "c"], "ours"))
    torch.save({"model_state": official_state_dict(model)}, tmp_path / "official.safetensors")
    torch.save(official_state_dict(model), tmp_path / "legacy.safetensors", _use_new_zipfile_serialization=False)
    video = torch.randn(1, 3, 8, 32, 32)
    for name, source in [("ours.pt", "ours"), ("official.safetensors", "official"), ("legacy.safetensors", "plain")]:
        loaded = load_checkpoint(tmp_path / name, num_heads=4)  # the official layouts do not store the head count
        assert loaded.source_format == source and loaded.config == model.config, name
        with torch.no_grad():
            torch.testing.assert_close(loaded.model(video), model(video))


def test_compressed_tensors_beyond_the_budget_are_refused_before_reading(tmp_path, monkeypatch) -> None:
    """A zip may deflate gigabytes of zeros into a small file; its stated sizes are checked before torch reads it."""
    torch.save({"model_state": official_state_dict(tiny())}, tmp_path / "plain.pyth")
    with (
        zipfile.ZipFile(tmp_path / "plain.pyth") as plain,
        zipfile.ZipFile(tmp_path / "deflated.pyth", "w", compression=zipfile.ZIP_DEFLATED) as deflated,
    ):
        for info in plain.infolist():
            deflated.writestr(info.filename, plain.read(info))
    assert load_checkpoint(tmp_path / "deflated.pyth").source_format == "official"  # torch reads deflated zips
    monkeypatch.setattr(checkpoint_checks, "available_memory_bytes", lambda: 10**6)
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("torch.load ran"))
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(tmp_path / "deflated.pyth")
    assert_one_clear_line(str(refused.value), r"refused: its tensors would need [\d.]+ MB; this machine has 1\.0 MB")


def test_checked_metadata_is_what_inference_reads(tmp_path) -> None:
    loaded = load_checkpoint(ours(tmp_path / "m.safetensors", sampling_stride="4", sampling="uniform"))
    assert sampling_stride(loaded) == 4 and sampling_mode(loaded) == "uniform"
