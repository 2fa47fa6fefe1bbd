"""Embeddings: t-SNE of the clips' CLS features per scheme (the paper's Fig. 8), with separability measured.

The clips are the generated held-out set the demo models were validated on. Fig. 8 compares divided
space-time, space-only and the image model they started from; here too: the shipped image model (a space-only
ViT trained on single generated frames, from which every demo video model was inflated) sees each frame
alone, and its features are averaged over the frames, so it knows appearance but not motion.

The other source, where the server allows paths (`ui.server_paths`), is a batch output folder (`python -m
analysis batch ... --what features`): the map of a whole collection, from the features the batch stored.
"""

import numpy as np
import streamlit as st

from analysis.collection import (
    CollectionError,
    CollectionMap,
    embed_collection,
    load_collection,
    output_state,
)
from analysis.embeddings import (
    Separability,
    cached_features,
    clip_features,
    frame_averaged_features,
    separability,
    tsne,
)
from analysis.exports import export_stem
from analysis.figures.charts import tsne_figure
from analysis.figures.frames import frame_figure, upscale
from analysis.figures.style import class_colour
from timesformer import SCHEMES
from timesformer.checkpoints import CheckpointError
from timesformer.datasets import class_names, generate
from timesformer.demo import DemoMissing
from ui.navigation import page_header
from ui.server_paths import PathRefused, checked_path, paths_allowed
from ui.session import DEMO_DATASETS, Model, clip_key, current_video, demo_model, read_video, sidebar_model
from ui.widgets import chart, downloads, table_files, upload_note

IMAGE_MODEL = "image_model"
CHOICES = [*SCHEMES, IMAGE_MODEL]


def choice_title(choice: str) -> str:
    return "Image model" if choice == IMAGE_MODEL else SCHEMES[choice].paper_name


def choice_note(choice: str) -> str:
    return "the ViT the video models start from, frame by frame" if choice == IMAGE_MODEL else SCHEMES[choice].title


def choice_model(choice: str, dataset: str) -> Model:
    return demo_model("space_only", "images") if choice == IMAGE_MODEL else demo_model(choice, dataset)


@st.cache_data(max_entries=16, show_spinner=False)
def held_out(dataset: str, per_class: int, seed: int, frames: int, size: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Generated clips, `per_class` of each class, from the validation stream the demo models never trained on."""
    clips = generate(dataset, per_class * len(class_names(dataset)), seed, frames, size)
    return clips.frames, clips.labels, clips.class_names


@st.cache_data(max_entries=64, show_spinner=False)
def embed(
    model_key: str,
    choice: str,
    dataset: str,
    per_class: int,
    seed: int,
    frames_per_clip: int,
    perplexity: float,
    user_key: str | None,
    _model: Model,
    _user: np.ndarray | None,
) -> dict:
    """t-SNE map of the held-out clips (and the user's clip, last) with the features' separability."""
    loaded = _model.loaded
    frames, labels, _ = held_out(dataset, per_class, seed, frames_per_clip, loaded.config.image_size)
    kind = "frame_averaged" if choice == IMAGE_MODEL else "clip"
    features = cached_features(loaded.model, frames, kind, loaded.mean, loaded.std)
    points_of = features
    if _user is not None:
        extract = frame_averaged_features if choice == IMAGE_MODEL else clip_features
        user = extract(loaded.model, _user[None], loaded.mean, loaded.std)
        points_of = np.concatenate([features, user])
    return {
        "points": tsne(points_of, perplexity=perplexity),
        "labels": labels,
        "separability": separability(features, labels),
    }


def show_separability(measured: Separability, things: str) -> None:
    """kNN accuracy and silhouette side by side; `things` are what the dots are (clips, videos)."""
    metrics = st.columns(2)
    metrics[0].metric(
        "kNN accuracy",
        f"{measured.knn_accuracy:.0%}",
        f"chance {measured.chance:.0%}",
        delta_color="off",
        delta_arrow="off",
        help=f"Leave-one-out {measured.k}-nearest-neighbour vote on the features.",
    )
    metrics[1].metric(
        "Silhouette",
        f"{measured.silhouette:.2f}",
        help=f"How much closer {things} are to their own class than to the next one, from −1 to 1.",
    )


@st.cache_data(max_entries=8, show_spinner=False)
def embed_output(folder: str, state: tuple, perplexity: float) -> tuple[str, CollectionMap]:
    """Caption and t-SNE map of a batch output folder; `state` (`output_state`) changes with its finished shards."""
    collection = load_collection(folder)
    return collection.describe(), embed_collection(collection, perplexity)


def show_batch_output() -> None:
    """The t-SNE map of a batch output folder typed in by path, or what is wrong with that path."""
    top = st.columns([4, 1])
    folder = (
        top[0]
        .text_input(
            "Batch output folder",
            key="embed_folder",
            placeholder="/path/to/runs/val",
            help="The --out of `python -m analysis batch VIDEOS --out DIR --what "
            "predictions,features`, inside the folders this server allows.",
        )
        .strip()
    )
    perplexity = top[1].slider("Perplexity", 5, 50, 30, key="embed_batch_perplexity")
    if not folder:
        st.info("Enter the path of a batch output folder on this server.")
        return
    try:
        path = str(checked_path(folder))
        with st.spinner("Embedding the collection…"):
            caption, embedded = embed_output(path, output_state(path), float(perplexity))
    except (PathRefused, CollectionError) as error:
        st.error(str(error))
        return
    if embedded.separability is not None:
        with st.columns(2)[0]:
            show_separability(embedded.separability, "videos")
    chart(
        tsne_figure(embedded.points, embedded.codes, embedded.classes, height=560, hover=embedded.hover), "embed_batch"
    )
    st.caption(f"{caption}. Hover a dot for its file and prediction. t-SNE: scikit-learn, PCA initialisation, seed 0.")
    rows = [
        {"video": hover.split("<br>")[0], "colour": embedded.classes[code], "x": float(x), "y": float(y)}
        for hover, code, (x, y) in zip(embedded.hover, embedded.codes, embedded.points)
    ]
    downloads(
        table_files(export_stem("batch", "tsne"), lambda: rows, lambda: {"folder": path, "points": rows}),
        "embed_batch_downloads",
    )


page_header("Embeddings")
chosen_model = sidebar_model()
if (
    paths_allowed()
    and st.radio(
        "Videos",
        ["Held-out generated clips", "A batch output folder"],
        horizontal=True,
        key="embed_source",
        label_visibility="collapsed",
    )
    == "A batch output folder"
):
    st.caption(
        "Each dot is one video of a batch output folder, placed by t-SNE from the CLS feature the batch stored for it."
    )
    show_batch_output()
    st.stop()
st.caption(
    "Each dot is one held-out generated clip, placed by t-SNE from the model's CLS feature (the vector the "
    "classifier reads). Like the paper's Fig. 8, but measured: kNN accuracy and silhouette are computed on the "
    "features themselves, since t-SNE distorts distances."
)

top = st.columns([4, 2, 2, 2, 2])
chosen = top[0].multiselect(
    "Models",
    CHOICES,
    default=["divided_space_time", "space_only", IMAGE_MODEL],
    format_func=choice_title,
    max_selections=4,
    key="embed_models",
)
default_dataset = chosen_model.dataset if chosen_model and chosen_model.dataset in DEMO_DATASETS else "motion"
dataset = top[1].selectbox("Clips from", DEMO_DATASETS, index=DEMO_DATASETS.index(default_dataset), key="embed_dataset")
per_class = top[2].slider("Clips per class", 5, 30, 10, key="embed_per_class")
perplexity = top[3].slider("Perplexity", 5, 50, 20, key="embed_perplexity")
place_user = top[4].toggle(
    "Place my clip",
    value=True,
    key="embed_user",
    help="Embed the sidebar's video with each model and mark it with a star.",
)
if not chosen:
    st.info("Pick at least one model.")
    st.stop()

video = current_video() if place_user else None
try:  # the held-out clips: the validation stream of the video models, at their clip length
    reference = demo_model("divided_space_time", dataset).loaded
    seed, frames_per_clip = int(reference.metadata.get("data_seed", 0)) + 1, reference.config.num_frames
except (DemoMissing, CheckpointError) as error:
    st.error(f"The held-out clips follow the shipped divided model, which is missing: {error}")
    st.stop()
count = per_class * len(class_names(dataset))
results, problems = {}, []
with st.status("Embedding clips…", expanded=False) as status:
    for choice in chosen:
        try:
            model = choice_model(choice, dataset)
        except (DemoMissing, CheckpointError) as error:
            problems.append(f"{choice_title(choice)}: {error}")
            continue
        user, user_key = None, None
        if video is not None:  # the image model reads the video as the video models do, then frame by frame
            reader = demo_model("divided_space_time", dataset) if choice == IMAGE_MODEL else model
            opened = read_video(video, reader)
            if opened.clip is not None:
                user, user_key = opened.clip.frames, clip_key(video, reader)
            elif (problem := f"**{video.title}** cannot be placed: {opened.error}") not in problems:
                problems.append(problem)  # the same file for every model: said once
        status.update(label=f"Embedding {count} clips with {choice_title(choice)}…")
        results[choice] = embed(
            model.key, choice, dataset, per_class, seed, frames_per_clip, float(perplexity), user_key, model, user
        )
    status.update(label=f"Embedded {count} held-out clips with {len(results)} model(s)", state="complete")
for problem in problems:
    st.warning(problem)

names = class_names(dataset)
placed = any(len(result["points"]) > len(result["labels"]) for result in results.values())
st.markdown(
    " ".join(f"<span style='color:{class_colour(i)}'>●</span> {name}" for i, name in enumerate(names))
    + (" &nbsp; ★ your clip" if placed else ""),
    unsafe_allow_html=True,
)
if placed and video.untrusted:
    upload_note(video)
    st.caption(
        "★ marks where each model's feature for your video falls among the held-out clips. The clusters "
        "around it are generated classes: its neighbours say what the model finds it similar to, not what "
        "it shows."
    )
columns = st.columns(len(results)) if results else []
for column, (choice, result) in zip(columns, results.items()):
    with column:
        st.subheader(choice_title(choice))
        st.caption(choice_note(choice))
        show_separability(result["separability"], "clips")
        points, labels = result["points"], result["labels"]
        extra = (float(points[-1, 0]), float(points[-1, 1]), "your clip") if len(points) > len(labels) else None
        key = f"embed_{choice}"
        chart(
            tsne_figure(points[: len(labels)], labels, names, extra, height=420, legend=False),
            key,
            on_select=lambda key=key: st.session_state.update(embed_clicked=key),
        )


def coordinates() -> list[dict]:
    """Every dot of every map: model, clip, class and t-SNE position (your clip last, class empty)."""
    rows = []
    for choice, result in results.items():
        for index, (x, y) in enumerate(result["points"]):
            mine = index >= len(result["labels"])
            rows.append(
                {
                    "model": choice,
                    "clip": "your clip" if mine else index,
                    "class": "" if mine else names[result["labels"][index]],
                    "x": float(x),
                    "y": float(y),
                }
            )
    return rows


if results:
    downloads(
        table_files(
            export_stem(dataset, "tsne"),
            coordinates,
            lambda: {
                "dataset": dataset,
                "clips per class": per_class,
                "seed": seed,
                "perplexity": perplexity,
                "your clip": video.title if placed else None,
                "points": coordinates(),
                "separability": {choice: vars(result["separability"]) for choice, result in results.items()},
            },
        ),
        "embed_downloads",
    )

clicked = st.session_state.get("embed_clicked")
if clicked in st.session_state:
    picked = [p for p in st.session_state[clicked].selection.points if isinstance(p.get("customdata"), (int, float))]
    if picked:
        index = int(picked[-1]["customdata"])
        frames, labels, _ = held_out(dataset, per_class, seed, frames_per_clip, reference.config.image_size)
        st.subheader(f"Clip {index}: {names[labels[index]]}")
        chart(
            frame_figure(
                upscale(frames[index], 128),
                [f"t={t}" for t in range(len(frames[index]))],
                columns=len(frames[index]),
                width=1100,
            ),
            "embed_clip",
        )
st.caption(
    f"Held-out clips: {per_class} per class of the {len(names)} {dataset} classes, generated from the validation "
    f"seed of the demo models (seed {seed}), never trained on. Hover a dot for its class, click it to see the "
    "clip. Image model: each frame alone, features averaged over the frames. t-SNE: "
    "scikit-learn, PCA initialisation, seed 0; features are cached on disk by model and clip hash."
)
