"""Ablations: the paper's Tables 1-4 (quoted) beside our small-scale reproduction (measured), and Fig. 3 computed.

Our numbers come from `python -m analysis.ablations all` (JSON in analysis/results/): tiny TimeSformers trained
on CPU on the generated datasets, several seeds, mean ± std. `motion` stands in for SSv2 (the class is a
movement) and `appearance` for Kinetics (the class is what the object looks like).
"""

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

import analysis.ablations as ablations
from analysis.table_runs import BUDGET, SMOKE_PRETRAIN, Runner
from analysis import paper
from analysis.figures import comparison_figure, cost_figure
from timesformer import SCHEMES, preset
from timesformer.cost import GIB, count_macs, estimate_peak_bytes
from timesformer.schemes import scheme_block
from ui.widgets import chart

PAPER_COLUMNS = {"K400": "K400, paper", "SSv2": "SSv2, paper"}
ONE_DECIMAL = {name: st.column_config.NumberColumn(format="%.1f") for name in
               ("params (M), paper", "K400, paper", "SSv2, paper")}


@st.cache_data(show_spinner=False)
def _read(path: str, stamp: float) -> dict:
    return json.loads(Path(path).read_text())


def result(name: str) -> dict | None:
    """analysis/results/<name>.json, re-read when the file changes; None when the reproduction has not run."""
    path = Path(ablations.RESULTS_DIR) / f"{name}.json"
    return _read(str(path), path.stat().st_mtime) if path.exists() else None


def pm(cell: dict | None, key: str = "accuracy") -> str:
    """'81.2 ± 1.3' (percent) from a cell's {'mean', 'std'}."""
    if not cell or not cell.get(key):
        return "–"
    return f"{100 * cell[key]['mean']:.1f} ± {100 * cell[key]['std']:.1f}"


def mean(cell: dict, key: str = "accuracy") -> float:
    return 100 * cell[key]["mean"]


def std(cell: dict, key: str = "accuracy") -> float:
    return 100 * cell[key]["std"]


def how_measured(found: dict) -> str:
    budget, seeds = found.get("budget", {}), found.get("seeds", [])
    return (f"Measured by `{found['command']}`: `{budget.get('preset')}` preset, {budget.get('train_size')} training "
            f"clips, {budget.get('epochs')} epoch(s), {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), accuracy "
            f"on {budget.get('val_size')} validation clips; torch {found['versions']['torch']}, "
            f"{found['versions']['cpu_threads']} CPU threads, {found['seconds'] / 60:.0f} min.")


def not_run_yet(command: str, result_name: str, note: str = "") -> None:
    """The message of a section whose result file is missing: which command writes it."""
    st.info(f"Not run on this machine yet: `python -m analysis.ablations {command}` writes "
            f"analysis/results/{result_name}.json{note}.")


def not_run() -> None:
    """The message of a table section before the reproduction has run."""
    not_run_yet("all", "*", " (about an hour on 2 cores); `--smoke` gives a seconds-long version")


def table1_section() -> None:
    found = result("table1")
    quoted = paper.TABLE1.set_index("scheme")
    names = [scheme_block(s).paper_name for s in SCHEMES]
    if found is None:
        not_run()
        st.dataframe(paper.TABLE1.drop(columns="scheme").rename(columns={"params (M)": "params (M), paper",
                                                                         **PAPER_COLUMNS}),
                     hide_index=True, width="stretch", column_config=ONE_DECIMAL)
    else:
        rows = {row["scheme"]: row for row in found["rows"]}
        table = pd.DataFrame({
            "scheme": names,
            "params (M), paper": [quoted.loc[s, "params (M)"] for s in SCHEMES],
            "K400, paper": [quoted.loc[s, "K400"] for s in SCHEMES],
            "SSv2, paper": [quoted.loc[s, "SSv2"] for s in SCHEMES],
            "params, ours": [f"{rows[s]['params']:,}" for s in SCHEMES],
            "appearance, ours": [pm(rows[s]["appearance"]) for s in SCHEMES],
            "motion, ours": [pm(rows[s]["motion"]) for s in SCHEMES],
            "motion twin acc., ours": [pm(rows[s]["motion"], "twin_accuracy") for s in SCHEMES],
        })
        st.dataframe(table, hide_index=True, width="stretch", column_config=ONE_DECIMAL)
        chart(comparison_figure(
            names,
            {f"{name} (paper)": list(quoted.loc[list(SCHEMES), name]) for name in ("K400", "SSv2")},
            {"appearance (ours)": [mean(rows[s]["appearance"]) for s in SCHEMES],
             "motion (ours)": [mean(rows[s]["motion"]) for s in SCHEMES]},
            ("paper: top-1 % (quoted)", "ours: top-1 % on generated clips (measured)"),
            right_errors={"appearance (ours)": [std(rows[s]["appearance"]) for s in SCHEMES],
                          "motion (ours)": [std(rows[s]["motion"]) for s in SCHEMES]},
        ), "table1_chart")
        st.caption(how_measured(found) + " Twin accuracy: how often the true motion scores above its time-reversed "
                   "twin (50% for a model blind to frame order). Error bars: std over seeds.")


def table2_section() -> None:
    found = result("table2")
    st.dataframe(paper.TABLE2, hide_index=True, width="stretch",
                 column_config={"K400": st.column_config.NumberColumn("K400, paper", format="%.1f")})
    st.caption(f"Above: {paper.QUOTED} (Table 2). Training time in V100 GPU hours, TFLOPs for 3 views.")
    if found is None:
        not_run()
    else:
        scale = found.get("paper_scale")
        if scale:
            vit, i3d = scale["TimeSformer"], scale["I3D 8x8 R50"]
            latency = "threads" in scale  # measured only in a full run
            st.markdown("**Ours at paper scale: cost of one 8×224² view, computed (no training)**")
            st.dataframe(pd.DataFrame({
                "model": ["TimeSformer (divided, ViT-B)", "I3D 8×8 R50"],
                "GMACs per view": [
                    f"{vit['gmacs_per_view']:.1f} (torch counter {vit['gmacs_per_view_counted']:.1f})",
                    f"{i3d['gmacs_per_view_224']:.1f} at 224², {i3d['gmacs_per_view_256']:.1f} at 256²"],
                "params": [f"{vit['params']:,}", f"{i3d['params']:,}"],
                **({f"CPU s per view ({scale.get('threads')} threads)": [
                    f"{vit['cpu_seconds_per_view']:.1f}", f"{i3d['cpu_seconds_per_view_224']:.1f}"]}
                   if latency else {}),
            }), hide_index=True, width="stretch")
            st.caption(f"Paper: 0.59 TFLOPs for TimeSformer's 3 views, i.e. 196 GMACs per view; ours "
                       f"{vit['gmacs_per_view']:.1f}. The paper's 1.11 TFLOPs for I3D equal "
                       f"{i3d['views_implied_by_paper_1.11_tflops_at_256']:.1f} views of 256² by our count.")
        for dataset, small in found["small_scale"].items():
            target = small["target_val_accuracy"]
            st.markdown(f"**Ours at small scale: time to reach {target:.0%} validation accuracy on {dataset}**")
            st.dataframe(pd.DataFrame([{
                "model": name,
                "params": f"{model['params']:,}",
                "GMACs per clip": f"{model['gmacs_per_clip']:.3f}",
                "accuracy": pm(model),
                "training (s)": f"{model['train_seconds']['mean']:.0f} ± {model['train_seconds']['std']:.0f}",
                "seeds reaching target": model["seeds_reaching_target"],
                "seconds to target": "–" if not model["seconds_to_target"] else
                f"{model['seconds_to_target']['mean']:.0f} ± {model['seconds_to_target']['std']:.0f}",
            } for name, model in small.items() if name != "target_val_accuracy"]), hide_index=True, width="stretch")
        st.caption(how_measured(found))


def table3_section() -> None:
    found = result("table3")
    st.dataframe(paper.TABLE3.rename(columns=PAPER_COLUMNS), hide_index=True,
                 width="stretch", column_config=ONE_DECIMAL)
    st.caption(f"Above: {paper.QUOTED} (Table 3). From scratch on K400, with a longer schedule: "
               f"{paper.K400_FROM_SCRATCH}% ({paper.QUOTED}, Sec. 4.2).")
    if found is None:
        not_run()
    else:
        rows = found["rows"]
        starts = {"image_pretrained": "image model, inflated", "scratch": "from scratch"}
        st.dataframe(pd.DataFrame([{"start": label, **{f"{d}, ours": pm(rows[d][key]) for d in rows}}
                                   for key, label in starts.items()]), hide_index=True, width="stretch")
        chart(comparison_figure(
            ["from scratch", "ImageNet-1K / image model", "ImageNet-21K"],
            {"K400 (paper)": [paper.K400_FROM_SCRATCH, 75.8, 78.0]},
            {f"{d} (ours)": [mean(rows[d]["scratch"]), mean(rows[d]["image_pretrained"]), None] for d in rows},
            ("paper: K400 top-1 % (quoted)", "ours: top-1 % (measured)"),
            right_errors={f"{d} (ours)": [std(rows[d]["scratch"]), std(rows[d]["image_pretrained"]), None]
                          for d in rows},
        ), "table3_chart")
        image = found.get("image_model", {})
        st.caption(how_measured(found) + f" The image model (space-only ViT on single generated frames) reached "
                   f"{100 * image.get('val_accuracy', 0):.1f}% on its own validation images.")


def table4_section() -> None:
    found = result("table4")
    quoted = paper.TABLE4.set_index("pos_embed")
    order = list(quoted.index)
    labels = list(quoted["positional embedding"])
    if found is None:
        not_run()
        st.dataframe(paper.TABLE4.drop(columns="pos_embed").rename(columns=PAPER_COLUMNS), hide_index=True,
                     width="stretch", column_config=ONE_DECIMAL)
    else:
        rows = found["rows"]
        st.dataframe(pd.DataFrame({
            "positional embedding": labels,
            "K400, paper": list(quoted["K400"]), "SSv2, paper": list(quoted["SSv2"]),
            "appearance, ours": [pm(rows[p]["appearance"]) for p in order],
            "motion, ours": [pm(rows[p]["motion"]) for p in order],
        }), hide_index=True, width="stretch", column_config=ONE_DECIMAL)
        chart(comparison_figure(
            labels, {"K400 (paper)": list(quoted["K400"]), "SSv2 (paper)": list(quoted["SSv2"])},
            {f"{d} (ours)": [mean(rows[p][d]) for p in order] for d in ("appearance", "motion")},
            ("paper: top-1 % (quoted)", "ours: top-1 % (measured)"),
            right_errors={f"{d} (ours)": [std(rows[p][d]) for p in order] for d in ("appearance", "motion")},
        ), "table4_chart")
        st.caption(how_measured(found))


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
        configs = {scheme_block(s).title: [preset("base", scheme=s, **{axis: v}) for v in values]
                   for s in ("joint_space_time", "divided_space_time")}
        with column:
            st.markdown(f"**TFLOPs per view vs {title}**")
            chart(cost_figure(values, {name: [count_macs(c)["total"] / 1e12 for c in cs]
                                       for name, cs in configs.items()}, title, "TFLOPs (multiply-adds)"),
                  f"fig3_flops_{axis}")
            st.markdown(f"**Training memory vs {title}**")
            memory = {name: [estimate_peak_bytes(c, batch=batch, capture=True, training=True) / GIB for c in cs]
                      for name, cs in configs.items()}
            chart(cost_figure(values, memory, title, "GiB per GPU", limit=limit), f"fig3_memory_{axis}")
    checked = result("figure3")
    check = ""
    if checked:
        pairs = checked["counter_check_8x224"]
        check = " At 8×224², analytic vs torch's FLOP counter: " + "; ".join(
            f"{scheme_block(s).title} {v['analytic'] / 1e9:.2f} vs {v['counter'] / 1e9:.2f} GMACs" for s, v in pairs.items())
    st.caption(
        f"ViT-B, patch 16. Memory: weights, SGD momentum, activations kept for backward and every block's attention "
        f"matrices, for {batch} clip(s) per GPU (`timesformer.cost.memory_breakdown`); ✕ marks points over the "
        f"budget line. An estimate, not a measurement on a GPU.{check}"
    )


def live_section() -> None:
    st.markdown(
        "Train Table 1's five schemes now, on this machine, with the same code as the saved reproduction "
        "(`analysis.ablations.Runner`) but a budget small enough to watch: one seed, tiny models (8 frames × 32²)."
    )
    controls = st.columns(4)
    dataset = controls[0].selectbox("Dataset", ("appearance", "motion"), key="live_dataset")
    clips = controls[1].select_slider("Training clips", [200, 400, 800, 1600], 400, key="live_clips")
    epochs = controls[2].select_slider("Epochs", [1, 2, 3, 4, 6], 2, key="live_epochs")
    controls[3].write("")
    if controls[3].button("Train the five schemes", type="primary", icon=":material/play_arrow:", key="live_run"):
        budget = replace(BUDGET, train_size=clips, val_size=100, epochs=epochs, dataset=dataset)
        progress = st.progress(0.0, text="Generating clips…")
        rows = []
        with tempfile.TemporaryDirectory() as work:
            runner = Runner(budget, SMOKE_PRETRAIN, (0,), Path(work))
            for index, scheme in enumerate(SCHEMES):
                progress.progress(index / len(SCHEMES), text=f"Training {scheme_block(scheme).title} "
                                  f"({index + 1}/{len(SCHEMES)})…")
                cell = runner.cell(scheme=scheme)
                rows.append({"scheme": scheme_block(scheme).paper_name, "accuracy (%)": mean(cell),
                             "training (s)": round(cell["train_seconds"]["mean"], 1),
                             **({"twin accuracy (%)": mean(cell, "twin_accuracy")} if "twin_accuracy" in cell else {})})
        progress.progress(1.0, text="Done")
        st.session_state["live_result"] = (dataset, clips, epochs, rows)
    if "live_result" in st.session_state:
        dataset, clips, epochs, rows = st.session_state["live_result"]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     column_config={"accuracy (%)": st.column_config.ProgressColumn(format="%.1f", min_value=0,
                                                                                    max_value=100)})
        st.caption(f"Measured just now: {dataset}, {clips} training clips, {epochs} epoch(s), seed 0, accuracy on "
                   "100 validation clips. A short run: differences between schemes are within noise at this budget.")


def direction_section() -> None:
    found = result("direction")
    st.markdown("Can divided space-time tell a movement from the same movement played backwards? *move_right* "
                "against *move_left* alone (chance 50%). With the paper's start, temporal attention begins blind to "
                "the order of frames; the *previous-frame* start (ours, not the paper's: "
                "`timesformer/temporal_init.py`) points one head of it at the previous frame. The 3D CNN's "
                "space-time kernels see the order from the first step.")
    if found is None:
        not_run_yet("direction", "direction", " (about 40 minutes on one core)")
        return
    st.dataframe(pd.DataFrame([{
        "model": name,
        "accuracy, ours": pm(cell),
        "per seed": ", ".join(f"{100 * run['accuracy']:.1f}" for run in cell["per_seed"]),
        "training (s)": f"{cell['train_seconds']['mean']:.0f}",
    } for name, cell in found["rows"].items()]), hide_index=True, width="stretch")
    st.caption(how_measured(found) + f" Initialised from: {found['init']}. The paper has no such check: "
               "nothing here is quoted from it.")


def demo_section() -> None:
    found = result("demo_models")
    st.markdown("The models the other pages run, measured on clips none of them was trained or validated on.")
    if found is None:
        not_run_yet("card", "demo_models")
        return
    st.dataframe(pd.DataFrame([{
        "model": name,
        "trained on": model["dataset"],
        "held-out accuracy": f"{100 * model['accuracy']:.1f}%",
        "twin accuracy": f"{100 * model['twin_accuracy']:.1f}%" if "twin_accuracy" in model else "–",
        "params": f"{model['params']:,}",
        "GMACs per clip": f"{model['gmacs_per_clip']:.3f}",
        "training (s)": f"{model['train_seconds']:.0f}",
        "initialised from": Path(model["init"]).stem if model["init"] != "scratch" else "scratch",
    } for name, model in found["models"].items()]), hide_index=True, width="stretch")
    per_pair = {name: model["pair_accuracy"] for name, model in found["models"].items() if "pair_accuracy" in model}
    if per_pair:
        st.dataframe(pd.DataFrame([{"motion model": name, **{pair: f"{100 * v:.1f}%" for pair, v in pairs.items()}}
                                   for name, pairs in per_pair.items()]), hide_index=True, width="stretch")
    held_out = found["heldout"]
    st.caption(f"Measured by `{found['command']}` on {held_out['clips']} clips generated with seed {held_out['seed']} "
               "(training and validation used seeds 0-7). Twin accuracy: how often the true motion scores above "
               "its time-reversed twin (50% for a model blind to frame order). Second table: held-out accuracy on the "
               "clips of each twin pair (50% for a model that knows what changes but not which way). The "
               "regeneration commands and limitations are in timesformer/weights/MODEL_CARD.md.")


st.title("Ablations")
st.caption(
    f"Every number in a column or panel marked *paper* is **{paper.QUOTED}** ({paper.CITATION}). Every other "
    "number is computed here or measured by our small-scale reproduction, which says how it was measured. "
    "Ours run on generated clips: *motion* stands in for SSv2 (the class is a movement), *appearance* for K400 "
    "(the class is the object's look), so compare the pattern across rows, not the values."
)
SECTIONS = {
    "Table 1 · schemes": table1_section,
    "Table 2 · cost": table2_section,
    "Table 3 · pretraining": table3_section,
    "Table 4 · position": table4_section,
    "Fig. 3 · cost curves": figure3_section,
    "Direction": direction_section,
    "Run it live": live_section,
    "Demo models": demo_section,
}
section = st.segmented_control("Section", list(SECTIONS), default="Table 1 · schemes", key="ablation_section",
                               label_visibility="collapsed") or "Table 1 · schemes"
SECTIONS[section]()
