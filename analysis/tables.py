"""The paper's Tables 1-4 and Figures 3-4 in miniature: which cells each trains, and what each shows.

A table is its cells (`CELLS`, so the command line can count and run them ahead, two at a time) and a builder
that reads them back from the `Runner` and states its finding in one sentence, computed from the numbers and
compared with the paper's (`analysis.paper`), so the page can show it without typing it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from timesformer import SCHEMES, TimeSformer, preset
from timesformer.cost import GIB, count_macs, estimate_peak_bytes, measure_flops, parameter_count

from . import paper
from .baselines import i3d_r50, tiny_i3d
from .table_runs import CLASSES, Runner, spread

DATASETS = ("motion", "appearance")
CHANCE = {**{d: 1 / len(CLASSES[d].split(",")) for d in DATASETS}, "twin": 0.5}
"""Chance accuracy of the reproduction's tasks (its classes, `table_runs.CLASSES`) and of telling a twin pair apart."""
TARGETS = {"motion": 0.9, "appearance": 0.4}
"""Table 2 at small scale: the held-out accuracy whose training time is compared."""
FIGURE4_FRACTIONS = (0.25, 0.5, 1.0)
POSITION_EMBEDDINGS = {"none": ("motion",), "space": ("motion",), "space_time": DATASETS}
"""Table 4's cells: every embedding on motion, where the paper's finding is (SSv2); on appearance the space-time
one alone, shared with Table 1. The other two on appearance would add about 10 minutes (6 runs of about 200 s
on 2 cores) to an `all` that takes 100."""
GPU_GIB = 32
"""Memory of the paper's V100 GPUs (32 GiB)."""

Cell = tuple[str, dict]
"""(baseline name or "", overrides of the budget): what `Runner.cell` trains for every seed."""


def _divided(dataset: str, **overrides) -> Cell:
    return "", {"dataset": dataset, "scheme": "divided_space_time", "init": "image", **overrides}


def cells(runner: Runner) -> dict[str, list[Cell]]:
    """Every cell of every training table, by table (cells shared between tables train once)."""
    full = runner.budget.train_size
    return {
        "table1": [("", {"dataset": d, "scheme": s, "init": "image"}) for s in SCHEMES for d in DATASETS],
        "table2": [_divided(d) for d in DATASETS] + [("tiny_i3d", {"dataset": d}) for d in DATASETS],
        "table3": [_divided(d, init=start) for d in DATASETS for start in ("image", "")],
        "table4": [_divided(d, pos_embed=p) for p, datasets in POSITION_EMBEDDINGS.items() for d in datasets],
        "figure4": [
            ("", {"dataset": "motion", "scheme": s, "init": "image", "train_size": round(f * full)})
            for s in ("space_only", "divided_space_time")
            for f in FIGURE4_FRACTIONS
        ],
        "direction": [_divided("motion", temporal_init=start) for start in ("paper", "previous_frame")]
        + [("tiny_i3d", {"dataset": "motion"})],
    }


def _percent(cell: dict, key: str = "accuracy") -> str:
    return f"{100 * cell[key]['mean']:.1f}%"


def table1(runner: Runner) -> dict:
    """Five schemes x two datasets; parameters and MACs of each tiny model."""
    rows = []
    for scheme in SCHEMES:
        config = replace(runner.budget.model_config(), scheme=scheme)
        rows.append(
            {
                "scheme": scheme,
                "paper_name": SCHEMES[scheme].paper_name,
                "params": parameter_count(config),
                "gmacs_per_clip": count_macs(config)["total"] / 1e9,
                **{d: runner.cell(dataset=d, scheme=scheme, init="image") for d in DATASETS},
            }
        )
    by = {row["scheme"]: row for row in rows}
    twin = {s: by[s]["motion"]["twin_accuracy"]["mean"] for s in by}
    temporal = [s for s in by if not SCHEMES[s].per_frame]
    blind = [s for s in by if SCHEMES[s].per_frame]
    worst = min(temporal, key=twin.get)
    agrees = all(twin[s] > max(twin[b] for b in blind) + 0.1 for s in temporal)
    listed = ", ".join(f"{by[s]['paper_name']} {100 * twin[s]:.0f}%" for s in temporal)
    finding = (
        f"On motion, the schemes that compare frames tell a movement from its reversal "
        f"({listed} twin accuracy) while "
        f"space-only stays near the 50% of a model blind to order ({100 * twin[blind[0]]:.0f}%)"
        + (
            ": as in the paper, where S falls to 36.6% on SSv2 and the others stay within 3.3 points"
            if agrees
            else f", though {by[worst]['paper_name']} barely does, unlike the paper"
        )
        + f". On appearance every scheme reaches {_min_mean(by, 'appearance')} or more, space-only "
        f"{_percent(by['space_only']['appearance'])} against divided's "
        f"{_percent(by['divided_space_time']['appearance'])}, as the paper finds S close on K400."
    )
    return {
        "rows": rows,
        "finding": finding,
        "init": "inflated from the image model",
        "chance": CHANCE,
        "paper": paper.TABLE1.to_dict("records"),
    }


def _min_mean(by: dict, dataset: str) -> str:
    return f"{100 * min(row[dataset]['accuracy']['mean'] for row in by.values()):.0f}%"


def _latency(model: nn.Module, shape: tuple[int, ...]) -> float:
    """Seconds of one forward pass on a random clip (one run: these take seconds each on a CPU)."""
    video = torch.randn(shape)
    with torch.no_grad():
        start = time.perf_counter()
        model(video)
        return time.perf_counter() - start


def _cnn_macs(model_factory, video_shape: tuple[int, ...]) -> int:
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        model_factory()(torch.empty(video_shape))
    return counter.get_total_flops() // 2


def paper_scale_cost(latency: bool = True) -> dict:
    """ViT-B divided 8x224 beside I3D 8x8 R50: MACs per view (analytic and counted), params, CPU latency.

    The paper's 0.59 TFLOPs for TimeSformer are 3 views (3 crops) of 0.196 T multiply-adds. Its 1.11 for I3D
    follow SlowFast's convention of 30 views (10 clips x 3 crops) of 256 x 256; `views_implied` checks that.
    """
    vit = preset("base", scheme="divided_space_time", num_classes=400)
    with torch.device("meta"):
        counted = measure_flops(TimeSformer(vit), torch.empty(1, 3, 8, 224, 224)) // 2
        i3d_params = sum(p.numel() for p in i3d_r50(400).parameters())
    i3d_256 = _cnn_macs(i3d_r50, (1, 3, 8, 256, 256))
    cost = {
        "TimeSformer": {
            "input": "8x224x224",
            "gmacs_per_view": count_macs(vit)["total"] / 1e9,
            "gmacs_per_view_counted": counted / 1e9,
            "tmacs_3_views": 3 * count_macs(vit)["total"] / 1e12,
            "params": parameter_count(vit),
            "params_174_class_head": parameter_count(replace(vit, num_classes=174)),
        },
        "I3D 8x8 R50": {
            "gmacs_per_view_224": _cnn_macs(i3d_r50, (1, 3, 8, 224, 224)) / 1e9,
            "gmacs_per_view_256": i3d_256 / 1e9,
            "params": i3d_params,
            "views_implied_by_paper_1.11_tflops_at_256": 1.11e12 / i3d_256,
        },
    }
    if latency:
        torch.manual_seed(0)
        cost["TimeSformer"]["cpu_seconds_per_view"] = _latency(TimeSformer(vit).eval(), (1, 3, 8, 224, 224))
        cost["I3D 8x8 R50"]["cpu_seconds_per_view_224"] = _latency(i3d_r50(400).eval(), (1, 3, 8, 224, 224))
        cost["threads"] = torch.get_num_threads()
    return cost


def _seconds_to(target: float, history: list[dict]) -> float | None:
    """Training seconds until the first epoch whose validation accuracy reaches `target` (None: never)."""
    elapsed = 0.0
    for epoch in history:
        elapsed += epoch["seconds"]
        if epoch["val_accuracy"] >= target:
            return elapsed
    return None


def table2(runner: Runner, paper_scale: bool = True) -> dict:
    """Cost at paper scale; at small scale, training time until a fixed accuracy, tiny TimeSformer vs tiny I3D."""
    clip = runner.budget.model_config()
    small, sentences = {}, []
    for dataset, target in TARGETS.items():
        models = {}
        for name, (baseline, overrides) in (
            ("TimeSformer (tiny, divided)", _divided(dataset)),
            ("I3D (tiny, from scratch)", ("tiny_i3d", {"dataset": dataset})),
        ):
            cell = runner.cell(baseline, **overrides)
            reached = [t for run in cell["per_seed"] if (t := _seconds_to(target, run["history"])) is not None]
            macs = (
                _cnn_macs(lambda: tiny_i3d(10), (1, 3, clip.num_frames, clip.image_size, clip.image_size))
                if baseline
                else count_macs(replace(clip, num_classes=10))["total"]
            )
            models[name] = {
                **cell,
                "params": cell["per_seed"][0]["params"],
                "gmacs_per_clip": macs / 1e9,
                "seeds_reaching_target": len(reached),
                "seconds_to_target": _spread_or_none(reached),
            }
        small[dataset] = {"target_val_accuracy": target, **models}
        sentences.append(_race(dataset, target, models))
    return {
        "paper_scale": paper_scale_cost(latency=paper_scale),
        "small_scale": small,
        "finding": " ".join(sentences),
        "paper": paper.TABLE2.to_dict("records"),
    }


def _spread_or_none(values: list[float]) -> dict | None:
    return spread(values) if values else None


def _race(dataset: str, target: float, models: dict) -> str:
    (vit_name, vit), (cnn_name, cnn) = models.items()
    if not vit["seconds_to_target"] or not cnn["seconds_to_target"]:
        missing = [name for name, m in models.items() if not m["seconds_to_target"]]
        return f"On {dataset}, {' and '.join(missing)} did not reach {target:.0%} validation accuracy in the budget."
    faster = vit_name if vit["seconds_to_target"]["mean"] < cnn["seconds_to_target"]["mean"] else cnn_name
    return (
        f"On {dataset}, {faster} reaches {target:.0%} first ({vit['seconds_to_target']['mean']:.0f} s against "
        f"{cnn['seconds_to_target']['mean']:.0f} s)"
        + (
            "; the paper's TimeSformer also trains faster than I3D."
            if faster == vit_name
            else "; the paper finds the opposite at scale (416 against 444 V100 hours for more accuracy)."
        )
    )


def table3(runner: Runner) -> dict:
    """Divided space-time inflated from the image model vs from scratch, same budget."""
    rows = {
        d: {"image_pretrained": runner.cell(**_divided(d)[1]), "scratch": runner.cell(**_divided(d, init="")[1])}
        for d in DATASETS
    }
    gain = {
        d: 100 * (rows[d]["image_pretrained"]["accuracy"]["mean"] - rows[d]["scratch"]["accuracy"]["mean"])
        for d in DATASETS
    }
    finding = (
        f"Starting from the image model adds {gain['appearance']:+.1f} points on appearance and "
        f"{gain['motion']:+.1f} on motion"
        + (
            ": pretraining matters most where the class is what things look like, as the paper's 64.8% "
            "from scratch against 75.8% from ImageNet-1K on K400 shows."
            if gain["appearance"] > 5
            else ", a smaller gain than the paper's 11 points on K400."
        )
    )
    return {
        "rows": rows,
        "finding": finding,
        "chance": CHANCE,
        "image_model": runner.image_model_record(),
        "paper": paper.TABLE3.to_dict("records"),
        "paper_k400_from_scratch": paper.K400_FROM_SCRATCH,
    }


def table4(runner: Runner) -> dict:
    """Position embedding none / space-only / space-time, divided space-time (`POSITION_EMBEDDINGS`)."""
    rows = {
        p: {d: runner.cell(**_divided(d, pos_embed=p)[1]) for d in datasets}
        for p, datasets in POSITION_EMBEDDINGS.items()
    }
    twin = {p: 100 * rows[p]["motion"]["twin_accuracy"]["mean"] for p in rows}
    agrees = twin["space_time"] > max(twin["none"], twin["space"]) + 10
    finding = (
        f"Twin accuracy on motion: {twin['none']:.0f}% without a position embedding, {twin['space']:.0f}% "
        f"with a space-only one, {twin['space_time']:.0f}% with space and time"
        + (
            ": without a time embedding the model cannot tell which frame came first, the paper's SSv2 drop "
            "(45.8 and 52.5 against 59.5) at its starkest."
            if agrees
            else ", closer together than the paper's 45.8, 52.5 and 59.5 on SSv2."
        )
    )
    return {"rows": rows, "finding": finding, "chance": CHANCE, "paper": paper.TABLE4.to_dict("records")}


def figure4(runner: Runner) -> dict:
    """Accuracy against the number of training videos, space-only vs divided, on motion (the paper's Fig. 4)."""
    full = runner.budget.train_size
    sizes = [round(f * full) for f in FIGURE4_FRACTIONS]
    rows = {
        s: [{"train_size": n, **runner.cell(dataset="motion", scheme=s, init="image", train_size=n)} for n in sizes]
        for s in ("space_only", "divided_space_time")
    }
    last = {s: 100 * rows[s][-1]["accuracy"]["mean"] for s in rows}
    crossing = next(
        (
            n
            for n, a, b in zip(sizes, rows["space_only"], rows["divided_space_time"])
            if b["accuracy"]["mean"] > a["accuracy"]["mean"]
        ),
        None,
    )
    finding = (
        f"With all {full} training clips divided space-time reaches {last['divided_space_time']:.0f}% and "
        f"space-only {last['space_only']:.0f}%"
        + (
            f"; divided leads from {crossing} clips on, as in the paper's Fig. 4, where T+S overtakes S on "
            "SSv2 as the training set grows."
            if crossing is not None
            else "; space-only stays ahead at every size, unlike the paper's Fig. 4."
        )
    )
    return {"rows": rows, "sizes": sizes, "finding": finding, "chance": CHANCE["motion"]}


def direction(runner: Runner) -> dict:
    """Twin accuracy of divided space-time with the paper's start and with the previous-frame start, beside the
    tiny 3D CNN, on the motion clips of the reproduction."""
    rows = {
        f"TimeSformer (divided, {start} start)": runner.cell(**_divided("motion", temporal_init=start)[1])
        for start in ("paper", "previous_frame")
    }
    rows["tiny 3D CNN (I3D-style)"] = runner.cell("tiny_i3d", dataset="motion")
    twin = [100 * row["twin_accuracy"]["mean"] for row in rows.values()]
    finding = (
        f"Twin accuracy: {twin[0]:.0f}% with the paper's start, {twin[1]:.0f}% with the previous-frame start, "
        f"{twin[2]:.0f}% for the 3D CNN. The paper has no such check: the start is ours."
    )
    return {"rows": rows, "finding": finding, "chance": CHANCE["twin"]}


def figure3(batches: tuple[int, ...] = (1, 2)) -> dict:
    """MACs and estimated peak training memory of joint vs divided ViT-B over resolution and clip length.

    Memory is for training with the attention matrices materialised (`capture=True`), as the 2021 code did;
    a flash-style kernel would need far less. The paper does not give its per-GPU batch, so two are shown.
    """
    points = [("resolution", size, 8) for size in paper.FIGURE3_RESOLUTIONS] + [
        ("frames", 224, t) for t in paper.FIGURE3_FRAMES
    ]
    rows = []
    for scheme in ("joint_space_time", "divided_space_time"):
        for axis, size, frames in points:
            config = preset("base", scheme=scheme, image_size=size, num_frames=frames)
            row = {
                "scheme": scheme,
                "axis": axis,
                "image_size": size,
                "frames": frames,
                "tmacs": count_macs(config)["total"] / 1e12,
            }
            for batch in batches:
                gib = estimate_peak_bytes(config, batch=batch, capture=True, training=True) / GIB
                row[f"train_gib_batch{batch}"] = gib
                row[f"exceeds_32gib_batch{batch}"] = gib > GPU_GIB
            rows.append(row)
    with torch.device("meta"):  # the analytic count against torch's counter at the paper's clip
        check = {
            scheme: {
                "analytic": count_macs(preset("base", scheme=scheme))["total"],
                "counter": measure_flops(TimeSformer(preset("base", scheme=scheme)), torch.empty(1, 3, 8, 224, 224))
                // 2,
            }
            for scheme in ("joint_space_time", "divided_space_time")
        }
    return {"rows": rows, "counter_check_8x224": check, "paper": paper.JOINT_OUT_OF_MEMORY}


TRAINED = {
    "table1": table1,
    "table2": table2,
    "table3": table3,
    "table4": table4,
    "figure4": figure4,
    "direction": direction,
}
