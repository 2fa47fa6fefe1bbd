"""Numbers quoted from the paper, for display beside our own measurements, never mixed with them.

Bertasius, Wang, Torresani, "Is Space-Time Attention All You Need for Video Understanding?", ICML 2021
(arXiv 2102.05095). Transcribed in /work/shared/paper-tables.md (Tables 1-4, Fig. 3 text). Accuracies are
top-1 % on Kinetics-400 (K400) and Something-Something-v2 (SSv2); the app labels every one "quoted from the paper".
"""

from __future__ import annotations

import pandas as pd

CITATION = "Bertasius, Wang & Torresani, ICML 2021 (arXiv 2102.05095)"
QUOTED = "quoted from the paper"

SCHEME_ORDER = ("space_only", "joint_space_time", "divided_space_time", "sparse_local_global", "axial")

TABLE1 = pd.DataFrame(
    {
        "scheme": SCHEME_ORDER,
        "attention": [
            "Space (S)",
            "Joint Space-Time (ST)",
            "Divided Space-Time (T+S)",
            "Sparse Local Global (L+G)",
            "Axial (T+W+H)",
        ],
        "params (M)": [85.9, 85.9, 121.4, 121.4, 156.8],
        "K400": [76.9, 77.4, 78.0, 75.9, 73.5],
        "SSv2": [36.6, 58.5, 59.5, 56.3, 56.2],
    }
)
"""Table 1: the five attention schemes, ViT-B from ImageNet-21K, 8 x 224 x 224 clips."""

TABLE2 = pd.DataFrame(
    {
        "model": [
            "I3D 8x8 R50",
            "I3D 8x8 R50",
            "SlowFast R50",
            "SlowFast R50",
            "SlowFast R50",
            "TimeSformer",
            "TimeSformer",
        ],
        "pretrain": [
            "ImageNet-1K",
            "ImageNet-1K",
            "ImageNet-1K",
            "ImageNet-1K",
            "none (scratch)",
            "ImageNet-1K",
            "ImageNet-21K",
        ],
        "K400 training (V100 hours)": [444, 1440, 448, 3840, 6336, 416, 416],
        "K400": [71.0, 73.4, 70.0, 75.6, 76.4, 75.8, 78.0],
        "inference TFLOPs (3 views)": [1.11, 1.11, 1.97, 1.97, 1.97, 0.59, 0.59],
        "params (M)": [28.0, 28.0, 34.6, 34.6, 34.6, 121.4, 121.4],
    }
)
"""Table 2: TimeSformer against 3D CNNs on K400, cost and accuracy."""

TABLE3 = pd.DataFrame(
    {
        "model": ["TimeSformer", "TimeSformer", "TimeSformer-HR", "TimeSformer-HR", "TimeSformer-L", "TimeSformer-L"],
        "pretraining": ["ImageNet-1K", "ImageNet-21K"] * 3,
        "K400": [75.8, 78.0, 77.8, 79.7, 78.1, 80.7],
        "SSv2": [59.5, 59.5, 62.2, 62.5, 62.4, 62.3],
    }
)
"""Table 3: ImageNet-1K vs ImageNet-21K pretraining."""

K400_FROM_SCRATCH = 64.8
"""Sec. 4.2: K400 accuracy trained from scratch, with a longer schedule and more augmentation."""

TABLE4 = pd.DataFrame(
    {
        "positional embedding": ["None", "Space-only", "Space-Time"],
        "pos_embed": ["none", "space", "space_time"],
        "K400": [75.4, 77.8, 78.0],
        "SSv2": [45.8, 52.5, 59.5],
    }
)
"""Table 4: positional embedding ablation (divided space-time)."""

FIGURE3_RESOLUTIONS = (224, 336, 448, 560)
FIGURE3_FRAMES = (8, 32, 64, 96)
JOINT_OUT_OF_MEMORY = {"resolution": 448, "frames": 32}
"""Sec. 4.1: joint space-time attention runs out of (32 GB V100) GPU memory from 448 px or from 32 frames;
the paper plots Fig. 3's TFLOPs but does not print them, so the app computes those."""
