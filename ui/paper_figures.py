"""The Ablations page's figures and experiments: Fig. 3's cost curves (computed), Fig. 4 and the direction test
(measured), the reproduction run live on a small budget, and the demo models' card."""

import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from analysis import demo_card, paper, table_runs
from analysis.figures.charts import cost_figure
from analysis.table_runs import BUDGET, SMOKE_PRETRAIN
from timesformer import SCHEMES, preset
from timesformer.cost import GIB, count_macs, estimate_peak_bytes
from ui.results import (
    duration,
    heldout_text,
    how_measured,
    mean,
    not_run,
    not_run_yet,
    pm,
    result,
    show_finding,
)
from ui.widgets import chart


def figure3_section() -> None:
    st.markdown(
        "The paper's Fig. 3 plots the cost of joint and divided space-time attention as the clip grows. It prints "
        "no values, only that joint attention ran out of GPU memory at "
        f"**{paper.JOINT_OUT_OF_MEMORY['resolution']} px** or **{paper.JOINT_OUT_OF_MEMORY['frames']} frames** "
        f"({paper.QUOTED}). Below, the same curves **computed** from our model: multiply-adds counted analytically "
        "(`timesformer.cost.count_macs`) and the estimated peak memory of one training step with explicit attention "
        "matrices, as the 2021 code ran."
    )
    controls = st.columns([1, 1, 3])
    batch = controls[0].selectbox("Clips per GPU", [1, 2, 4], key="fig3_batch")
    budget = controls[1].number_input("GPU memory (GB)", 8, 80, 32, 8, key="fig3_budget")
    limit = (budget * 1e9 / GIB, f"{budget} GB GPU")
    left, right = st.columns(2, gap="large")
    for column, axis, values, title in (
        (left, "image_size", paper.FIGURE3_RESOLUTIONS, "spatial crop (px), 8 frames"),
        (right, "num_frames", paper.FIGURE3_FRAMES, "frames, 224 px"),
    ):
        configs = {
            SCHEMES[s].title: [preset("base", scheme=s, **{axis: v}) for v in values]
            for s in ("joint_space_time", "divided_space_time")
        }
        with column:
            st.markdown(f"**TFLOPs per view vs {title}**")
            chart(
                cost_figure(
                    values,
                    {name: [count_macs(c)["total"] / 1e12 for c in cs] for name, cs in configs.items()},
                    title,
                    "TFLOPs (multiply-adds)",
                ),
                f"fig3_flops_{axis}",
            )
            st.markdown(f"**Training memory vs {title}**")
            memory = {
                name: [estimate_peak_bytes(c, batch=batch, capture=True, training=True) / GIB for c in cs]
                for name, cs in configs.items()
            }
            chart(cost_figure(values, memory, title, "GiB per GPU", limit=limit), f"fig3_memory_{axis}")
    checked = result("figure3")
    check = ""
    if checked:
        pairs = checked["counter_check_8x224"]
        check = " At 8×224², analytic vs torch's FLOP counter: " + "; ".join(
            f"{SCHEMES[s].title} {v['analytic'] / 1e9:.2f} vs {v['counter'] / 1e9:.2f} GMACs" for s, v in pairs.items()
        )
    st.caption(
        f"ViT-B, patch 16. Memory: weights, SGD momentum, activations kept for backward and every block's attention "
        f"matrices, for {batch} clip(s) per GPU (`timesformer.cost.memory_breakdown`); ✕ marks points over the "
        f"budget line. An estimate, not a measurement on a GPU.{check}"
    )


LIVE_CLIPS = (40, 200, 400, 800, 1600)


def live_section() -> None:
    st.markdown(
        "Train every scheme now, on this machine, with the same code as the saved reproduction "
        "(`analysis.table_runs.Runner`: from scratch, tiny models of 8 frames × 32², read through video files) but "
        "a budget small enough to watch and one seed."
    )
    controls = st.columns(4)
    dataset = controls[0].selectbox("Dataset", ("appearance", "motion"), key="live_dataset")
    clips = controls[1].select_slider("Training clips", LIVE_CLIPS, 400, key="live_clips")
    epochs = controls[2].select_slider("Epochs", [1, 2, 3, 4, 6], 2, key="live_epochs")
    controls[3].write("")
    if controls[3].button(
        f"Train the {len(SCHEMES)} schemes", type="primary", icon=":material/play_arrow:", key="live_run"
    ):
        budget = replace(BUDGET, train_size=clips, val_size=max(16, clips // 4), epochs=epochs)
        progress = st.progress(0.0, text="Starting…")
        started: list[str] = []

        def on_run(name: str) -> None:
            started.append(name)
            progress.progress(
                (len(started) - 1) / len(SCHEMES), text=f"Training {name} ({len(started)}/{len(SCHEMES)})…"
            )

        rows = []
        with tempfile.TemporaryDirectory() as work:
            # table_runs.Runner is looked up at the call, so a test can put an autospec in its place
            runner = table_runs.Runner(
                budget,
                SMOKE_PRETRAIN,
                (0,),
                Path(work),
                on_run=on_run,
            )
            for scheme, block in SCHEMES.items():
                cell = runner.cell(scheme=scheme, dataset=dataset)
                rows.append(
                    {
                        "scheme": block.paper_name,
                        "accuracy (%)": mean(cell),
                        **({"twin accuracy (%)": mean(cell, "twin_accuracy")} if "twin_accuracy" in cell else {}),
                        "training": duration(cell["train_seconds"]["mean"]),
                    }
                )
            config = runner.config(scheme=next(iter(SCHEMES)), dataset=dataset)
            heldout = runner.heldout(config)
        progress.progress(1.0, text="Done")
        classes = f" ({config.classes.replace(',', ', ')})" if config.classes else ""
        st.session_state["live_result"] = (
            rows,
            f"Measured just now: {dataset}{classes}, {clips} training clips, "
            f"{epochs} epoch(s), seed 0; accuracy on {heldout.clips} held-out video "
            f"files of seed {heldout.seed}.",
        )
    if "live_result" in st.session_state:
        rows, measured = st.session_state["live_result"]
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            column_config={
                name: st.column_config.ProgressColumn(format="%.1f", min_value=0, max_value=100)
                for name in ("accuracy (%)", "twin accuracy (%)")
            },
        )
        st.caption(
            measured + " One seed: its spread is not measured, so a difference of a few points between "
            "schemes may be chance."
        )


def figure4_section() -> None:
    found = result("figure4")
    st.markdown(
        "The paper's Fig. 4: accuracy as the training set grows, space-only against divided space-time "
        "(on SSv2, T+S overtakes S with more videos). Ours, on *motion*."
    )
    if found is None:
        not_run()
        return
    sizes = found["sizes"]
    chart(
        cost_figure(
            sizes,
            {
                SCHEMES[s].title if s in SCHEMES else s: [mean(cell) for cell in cells]
                for s, cells in found["rows"].items()
            },
            "training clips",
            "top-1 accuracy (%)",
            log_y=False,
            levels={f"chance {found['chance']:.0%}": 100 * found["chance"]},
        ),
        "figure4_chart",
    )
    show_finding(found)
    st.caption(how_measured(found) + f" Chance: {found['chance']:.0%}.")


def direction_section() -> None:
    found = result("direction")
    st.markdown(
        "Can divided space-time tell a movement from the same movement played backwards? With the paper's "
        "start, temporal attention begins blind to the order of frames; the *previous-frame* start (ours, not "
        "the paper's: `timesformer/temporal_init.py`) points one head of it at the previous frame. The 3D "
        "CNN's space-time kernels see the order from the first step. Twin accuracy: how often the true "
        "movement scores above its reversal (50% for a model blind to the order of frames)."
    )
    if found is None:
        not_run_yet("direction", "direction", " (about 40 minutes on one core)")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": name,
                    "accuracy, ours": pm(cell),
                    "twin accuracy, ours": pm(cell, "twin_accuracy"),
                    "per seed": ", ".join(f"{100 * run['accuracy']:.1f}" for run in cell["per_seed"]),
                    "training": duration(cell["train_seconds"]["mean"]),
                }
                for name, cell in found["rows"].items()
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"model": st.column_config.TextColumn(width="large")},
    )
    show_finding(found)
    start = f" Initialised from: {found['init']}." if "init" in found else ""
    st.caption(how_measured(found) + start + " The paper has no such check: nothing here is quoted from it.")


def demo_section() -> None:
    found = result("demo_models")
    st.markdown("The models the other pages run, measured on clips none of them was trained or validated on.")
    if found is None:
        not_run_yet("card", "demo_models")
        return
    on_files = found.get("measured_on") == demo_card.MEASURED_ON
    accuracy = "held-out accuracy" if on_files else "held-out accuracy (generator tensors)"
    if not on_files:
        st.warning(
            "This card predates the video path: its accuracies were measured on the generator's raw tensors, not "
            "on video files read as the app reads them, and overstate what these models do on the app's clips. "
            "The models are being retrained through video files (`python -m analysis.demo_models train`).",
            icon=":material/warning:",
        )
    st.table(
        pd.DataFrame(
            [
                {
                    "model": name,
                    "trained on": model["dataset"],
                    accuracy: f"{100 * model['accuracy']:.1f}%",
                    "twin accuracy": f"{100 * model['twin_accuracy']:.1f}%" if "twin_accuracy" in model else "–",
                    "samples": f"{model['samples']['correct']}/{model['samples']['total']}"
                    if model.get("samples")
                    else "–",
                    "params": f"{model['params']:,}",
                    "GMACs per clip": f"{model['gmacs_per_clip']:.3f}",
                    "training": duration(model["train_seconds"]),
                    "initialised from": Path(model["init"]).stem if model["init"] != "scratch" else "scratch",
                }
                for name, model in found["models"].items()
            ]
        ).set_index("model")
    )  # a static table: long names wrap
    per_pair = {name: model["pair_accuracy"] for name, model in found["models"].items() if "pair_accuracy" in model}
    if per_pair:
        st.dataframe(
            pd.DataFrame(
                [
                    {"motion model": name, **{pair: f"{100 * v:.1f}%" for pair, v in pairs.items()}}
                    for name, pairs in per_pair.items()
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={"motion model": st.column_config.TextColumn(width="large")},
        )
    st.caption(
        f"Measured by `{found['command']}` "
        f"{'through video files' if on_files else 'on the generator tensors'}, on {heldout_text(found['heldout'])} "
        "(training and validation used seeds 0-7). Twin accuracy: how often the true motion scores above "
        "its time-reversed twin (50% for a model blind to frame order). Samples: the app's bundled clips of "
        "the model's dataset it gets right. Second table: held-out accuracy on the clips of each twin pair "
        "(50% for a model that knows what changes but not which way). The regeneration commands and "
        "limitations are in timesformer/weights/MODEL_CARD.md."
    )
