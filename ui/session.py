"""What this browser session has loaded: the model and the video picked in the sidebar, opened through caches.

app.py draws the sidebar on every run, before the page, so the pickers keep their state across page switches
and every page reads the same choice with `current_model()` / `current_clip()`. Models are cached by path and
file stamp (a replaced file is a new model), clips by the video's content and the sampling the model asks for,
so two models that sample alike share one decoded clip. Sessions share these caches and nothing else.

Uploads are written to a temporary file named by their hash and opened with `untrusted=True`: the first decode
runs in a child process, so a file that crashes the decoder costs an error message, not the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from analysis.samples import samples
from timesformer import demo
from timesformer.checkpoints import CheckpointError, LoadedModel, load_checkpoint
from timesformer.demo import DemoMissing, demo_checkpoint
from timesformer.inference import sampling_mode, sampling_stride
from timesformer.schemes import SCHEMES, scheme_block
from timesformer.video import Clip, VideoError, load_clip

VIDEO_TYPES = ("mp4", "avi", "mov", "webm", "mkv")
UPLOAD_DIR = Path(tempfile.gettempdir()) / "timesformer-explorer-uploads"
DEMO_DATASETS = ("motion", "appearance")
DATASET_NOTES = {
    "motion": "generated clips; the class is a movement, as in SSv2 (no single frame tells it)",
    "appearance": "generated clips; the class is the object's shape and texture, as in Kinetics",
}
def scheme_title(scheme: str) -> str:
    """'T+S · divided space-time': the paper's short name and ours."""
    return scheme_block(scheme).label()


@dataclass(frozen=True)
class Model:
    """A loaded model and what identifies it for the caches."""

    loaded: LoadedModel
    path: str
    key: str

    @property
    def scheme(self) -> str:
        return self.loaded.config.scheme

    @property
    def dataset(self) -> str | None:
        return self.loaded.metadata.get("dataset")

    @property
    def accuracy(self) -> float | None:
        value = self.loaded.metadata.get("val_accuracy")
        return None if value is None else float(value)

    @property
    def validation_clips(self) -> int | None:
        """How many validation clips `accuracy` was measured on (from the training config in the metadata)."""
        try:
            return int(json.loads(self.loaded.metadata["train_config"])["val_size"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def sampling(self) -> tuple:
        """What decides the clip this model reads from a video: frames, stride, mode, crop size, normalisation."""
        config = self.loaded.config
        return (config.num_frames, sampling_stride(self.loaded), sampling_mode(self.loaded), config.image_size,
                self.loaded.mean, self.loaded.std)


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


def file_key(path: str | Path) -> str:
    """Path, modification time and size: enough to tell a replaced checkpoint from the one cached."""
    stat = Path(path).stat()
    return f"{Path(path).resolve()}|{stat.st_mtime_ns}|{stat.st_size}"


@st.cache_resource(max_entries=8, show_spinner=False)
def _load(path: str, key: str, num_frames: int | None, num_heads: int | None) -> LoadedModel:
    loaded = load_checkpoint(path, num_frames=num_frames, num_heads=num_heads)
    loaded.model.eval()
    return loaded


def open_model(path: str | Path, num_frames: int | None = None, num_heads: int | None = None) -> Model:
    """Load (or fetch from the cache) a checkpoint; raises CheckpointError with a readable reason."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"no file or folder at {path}")
    key = f"{file_key(path)}|{num_frames}|{num_heads}"
    with st.spinner(f"Loading {path.name}…"):
        return Model(_load(str(path), key, num_frames, num_heads), str(path), key)


def demo_model(scheme: str, dataset: str) -> Model:
    """A shipped demo model; raises DemoMissing when it is not there."""
    return open_model(demo_checkpoint(scheme, dataset))


def save_upload(name: str, data: bytes, folder: Path = UPLOAD_DIR) -> Video:
    """Write uploaded bytes to `folder/<hash><suffix>` (atomically, once per content) and describe them."""
    digest = hashlib.sha256(data).hexdigest()[:24]
    suffix = Path(name).suffix.lower()
    path = folder / f"{digest}{suffix if suffix[1:] in VIDEO_TYPES else '.bin'}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)
    return Video(str(path), name, f"upload:{digest}", untrusted=True)


@st.cache_resource(max_entries=64, show_spinner=False)
def _read(path: str, key: str, untrusted: bool, sampling: tuple) -> Opened:
    frames, stride, mode, size, mean, std = sampling
    try:
        clip = load_clip(path, num_frames=frames, stride=stride, crop_size=size, crops=3, mean=mean, std=std,
                         mode=mode, untrusted=untrusted)
    except (VideoError, OSError, RuntimeError) as error:  # decoders raise the last two on files the probe passed
        return Opened(None, str(error))
    return Opened(clip, None)


def clip_key(video: Video, model: Model) -> str:
    """What identifies the clip `model` reads from `video`, for the caches of results computed on it."""
    return f"{video.key}|{model.sampling}"


def read_video(video: Video, model: Model) -> Opened:
    """The clip `model` expects from `video` (3 spatial crops; index 1 is the centre), or the reason it failed.

    Failures are cached too, so a broken upload is probed once, not on every rerun.
    """
    with st.spinner(f"Reading {video.title}…"):
        opened = _read(video.path, video.key, video.untrusted, model.sampling)
    if opened.error:  # messages name the file: the upload's name, not its temporary one
        return Opened(None, opened.error.replace(Path(video.path).name, video.title))
    return opened


# --- the sidebar: pickers and a summary of what is loaded ---

def _model_picker() -> tuple[Model | None, str | None]:
    source = st.radio("Model source", ["Shipped demo", "Local checkpoint"], horizontal=True, key="model_source",
                      label_visibility="collapsed")
    if source == "Shipped demo":
        scheme = st.selectbox("Attention scheme", list(SCHEMES), index=list(SCHEMES).index("divided_space_time"),
                              format_func=scheme_title, key="demo_scheme")
        shipped = [d for d in DEMO_DATASETS if (demo.DEMO_DIR / f"{scheme}_{d}.safetensors").exists()]
        dataset = st.selectbox("Trained on", shipped or DEMO_DATASETS, key="demo_dataset",
                               help="The generated dataset the demo model was trained on (those shipped for "
                               "this scheme).")
        try:
            return demo_model(scheme, dataset), None
        except (DemoMissing, CheckpointError) as error:
            return None, f"The shipped demo model is missing or unreadable: {error}"
    path = st.text_input("Checkpoint path", key="checkpoint_path", placeholder="/path/to/model.pyth or HF folder",
                         help="Official .pyth, Hugging Face folder or file, MMAction2 .pth, or our .safetensors.")
    with st.expander("Checkpoint without a config"):
        frames = st.number_input("Frames (0: infer)", 0, 128, 0, key="checkpoint_frames")
        heads = st.number_input("Heads (0: infer)", 0, 64, 0, key="checkpoint_heads")
    if not path.strip():
        return None, "Enter the path of a checkpoint on this machine."
    try:
        return open_model(path.strip(), num_frames=frames or None, num_heads=heads or None), None
    except CheckpointError as error:
        return None, f"Could not load this checkpoint: {error}"


def _video_picker() -> tuple[Video | None, str | None]:
    source = st.radio("Video source", ["Bundled sample", "Upload"], horizontal=True, key="video_source",
                      label_visibility="collapsed")
    if source == "Bundled sample":
        bundled = samples()
        if not bundled:
            return None, "No sample clips are bundled: run `python -m analysis.samples`."
        sample = st.selectbox("Sample clip", bundled, format_func=lambda s: s.title, key="sample")
        return Video(str(sample.path), sample.title, f"sample:{file_key(sample.path)}", False, sample.label), None
    upload = st.file_uploader("Video file", type=list(VIDEO_TYPES), key="upload",
                              help="Up to 200 MB; it is checked in a separate process before it is decoded.")
    if upload is None:
        return None, "Upload a video (mp4, avi, mov, webm or mkv)."
    saved = st.session_state.get("_saved_upload")
    if saved is None or saved[0] != upload.file_id:  # hash and write a large upload once, not on every rerun
        st.session_state["_saved_upload"] = (upload.file_id, save_upload(upload.name, upload.getvalue()))
    return st.session_state["_saved_upload"][1], None


def sidebar() -> None:
    """Draw the pickers and the summary card; the choice is read back by `current_model` / `current_clip`."""
    with st.sidebar:
        st.markdown("#### Model")
        model, model_error = _model_picker()
        st.markdown("#### Video")
        video, video_error = _video_picker()
        st.session_state["_choice"] = (model, model_error, video, video_error)
        st.divider()
        _summary(model, model_error, video, video_error)


def _summary(model: Model | None, model_error: str | None, video: Video | None, video_error: str | None) -> None:
    with st.container(border=True):
        if model is None:
            st.error(model_error, icon=":material/neurology:")
        else:
            config = model.loaded.config
            st.markdown(f":material/neurology: **{scheme_title(model.scheme)}**  \n`{Path(model.path).name}`")
            lines = []
            if model.dataset:
                lines.append(f"Trained on **{model.dataset}**: {DATASET_NOTES.get(model.dataset, 'generated clips')}.")
            if model.accuracy is not None:
                clips = f" ({model.validation_clips} clips)" if model.validation_clips else ""
                lines.append(f"Validation accuracy **{model.accuracy:.1%}**{clips}.")
            lines.append(f"{config.num_frames} frames × {config.image_size}² px, patch {config.patch_size}.")
            st.caption("  \n".join(lines))
        if video is None:
            st.info(video_error, icon=":material/movie:")
            return
        st.markdown(f":material/movie: **{video.title}**")
        if model is None:
            return
        opened = read_video(video, model)
        if opened.error:
            st.error(opened.error)
            return
        info = opened.clip.info
        st.caption(
            f"{info.num_frames} frames · {info.fps:g} fps · {info.width}×{info.height} px.  \n"
            f"The model reads frames {', '.join(map(str, opened.clip.indices))}."
        )


# --- what pages call ---

def sidebar_model() -> Model | None:
    """The sidebar's model, or None when it could not be loaded (the sidebar says why)."""
    return st.session_state["_choice"][0]


def current_model() -> Model:
    """The sidebar's model; stops the page with the reason when there is none."""
    model, error, _, _ = st.session_state["_choice"]
    if model is None:
        st.error(error)
        st.stop()
    return model


def current_video() -> Video:
    _, _, video, error = st.session_state["_choice"]
    if video is None:
        st.info(error)
        st.stop()
    return video


def current_clip(model: Model) -> tuple[Video, Clip]:
    """The sidebar's video read for `model`; stops the page with the reason when it cannot be read."""
    video = current_video()
    opened = read_video(video, model)
    if opened.error:
        st.error(f"**{video.title}** cannot be used: {opened.error}")
        st.stop()
    return video, opened.clip
