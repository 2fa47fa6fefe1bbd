"""The sidebar: model, video and frame-sampling pickers, and a summary of what is loaded.

Drawn on every run before the page, so the pickers keep their state across page switches; the choice is stored
for the pages (`ui.session.choice`). Problems are said once, by the page that needs the model or the video: the
summary here only marks them. A checkpoint comes from the shipped demo models, an upload, or (only where the
server allows it, see `ui.server_paths`) a path on the server.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.samples import samples
from timesformer import demo
from timesformer.checkpoints import CheckpointError
from timesformer.demo import DemoMissing
from timesformer.inference import OFFICIAL_STRIDES
from timesformer.runtime import PrecisionError, fast_bf16_available
from timesformer.schemes import SCHEMES, scheme_block
from ui import uploads
from ui.server_paths import PathRefused, checked_path, paths_allowed
from ui.session import (
    DATASET_NOTES,
    DEMO_DATASETS,
    Choice,
    Model,
    Sampling,
    Video,
    demo_model,
    file_key,
    measured,
    open_model,
    read_video,
    save_upload,
)

STRIDES = (1, 2, 4, 8, 16, 32, 64)
SAMPLING_CHOICES = {"trained": "as trained", "uniform": "whole video (SSv2)", "center": "middle clip (K400)"}


def _demo_picker(bf16: bool) -> tuple[Model | None, str | None]:
    schemes = list(SCHEMES)
    scheme = st.selectbox(
        "Attention scheme",
        schemes,
        index=schemes.index("divided_space_time"),
        format_func=lambda s: scheme_block(s).label(),
        key="demo_scheme",
    )
    shipped = [d for d in DEMO_DATASETS if (demo.DEMO_DIR / f"{scheme}_{d}.safetensors").exists()]
    dataset = st.selectbox(
        "Trained on",
        shipped or DEMO_DATASETS,
        key="demo_dataset",
        help="The generated dataset the demo model was trained on (those shipped for this scheme).",
    )
    try:
        return demo_model(scheme, dataset, bf16), None
    except (DemoMissing, CheckpointError) as error:
        return None, f"The shipped demo model is missing or unreadable: {error}"
    except PrecisionError as error:
        return None, f"bfloat16 is not available: {error}"


def _saved_checkpoint(upload) -> Path:
    """The uploaded checkpoint on disk (a zipped Hugging Face folder unpacked), stored once per upload."""
    saved, identity = st.session_state.get("_saved_checkpoint"), (upload.file_id, upload.name, upload.size)
    if saved is None or saved[0] != identity:
        data = upload.getvalue()
        path = (
            uploads.unpack_model_zip(data)
            if upload.name.lower().endswith(".zip")
            else uploads.store(data, Path(upload.name).suffix.lower())
        )
        st.session_state["_saved_checkpoint"] = saved = (identity, path)
    uploads.touch(saved[1])
    return saved[1]


def _checkpoint_picker(source: str, bf16: bool) -> tuple[Model | None, str | None]:
    if source == "Upload":
        upload = st.file_uploader(
            "Checkpoint",
            type=list(uploads.CHECKPOINT_TYPES),
            key="checkpoint_upload",
            max_upload_size=uploads.CHECKPOINT_MB,
            help="Our .safetensors, an official .pyth, an MMAction2 .pth, or a Hugging Face model folder as a .zip.",
        )
    else:
        text = st.text_input(
            "Checkpoint path",
            key="checkpoint_path",
            placeholder="/path/to/model.pyth or HF folder",
            help="Official .pyth, Hugging Face folder or file, MMAction2 .pth, or our .safetensors, "
            "inside the folders this server allows.",
        )
    with st.expander("Checkpoint without a config"):
        frames = st.number_input("Frames (0: infer)", 0, 128, 0, key="checkpoint_frames")
        heads = st.number_input("Heads (0: infer)", 0, 64, 0, key="checkpoint_heads")
    try:
        if source == "Upload":
            if upload is None:
                return None, "Upload a checkpoint: our .safetensors, an official .pyth or a zipped Hugging Face folder."
            path, name = _saved_checkpoint(upload), upload.name
        else:
            if not text.strip():
                return None, "Enter the path of a checkpoint on this server."
            path = checked_path(text)
            name = path.name
        model = open_model(path, num_frames=frames or None, num_heads=heads or None, name=name, bf16=bf16)
    except (uploads.UploadError, PathRefused) as error:
        return None, f"Could not use this checkpoint: {error}"
    except CheckpointError as error:
        return None, f"Could not load this checkpoint: {str(error).replace(str(path), name).replace(path.name, name)}"
    except PrecisionError as error:
        return None, f"bfloat16 is not available: {error}"
    return model, None


def _model_picker() -> tuple[Model | None, str | None]:
    sources = ["Shipped demo", "Upload", *(["Server path"] if paths_allowed() else [])]
    source = st.radio("Model source", sources, horizontal=True, key="model_source", label_visibility="collapsed")
    bf16 = fast_bf16_available() and st.toggle(
        "bfloat16",
        key="bf16",
        help="Run the model in bfloat16: this CPU has bf16 matmuls in hardware (AMX or AVX512-BF16), so a large "
        "model answers about twice as fast; logits differ from float32 in the second or third digit. "
        "Gradient-weighted rollout needs float32.",
    )
    return _demo_picker(bf16) if source == "Shipped demo" else _checkpoint_picker(source, bf16)


def _saved_video(upload) -> Video:
    """The uploaded video on disk, hashed and written once per upload, not on every rerun."""
    saved, identity = st.session_state.get("_saved_upload"), (upload.file_id, upload.name, upload.size)
    if saved is None or saved[0] != identity:
        st.session_state["_saved_upload"] = saved = (identity, save_upload(upload.name, upload.getvalue()))
    uploads.touch(saved[1].path)
    return saved[1]


def _video_picker() -> tuple[Video | None, str | None]:
    source = st.radio(
        "Video source", ["Bundled sample", "Upload"], horizontal=True, key="video_source", label_visibility="collapsed"
    )
    if source == "Bundled sample":
        bundled = samples()
        if not bundled:
            return None, "No sample clips are bundled: run `python -m analysis.samples`."
        sample = st.selectbox("Sample clip", bundled, format_func=lambda s: s.title, key="sample")
        return Video(str(sample.path), sample.title, f"sample:{file_key(sample.path)}", False, sample.label), None
    upload = st.file_uploader(
        "Video file",
        type=list(uploads.VIDEO_TYPES),
        key="upload",
        max_upload_size=uploads.VIDEO_MB,
        help=f"Up to {uploads.VIDEO_MB} MB; it is checked in a separate process before it is decoded.",
    )
    if upload is None:
        return None, "Upload a video (mp4, avi, mov, webm or mkv) in the sidebar."
    try:
        return _saved_video(upload), None
    except uploads.UploadError as error:
        return None, f"{upload.name} could not be stored: {error}."


def _sampling_picker(model: Model | None) -> Sampling | None:
    """How frames are taken from the video; None: as the model was trained (its checkpoint says)."""
    how = st.selectbox(
        "Frames read",
        list(SAMPLING_CHOICES),
        format_func=SAMPLING_CHOICES.get,
        key="sampling",
        help="As trained: the sampling the model's checkpoint records. The paper tests Kinetics on one "
        "clip of frames 32 apart from the middle of the video (K400), Something-Something on frames "
        "spread over the whole video (SSv2).",
    )
    if how == "trained":
        return None
    if how == "uniform":
        return Sampling("uniform")
    frames = model.loaded.config.num_frames if model else 8
    stride = st.select_slider(
        "Every k-th frame",
        STRIDES,
        value=OFFICIAL_STRIDES.get(frames, 8),
        key="sampling_stride",
        help="The official models read every 32nd frame (8 frames), every 16th (16) or every 4th (96).",
    )
    return Sampling("center", stride)


def sidebar() -> None:
    """Draw the pickers and the summary card, and store the choice for the page (`ui.session.choice`)."""
    with st.sidebar:
        st.markdown("#### Model")
        model, model_error = _model_picker()
        st.markdown("#### Video")
        video, video_error = _video_picker()
        sampling = _sampling_picker(model)
        st.session_state["_choice"] = Choice(model, model_error, video, video_error, sampling)
        st.divider()
        _summary(model, video, sampling)


def _summary(model: Model | None, video: Video | None, sampling: Sampling | None) -> None:
    with st.container(border=True):
        if model is None:
            st.caption(":material/neurology: No model loaded.")
        else:
            config = model.loaded.config
            st.markdown(f":material/neurology: **{scheme_block(model.scheme).label()}**  \n`{model.name}`")
            lines = []
            if model.dataset:
                lines.append(f"Trained on **{model.dataset}**: {DATASET_NOTES.get(model.dataset, 'generated clips')}.")
            if model.record:
                lines.append(measured(model.record) + ".")
            lines.append(f"{config.num_frames} frames × {config.image_size}² px, patch {config.patch_size}.")
            st.caption("  \n".join(lines))
        if video is None:
            st.caption(":material/movie: No video chosen.")
            return
        st.markdown(f":material/movie: **{video.title}**")
        if model is None:
            return
        opened = read_video(video, model)
        if opened.error:
            st.caption(":material/error: It cannot be read.")
            return
        info, indices = opened.clip.info, opened.clip.indices
        frames = model.loaded.config.num_frames
        st.caption(
            f"{info.num_frames} frames · {info.fps:g} fps · {info.width}×{info.height} px · "
            f"{info.duration_s:.1f} s.  \n"
            f"Read: {(sampling or model.trained_sampling).describe(frames)}: frames {', '.join(map(str, indices))} "
            f"({indices[0] / info.fps:.1f}–{indices[-1] / info.fps:.1f} s)."
        )
