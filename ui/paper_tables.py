"""The Ablations page's Tables 1-4: the paper's numbers (quoted) beside our small-scale reproduction (measured),
each with the sentence that states what ours shows, read from its JSON."""

import pandas as pd
import streamlit as st

from analysis import paper
from analysis.figures.charts import comparison_figure
from timesformer import SCHEMES
from ui.results import (
    chance_levels,
    how_measured,
    mean,
    not_run,
    pm,
    result,
    seconds_pm,
    show_finding,
    std,
)
from ui.widgets import chart

PAPER_COLUMNS = {"K400": "K400, paper", "SSv2": "SSv2, paper"}
ONE_DECIMAL = {
    name: st.column_config.NumberColumn(format="%.1f") for name in ("params (M), paper", "K400, paper", "SSv2, paper")
}


def table1_section() -> None:
    found = result("table1")
    quoted = paper.TABLE1.set_index("scheme")
    schemes = list(SCHEMES)
    names = [SCHEMES[s].paper_name for s in schemes]
    paper_columns = {
        f"{name}, paper": [quoted[name].get(s) for s in schemes] for name in ("params (M)", "K400", "SSv2")
    }
    if found is None:
        not_run()
        st.dataframe(
            pd.DataFrame({"scheme": names, **paper_columns}),
            hide_index=True,
            width="stretch",
            column_config=ONE_DECIMAL,
        )
        return
    rows = {row["scheme"]: row for row in found["rows"]}
    ours = {s: rows.get(s, {}) for s in schemes}  # a scheme registered after the run has no row: dashes
    st.dataframe(
        pd.DataFrame(
            {
                "scheme": names,
                **paper_columns,
                "params, ours": [f"{ours[s]['params']:,}" if ours[s] else "–" for s in schemes],
                "appearance, ours": [pm(ours[s].get("appearance")) for s in schemes],
                "motion, ours": [pm(ours[s].get("motion")) for s in schemes],
                "motion twin acc., ours": [pm(ours[s].get("motion"), "twin_accuracy") for s in schemes],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config=ONE_DECIMAL,
    )
    chart(
        comparison_figure(
            names,
            {f"{name} (paper)": paper_columns[f"{name}, paper"] for name in ("K400", "SSv2")},
            {f"{d} (ours)": [mean(ours[s].get(d)) for s in schemes] for d in ("appearance", "motion")},
            ("paper: top-1 % (quoted)", "ours: top-1 % on generated clips (measured)"),
            right_errors={f"{d} (ours)": [std(ours[s].get(d)) for s in schemes] for d in ("appearance", "motion")},
            right_levels=chance_levels(found),
        ),
        "table1_chart",
    )
    show_finding(found)
    st.caption(
        how_measured(found) + " Twin accuracy: how often the true motion scores above its time-reversed "
        "twin (50% for a model blind to frame order). Error bars: std over seeds. K400 and its stand-in, "
        "appearance, are blue; SSv2 and motion, orange, in every chart here."
    )


def table2_section() -> None:
    found = result("table2")
    st.dataframe(
        paper.TABLE2,
        hide_index=True,
        width="stretch",
        column_config={"K400": st.column_config.NumberColumn("K400, paper", format="%.1f")},
    )
    st.caption(f"Above: {paper.QUOTED} (Table 2). Training time in V100 GPU hours, TFLOPs for 3 views.")
    if found is None:
        not_run()
    else:
        scale = found.get("paper_scale")
        if scale:
            vit, i3d = scale["TimeSformer"], scale["I3D 8x8 R50"]
            latency = "threads" in scale  # measured only in a full run
            st.markdown("**Ours at paper scale: cost of one 8×224² view, computed (no training)**")
            st.dataframe(
                pd.DataFrame(
                    {
                        "model": ["TimeSformer (divided, ViT-B)", "I3D 8×8 R50"],
                        "GMACs per view": [
                            f"{vit['gmacs_per_view']:.1f} (torch counter {vit['gmacs_per_view_counted']:.1f})",
                            f"{i3d['gmacs_per_view_224']:.1f} at 224², {i3d['gmacs_per_view_256']:.1f} at 256²",
                        ],
                        "params": [f"{vit['params']:,}", f"{i3d['params']:,}"],
                        **(
                            {
                                f"CPU s per view ({scale.get('threads')} threads)": [
                                    f"{vit['cpu_seconds_per_view']:.1f}",
                                    f"{i3d['cpu_seconds_per_view_224']:.1f}",
                                ]
                            }
                            if latency
                            else {}
                        ),
                    }
                ),
                hide_index=True,
                width="stretch",
            )
            st.caption(
                f"Paper: 0.59 TFLOPs for TimeSformer's 3 views, i.e. 196 GMACs per view; ours "
                f"{vit['gmacs_per_view']:.1f}. The paper's 1.11 TFLOPs for I3D equal "
                f"{i3d['views_implied_by_paper_1.11_tflops_at_256']:.1f} views of 256² by our count."
            )
        for dataset, small in found["small_scale"].items():
            target = small["target_val_accuracy"]
            st.markdown(f"**Ours at small scale: time to reach {target:.0%} validation accuracy on {dataset}**")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "model": name,
                            "params": f"{model['params']:,}",
                            "GMACs per clip": f"{model['gmacs_per_clip']:.3f}",
                            "accuracy": pm(model),
                            "training (s)": seconds_pm(model, "train_seconds"),
                            "seeds reaching target": model["seeds_reaching_target"],
                            "seconds to target": seconds_pm(model, "seconds_to_target"),
                        }
                        for name, model in small.items()
                        if name != "target_val_accuracy"
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        show_finding(found)
        st.caption(how_measured(found))


def table3_section() -> None:
    found = result("table3")
    st.dataframe(
        paper.TABLE3.rename(columns=PAPER_COLUMNS), hide_index=True, width="stretch", column_config=ONE_DECIMAL
    )
    st.caption(
        f"Above: {paper.QUOTED} (Table 3). From scratch on K400, with a longer schedule: "
        f"{paper.K400_FROM_SCRATCH}% ({paper.QUOTED}, Sec. 4.2)."
    )
    if found is None:
        not_run()
    else:
        rows = found["rows"]
        starts = {"image_pretrained": "image model, inflated", "scratch": "from scratch"}
        st.dataframe(
            pd.DataFrame(
                [{"start": label, **{f"{d}, ours": pm(rows[d][key]) for d in rows}} for key, label in starts.items()]
            ),
            hide_index=True,
            width="stretch",
        )
        chart(
            comparison_figure(
                ["from scratch", "ImageNet-1K / image model", "ImageNet-21K"],
                {"K400 (paper)": [paper.K400_FROM_SCRATCH, 75.8, 78.0]},
                {f"{d} (ours)": [mean(rows[d]["scratch"]), mean(rows[d]["image_pretrained"]), None] for d in rows},
                ("paper: K400 top-1 % (quoted)", "ours: top-1 % (measured)"),
                right_errors={
                    f"{d} (ours)": [std(rows[d]["scratch"]), std(rows[d]["image_pretrained"]), None] for d in rows
                },
                right_levels=chance_levels(found),
            ),
            "table3_chart",
        )
        show_finding(found)
        image = found.get("image_model", {}).get("val_accuracy")
        st.caption(
            how_measured(found)
            + (
                ""
                if image is None
                else " The image model (space-only ViT on single "
                f"generated frames) reached {image:.1%} on its own validation images."
            )
        )


def table4_section() -> None:
    found = result("table4")
    quoted = paper.TABLE4.set_index("pos_embed")
    order = list(quoted.index)
    labels = list(quoted["positional embedding"])
    if found is None:
        not_run()
        st.dataframe(
            paper.TABLE4.drop(columns="pos_embed").rename(columns=PAPER_COLUMNS),
            hide_index=True,
            width="stretch",
            column_config=ONE_DECIMAL,
        )
    else:
        rows = found["rows"]
        st.dataframe(
            pd.DataFrame(
                {
                    "positional embedding": labels,
                    "K400, paper": list(quoted["K400"]),
                    "SSv2, paper": list(quoted["SSv2"]),
                    "appearance, ours": [pm(rows[p].get("appearance")) for p in order],
                    "motion, ours": [pm(rows[p].get("motion")) for p in order],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config=ONE_DECIMAL,
        )
        chart(
            comparison_figure(
                labels,
                {"K400 (paper)": list(quoted["K400"]), "SSv2 (paper)": list(quoted["SSv2"])},
                {f"{d} (ours)": [mean(rows[p].get(d)) for p in order] for d in ("appearance", "motion")},
                ("paper: top-1 % (quoted)", "ours: top-1 % (measured)"),
                right_errors={f"{d} (ours)": [std(rows[p].get(d)) for p in order] for d in ("appearance", "motion")},
                right_levels=chance_levels(found),
            ),
            "table4_chart",
        )
        show_finding(found)
        untrained = [p for p in order if "appearance" not in rows[p]]
        st.caption(
            how_measured(found)
            + (
                f" On appearance only the space-time embedding was trained (shared with Table 1; "
                f"{', '.join(untrained)}: –), to keep the whole reproduction under 90 minutes on 2 cores."
                if untrained
                else ""
            )
        )
