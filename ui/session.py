"""What this browser session has loaded: the model, the video and the frame sampling picked in the sidebar.

The sidebar (`ui.sidebar`) stores its choice on every run, before the page, so every page reads the same one
with `current_model()` / `current_clip()`. Models are cached by path and file stamp (a replaced file is a new
model), clips by the video's content and how it is read, so two models that read alike share one decoded clip.
Sessions share these caches and nothing else.

Uploaded videos are opened with `untrusted=True`: the first decode runs in a child process, so a file that
crashes the decoder costs an error message, not the server.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st
import torch

import analysis.demo_card as demo_card
from timesformer import demo
from timesformer.checkpoints import CheckpointError, LoadedModel, load_checkpoint
from timesformer.decoding import VideoError
from timesformer.demo import demo_checkpoint
from timesformer.inference import sampling_mode, sampling_stride
from timesformer.runtime import inference_copy
from timesformer.video import Clip, load_clip
from ui import uploads

DEMO_DATASETS = ("motion", "appearance")
DATASET_NOTES = {
    "motion": "generated clips; the class is a movement, as in SSv2 (no single frame tells it)",
    "appearance": "generated clips; the class is the object's shape and texture, as in Kinetics",
}


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video a model reads: "center", one clip of frames `stride` apart from the middle of
    the video (the official K400 test), or "uniform", the middle frame of each of T equal parts of the whole
    video (the SSv2 test; `stride` unused)."""

    mode: str
    stride: int = 1

    def describe(self, frames: int) -> str:
        if self.mode == "uniform":
            return f"{frames} frames spread over the whole video, one from the middle of each of {frames} equal parts"
        if self.stride == 1:
            return f"{frames} consecutive frames from the middle of the video"
        return f"{frames} frames {self.stride} apart, from the middle of the video"


@dataclass(frozen=True)
class Model:
    """A loaded model, what identifies it for the caches, and the name it is shown by."""

    loaded: LoadedModel
    path: str
    key: str
    name: str

    @property
    def scheme(self) -> str:
        return self.loaded.config.scheme

    @property
    def bf16(self) -> bool:
        """A bfloat16 copy: faster where the CPU has bf16 matmuls, without gradients."""
        return next(self.loaded.model.parameters()).dtype == torch.bfloat16

    @property
    def dataset(self) -> str | None:
        return self.loaded.metadata.get("dataset")

    @property
    def is_demo(self) -> bool:
        """One of the shipped demo models: it knows only the generated classes."""
        return Path(self.path).parent.resolve() == demo.DEMO_DIR.resolve()

    @property
    def record(self) -> dict | None:
        """What the model card measured for this shipped model through video files (`demo_card.recorded`):
        held-out `accuracy`, `twin_accuracy`, `samples`; None for any other model, without a record, or when the
        record is of another model by that name (TIMESFORMER_DEMO_DIR points elsewhere: other parameters)."""
        found = demo_card.recorded(Path(self.path).stem) if self.is_demo else None
        params = self.loaded.model.num_parameters()
        return found if found is not None and found.get("params", params) == params else None

    @property
    def trained_sampling(self) -> Sampling:
        """The sampling its checkpoint records (`timesformer.inference`), the default for reading videos."""
        return Sampling(sampling_mode(self.loaded), sampling_stride(self.loaded))

    def reading(self, sampling: Sampling | None = None) -> tuple:
        """What decides the clip this model reads from a video: frames, sampling (its own when None), crop size
        and normalisation."""
        config, sampling = self.loaded.config, sampling or self.trained_sampling
        return (config.num_frames, sampling.stride, sampling.mode, config.image_size, self.loaded.mean, self.loaded.std)


def measured(record: dict) -> str:
    """'Held-out accuracy **92.3%** · motion samples **29/30**, measured through video files'."""
    parts = [f"Held-out accuracy **{record['accuracy']:.1%}**"]
    samples = record.get("samples")
    if samples and samples.get("total"):
        parts.append(f"{record.get('dataset', '')} samples **{samples['correct']}/{samples['total']}**".strip())
    return " · ".join(parts) + ", measured through video files"


@dataclass(frozen=True)
class Video:
    """A video file to read: a bundled sample (trusted, its class known) or an upload (untrusted)."""

    path: str
    title: str
    key: str
    untrusted: bool
    truth: str | None = None


@dataclass(frozen=True)
class Opened:
    """The outcome of reading a video for one sampling: the clip, or the reason it could not be read."""

    clip: Clip | None
    error: str | None


@dataclass(frozen=True)
class Choice:
    """The sidebar's choice: model and video (or why there is none) and the sampling (None: each model's own)."""

    model: Model | None
    model_error: str | None
    video: Video | None
    video_error: str | None
    sampling: Sampling | None


def file_key(path: str | Path) -> str:
    """Path, modification time and size: enough to tell a replaced checkpoint from the one cached."""
    stat = Path(path).stat()
    return f"{Path(path).resolve()}|{stat.st_mtime_ns}|{stat.st_size}"


@st.cache_resource(max_entries=8, show_spinner=False)
def _load(path: str, key: str, num_frames: int | None, num_heads: int | None, bf16: bool) -> LoadedModel:
    loaded = load_checkpoint(path, num_frames=num_frames, num_heads=num_heads)
    loaded.model.eval()
    return replace(loaded, model=inference_copy(loaded.model, torch.bfloat16)) if bf16 else loaded


def open_model(
    path: str | Path,
    num_frames: int | None = None,
    num_heads: int | None = None,
    name: str | None = None,
    bf16: bool = False,
) -> Model:
    """Load (or fetch from the cache) a checkpoint, shown as `name` (its file name by default), in bfloat16 if
    asked (only offered where the CPU runs it fast); raises CheckpointError with a readable reason."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no file or folder at {path}")
    key = f"{file_key(path)}|{num_frames}|{num_heads}" + ("|bf16" if bf16 else "")
    with st.spinner(f"Loading {name or path.name}…"):
        return Model(_load(str(path), key, num_frames, num_heads, bf16), str(path), key, name or path.name)


def demo_model(scheme: str, dataset: str, bf16: bool = False) -> Model:
    """A shipped demo model; raises DemoMissing when it is not there."""
    return open_model(demo_checkpoint(scheme, dataset), bf16=bf16)


def save_upload(name: str, data: bytes, folder: Path | None = None) -> Video:
    """Store uploaded video bytes once per content (see `ui.uploads`) and describe them as an untrusted video."""
    suffix = Path(name).suffix.lower()
    path = uploads.store(data, suffix if suffix[1:] in uploads.VIDEO_TYPES else ".bin", folder)
    return Video(str(path), name, f"upload:{path.stem}", untrusted=True)


@st.cache_resource(max_entries=64, show_spinner=False)
def _read(path: str, key: str, untrusted: bool, reading: tuple) -> Opened:
    frames, stride, mode, size, mean, std = reading
    try:
        clip = load_clip(
            path,
            num_frames=frames,
            stride=stride,
            crop_size=size,
            crops=3,
            mean=mean,
            std=std,
            mode=mode,
            untrusted=untrusted,
        )
    except (VideoError, OSError, RuntimeError) as error:  # decoders raise the last two on files the probe passed
        return Opened(None, str(error))
    return Opened(clip, None)


def choice() -> Choice:
    """What the sidebar chose in this run."""
    return st.session_state["_choice"]


def clip_key(video: Video, model: Model) -> str:
    """What identifies the clip `model` reads from `video`, for the caches of results computed on it."""
    return f"{video.key}|{model.reading(choice().sampling)}"


def read_video(video: Video, model: Model) -> Opened:
    """The clip `model` reads from `video` with the sidebar's sampling (3 spatial crops; index 1 is the centre),
    or the reason it failed. Failures are cached too, so a broken upload is probed once, not on every rerun."""
    with st.spinner(f"Reading {video.title}…"):
        opened = _read(video.path, video.key, video.untrusted, model.reading(choice().sampling))
    if opened.error:  # messages name the file: the upload's name, not where the server keeps it
        return Opened(None, opened.error.replace(video.path, video.title).replace(Path(video.path).name, video.title))
    return opened


# --- what pages call: each stops the page with one message when there is nothing to show ---


def sidebar_model() -> Model | None:
    """The sidebar's model, or None when it could not be loaded."""
    return choice().model


def current_model() -> Model:
    """The sidebar's model; stops the page with the reason when there is none."""
    if choice().model is None:
        st.error(choice().model_error, icon=":material/neurology:")
        st.stop()
    return choice().model


def current_video() -> Video:
    if choice().video is None:
        st.info(choice().video_error, icon=":material/movie:")
        st.stop()
    return choice().video


def current_clip(model: Model) -> tuple[Video, Clip]:
    """The sidebar's video read for `model`; stops the page with the reason when it cannot be read."""
    video = current_video()
    opened = read_video(video, model)
    if opened.error:
        st.error(f"**{video.title}** cannot be used: {opened.error}", icon=":material/movie:")
        st.stop()
    return video, opened.clip
