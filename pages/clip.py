"""Video: the frames the model samples, its top-5 with and without the paper's 3-crop averaging, model facts."""

from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.figures import frame_figure, prediction_figure, upscale
from timesformer.cost import MemoryBudgetError, count_macs
from timesformer.info import model_facts
from ui.cached import predictions
from ui.session import (
    DATASET_NOTES,
    clip_key,
    current_clip,
    current_model,
    scheme_title,
)
from ui.widgets import chart

model = current_model()
video, clip = current_clip(model)
config = model.loaded.config

st.title("Video")
st.caption(f"**{video.title}** through **{scheme_title(model.scheme)}** (`{Path(model.path).name}`).")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("What the model sees")
    frames = upscale(clip.frames)
    titles = [f"t={t} · #{index}" for t, index in enumerate(clip.indices)]
    chart(frame_figure(frames, titles, columns=4, width=760), "video_frames", static=True)
    info = clip.info
    st.caption(
        f"{config.num_frames} frames sampled from the middle of the video ({info.num_frames} frames, {info.fps:g} fps, "
        f"{info.width}×{info.height} px) at the indices shown (#), short side resized and the centre "
        f"{config.image_size}×{config.image_size} px cropped, then normalised with mean {model.loaded.mean[0]:g} and "
        f"std {model.loaded.std[0]:g}. Shown enlarged; decoded with {info.backend}."
    )
    with st.expander("Play the source video"):
        st.video(video.path, loop=True, autoplay=True, muted=True)

with right:
    st.subheader("Prediction")
    try:
        top = predictions(model.key, clip_key(video, model), model, clip)
    except MemoryBudgetError as error:
        st.error(str(error))
        st.stop()
    if video.truth:
        best = top["3 crops averaged"][0][0]
        verdict = ":green[:material/check: correct]" if best == video.truth else ":red[:material/close: wrong]"
        st.markdown(f"True class: **{video.truth}** · top-1 over 3 crops: **{best}** ({verdict})")
    chart(prediction_figure(top, video.truth), "video_prediction")
    st.caption(
        "Softmax probabilities of the five most likely classes. The paper tests one clip with 3 spatial crops "
        "(start, centre and end of the long side) and averages their softmax; on a square video the crops nearly "
        "coincide, so the two rows barely differ."
    )

st.subheader("Model facts")
facts = model_facts(config)
gmacs = count_macs(config)["total"] / 1e9
rows = {
    "scheme": scheme_title(model.scheme),
    "checkpoint": Path(model.path).name,
    "format": model.loaded.source_format,
    "parameters": f"{facts['parameters']:,}",
    "GFLOPs per view (multiply-adds)": f"{gmacs:.3g}",
    "GFLOPs for 3 views": f"{3 * gmacs:.3g}",
    "clip": f"{config.num_frames} frames × {config.image_size}² px, patch {config.patch_size}",
    "width × depth × heads": f"{config.embed_dim} × {config.depth} × {config.num_heads}",
    "classes": str(config.num_classes),
}
metadata = model.loaded.metadata
if model.dataset:
    rows["trained on"] = f"{model.dataset}: {DATASET_NOTES.get(model.dataset, 'generated clips')}"
if model.accuracy is not None:
    rows["validation accuracy"] = f"{model.accuracy:.1%}" + (
        f" on {model.validation_clips} clips" if model.validation_clips else "")
for key, label in (("epochs", "epochs"), ("train_seconds", "training time (s)"), ("init", "initialised from"),
                   ("command", "command that made it")):
    if key in metadata:
        rows[label] = metadata[key]
st.dataframe(pd.DataFrame({"fact": list(rows), "value": list(rows.values())}), hide_index=True, width="stretch",
             height=35 * (len(rows) + 1) + 3)
st.caption("Parameters and GFLOPs are computed from the model's config (`timesformer.info`, `timesformer.cost`); "
           "training facts are read from the checkpoint's metadata.")
