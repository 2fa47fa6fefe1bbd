"""Video: the frames the model reads, on the video's timeline; its top-5 with and without the paper's 3-crop
averaging; the model's facts."""

from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.exports import export_stem
from analysis.figures.charts import prediction_figure, timeline_figure
from analysis.figures.frames import frame_figure, upscale
from timesformer.cost import MemoryBudgetError, count_macs
from timesformer.info import model_facts
from timesformer.schemes import scheme_block
from ui.cached import predictions
from ui.navigation import page_header
from ui.session import DATASET_NOTES, choice, clip_key, current_clip, current_model, measured
from ui.widgets import chart, downloads, table_files, upload_note

page_header("Video")
model = current_model()
video, clip = current_clip(model)
config, info = model.loaded.config, clip.info
sampling = choice().sampling or model.trained_sampling
st.caption(f"**{video.title}** through **{scheme_block(model.scheme).label()}** (`{model.name}`).")
upload_note(video, model.is_demo)


def crop_note(top: dict[str, list[tuple[str, float]]]) -> str:
    """What the two rows of the chart say, from their numbers."""
    (centre, p_centre), (averaged, p_averaged) = top["centre crop"][0], top["3 crops averaged"][0]
    if info.width == info.height:
        return "On a square video the three crops coincide, so the two rows are the same."
    if centre != averaged:
        return (
            f"Here they disagree: the centre crop alone says **{centre}** ({p_centre:.1%}), the average of the "
            f"three says **{averaged}** ({p_averaged:.1%}); the side crops see other parts of the scene."
        )
    if abs(p_centre - p_averaged) < 0.02:
        return f"Here they barely differ: **{centre}** at {p_centre:.1%} and {p_averaged:.1%}."
    return (
        f"Both say **{centre}**, with {p_centre:.1%} from the centre crop alone and {p_averaged:.1%} averaged: "
        "the side crops see other parts of the scene."
    )


left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("What the model sees")
    chart(timeline_figure(info.num_frames, info.fps, clip.indices), "video_timeline")
    titles = [f"t={t} · #{index}" for t, index in enumerate(clip.indices)]
    chart(frame_figure(upscale(clip.frames), titles, columns=4, width=760), "video_frames", static=True)
    how = "as the model was trained" if choice().sampling is None else "as chosen in the sidebar"
    st.caption(
        f"Read {how}: {sampling.describe(config.num_frames)}, the frames marked on the timeline above (# is the "
        f"frame's number in the video: {info.num_frames} frames, {info.fps:g} fps, {info.duration_s:.1f} s, "
        f"{info.width}×{info.height} px). Each is resized to a short side of {round(config.image_size * 256 / 224)} px "
        f"and its centre {config.image_size}×{config.image_size} px cut out, then normalised with mean "
        f"{model.loaded.mean[0]:g} and std {model.loaded.std[0]:g}. Shown enlarged; decoded with {info.backend}."
    )
    if Path(video.path).exists():  # an upload nobody used for a day is deleted (ui/uploads.py)
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
        "(start, centre and end of the long side) and averages their softmax. " + crop_note(top)
    )
    ranked_rows = [
        {
            "video": video.title,
            "model": model.name,
            "scheme": model.scheme,
            "crops": crops,
            "rank": rank,
            "class": label,
            "probability": round(p, 6),
        }
        for crops, ranked in top.items()
        for rank, (label, p) in enumerate(ranked, start=1)
    ]
    downloads(
        table_files(
            export_stem(video.title, model.scheme, "predictions"),
            lambda: ranked_rows,
            lambda: {"video": video.title, "model": model.name, "frames": clip.indices, "predictions": top},
        ),
        "video_downloads",
    )

st.subheader("Model facts")
facts = model_facts(config)
gmacs = count_macs(config)["total"] / 1e9
shown = {
    "scheme": scheme_block(model.scheme).label(),
    "checkpoint": model.name,
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
    shown["trained on"] = f"{model.dataset}: {DATASET_NOTES.get(model.dataset, 'generated clips')}"
if model.record:
    shown["measured"] = measured(model.record).replace("**", "")
for key, label in (
    ("epochs", "epochs"),
    ("train_seconds", "training time (s)"),
    ("init", "initialised from"),
    ("command", "command that made it"),
):
    if key in metadata:
        shown[label] = metadata[key]
st.table(pd.DataFrame({"value": list(shown.values())}, index=pd.Index(list(shown), name="fact")))
st.caption(
    "Parameters and GFLOPs are computed from the model's config (`timesformer.info`, `timesformer.cost`); "
    "the measured accuracy is the model card's (`analysis/results/demo_models.json`); training facts are "
    "read from the checkpoint's metadata."
)
