import datetime
import json

import pytest
import torch
from hf_fixtures import tiny_hf_config
from safetensors.torch import save_file
from transformers import TimesformerForVideoClassification

from timesformer import TimeSformer, preset
from timesformer.checkpoints import (
    CheckpointError,
    LoadedModel,
    load_checkpoint,
    save_checkpoint,
)
from timesformer.key_names import official_state_dict

FRAMES, SIZE = 4, 32


def hf_model(attention_type: str) -> TimesformerForVideoClassification:
    config = tiny_hf_config(
        image_size=SIZE,
        num_frames=FRAMES,
        hidden_size=128,
        intermediate_size=512,
        num_labels=5,
        attention_type=attention_type,
        id2label={i: f"action {i}" for i in range(5)},
        label2id={f"action {i}": i for i in range(5)},
    )
    model = TimesformerForVideoClassification(config).eval()
    with torch.no_grad():  # the HF init leaves biases and embeddings at zero; make every tensor count
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model


def hf_logits(model: TimesformerForVideoClassification, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values=video.permute(0, 2, 1, 3, 4)).logits  # HF takes [B, T, C, H, W]


@pytest.fixture(params=["divided_space_time", "joint_space_time"])
def reference(request, tmp_path):
    model = hf_model(request.param)
    video = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    return model, video, hf_logits(model, video), request.param


def test_hugging_face_folder_gives_the_same_logits(reference, tmp_path) -> None:
    model, video, expected, scheme = reference
    model.save_pretrained(tmp_path)
    loaded = load_checkpoint(tmp_path)
    assert loaded.source_format == "huggingface" and loaded.config.scheme == scheme
    assert loaded.labels == [f"action {i}" for i in range(5)]
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), expected, atol=1e-4, rtol=0)


def test_bare_hugging_face_state_dict_loads(reference, tmp_path) -> None:
    model, video, expected, _ = reference
    path = tmp_path / "weights.bin"
    torch.save(model.state_dict(), path)
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(path).model(video), expected, atol=1e-4, rtol=0)


def test_official_pyth_layout_loads(reference, tmp_path) -> None:
    model, video, expected, scheme = reference
    ours = load_checkpoint_from_hf(model, tmp_path)
    path = tmp_path / "TimeSformer_8x32_224.pyth"
    state = official_state_dict(ours)
    assert all(k.startswith("model.") for k in state) and "model.blocks.0.attn.qkv.weight" in state
    torch.save(
        {"epoch": 15, "model_state": state, "optimizer_state": {}, "cfg": "TIMESFORMER:\n  ATTENTION_TYPE: x\n"}, path
    )
    loaded = load_checkpoint(path)
    assert loaded.source_format == "official" and loaded.config.scheme == scheme and loaded.mean == (0.45,) * 3
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), expected, atol=1e-4, rtol=0)


def load_checkpoint_from_hf(model, folder) -> TimeSformer:
    model.save_pretrained(folder / "hf")
    return load_checkpoint(folder / "hf").model


def mmaction_state_dict(model: TimeSformer) -> dict[str, torch.Tensor]:
    """Our weights under MMAction2's names, written out by hand from its TimeSformer backbone."""
    divided = model.config.scheme == "divided_space_time"
    state = {
        "backbone.cls_token": model.cls_token,
        "backbone.pos_embed": model.pos_embed,
        "backbone.patch_embed.projection.weight": model.patch_embed.proj.weight,
        "backbone.patch_embed.projection.bias": model.patch_embed.proj.bias,
        "backbone.norm.weight": model.norm.weight,
        "backbone.norm.bias": model.norm.bias,
        "cls_head.fc_cls.weight": model.head.weight,
        "cls_head.fc_cls.bias": model.head.bias,
    }
    if model.time_embed is not None:
        state["backbone.time_embed"] = model.time_embed
    for i, block in enumerate(model.blocks):
        layer = f"backbone.transformer_layers.layers.{i}."
        attentions = (
            [(block.temporal_norm1, block.temporal_attn), (block.norm1, block.attn)]
            if divided
            else [(block.norm1, block.attn)]
        )
        for j, (norm, attn) in enumerate(attentions):
            prefix = f"{layer}attentions.{j}."
            state |= {
                f"{prefix}attn.in_proj_weight": attn.qkv.weight,
                f"{prefix}attn.in_proj_bias": attn.qkv.bias,
                f"{prefix}attn.out_proj.weight": attn.proj.weight,
                f"{prefix}attn.out_proj.bias": attn.proj.bias,
            }
            norm_key = f"{prefix}norm." if divided else f"{layer}norms.0."
            state |= {f"{norm_key}weight": norm.weight, f"{norm_key}bias": norm.bias}
        if divided:
            state |= {
                f"{layer}attentions.0.temporal_fc.weight": block.temporal_fc.weight,
                f"{layer}attentions.0.temporal_fc.bias": block.temporal_fc.bias,
            }
        norm2 = f"{layer}ffns.0.norm." if divided else f"{layer}norms.1."
        state |= {
            f"{norm2}weight": block.norm2.weight,
            f"{norm2}bias": block.norm2.bias,
            f"{layer}ffns.0.layers.0.0.weight": block.mlp.fc1.weight,
            f"{layer}ffns.0.layers.0.0.bias": block.mlp.fc1.bias,
            f"{layer}ffns.0.layers.1.weight": block.mlp.fc2.weight,
            f"{layer}ffns.0.layers.1.bias": block.mlp.fc2.bias,
        }
    return {k: v.detach().clone() for k, v in state.items()}


def test_loading_takes_the_files_tensors_without_a_random_initialisation(tmp_path, monkeypatch) -> None:
    """The model is built on the meta device and given copies of the file's tensors: no time is spent drawing
    random weights that are overwritten at once, and the model owns its weights (the file's tensors may go)."""
    model = TimeSformer(preset("tiny", num_classes=3)).eval()
    state = official_state_dict(model)
    torch.save({"model_state": state}, tmp_path / "tiny.pyth")

    draw = torch.nn.init.trunc_normal_

    def only_on_meta(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        assert tensor.device.type == "meta", "a loaded model must not draw random weights"
        return draw(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "trunc_normal_", only_on_meta)
    loaded = load_checkpoint(tmp_path / "tiny.pyth", num_heads=4)  # an official file does not record its heads
    parameters = dict(loaded.model.named_parameters())
    assert all(p.device.type == "cpu" and p.requires_grad and p.dtype == torch.float32 for p in parameters.values())
    video = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), model(video), atol=0, rtol=0)
        state["model.head.weight"].zero_()  # the loaded model holds copies, not the caller's tensors
        assert parameters["head.weight"].abs().sum() > 0


@pytest.mark.parametrize("scheme", ["divided_space_time", "joint_space_time", "space_only"])
def test_mmaction2_checkpoint_loads(scheme: str, tmp_path) -> None:
    model = TimeSformer(preset("tiny", scheme=scheme, num_classes=7, embed_dim=128, num_heads=2)).eval()
    path = tmp_path / "timesformer_mmaction.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": mmaction_state_dict(model)}, path)
    loaded = load_checkpoint(path)
    assert loaded.source_format == "mmaction2" and loaded.config.scheme == scheme
    assert loaded.mean == (0.5,) * 3 and loaded.std == (0.5,) * 3  # MMAction2 scales pixels to [-1, 1]
    video = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), model(video))


@pytest.mark.parametrize("scheme", ["sparse_local_global", "axial", "space_only"])
def test_our_format_round_trip_keeps_config_labels_and_normalisation(scheme: str, tmp_path) -> None:
    model = TimeSformer(preset("tiny", scheme=scheme, num_classes=3, pos_embed="space")).eval()
    path = tmp_path / "demo.safetensors"
    save_checkpoint(
        path, LoadedModel(model, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), ["a", "b", "c"], "ours"), trained_on="motion"
    )
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and loaded.labels == ["a", "b", "c"]
    assert (
        loaded.mean == (0.1, 0.2, 0.3) and loaded.std == (0.4, 0.5, 0.6) and loaded.metadata["trained_on"] == "motion"
    )
    video = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(video), model(video))


class NotATensor:
    pass


def test_unusable_files_raise_one_clear_error(tmp_path) -> None:
    good = TimeSformer(preset("tiny")).state_dict()
    cases = {}
    cases["missing.pth"] = (None, "no checkpoint")
    (tmp_path / "empty.pth").write_bytes(b"")
    cases["empty.pth"] = (True, "empty")
    (tmp_path / "notes.pth").write_text("these are my notes, not weights")
    cases["notes.pth"] = (True, "not a readable PyTorch checkpoint")
    torch.save({"model_state": {f"model.{k}": v for k, v in good.items()}}, tmp_path / "full.pyth")
    data = (tmp_path / "full.pyth").read_bytes()
    (tmp_path / "truncated.pyth").write_bytes(data[: len(data) // 2])
    cases["truncated.pyth"] = (True, "not a readable PyTorch checkpoint")
    torch.save({"weights": NotATensor(), "when": datetime.datetime.now()}, tmp_path / "pickle.pth")
    cases["pickle.pth"] = (True, "Python objects other than plain tensors")
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other_model.pth")
    cases["other_model.pth"] = (True, "not a TimeSformer checkpoint")
    torch.save({k: v for k, v in good.items() if k != "blocks.1.mlp.fc2.bias"}, tmp_path / "missing_key.pth")
    cases["missing_key.pth"] = (True, "missing: blocks.1.mlp.fc2.bias")
    torch.save({**good, "blocks.0.extra.weight": torch.zeros(2)}, tmp_path / "extra_key.pth")
    cases["extra_key.pth"] = (True, "unexpected: blocks.0.extra.weight")
    torch.save({**good, "norm.weight": torch.zeros(65)}, tmp_path / "wrong_shape.pth")
    cases["wrong_shape.pth"] = (True, r"wrong shape: norm.weight \(65,\)")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    cases["bad.safetensors"] = (True, "not a readable safetensors")
    (tmp_path / "folder").mkdir()
    cases["folder"] = (True, "without config.json")
    for name, (_, message) in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / name)


def test_bare_state_dict_with_unusual_head_count_needs_num_heads(tmp_path) -> None:
    model = TimeSformer(preset("tiny", num_heads=4)).eval()  # 16 channels per head, not ViT's 64
    torch.save(official_state_dict(model), tmp_path / "tiny.pyth")
    video = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(load_checkpoint(tmp_path / "tiny.pyth").model(video), model(video), atol=1e-4)
        torch.testing.assert_close(load_checkpoint(tmp_path / "tiny.pyth", num_heads=4).model(video), model(video))


def test_hugging_face_folder_problems(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not a TimeSformer config"):
        load_checkpoint(tmp_path)
    hf_model("divided_space_time").config.to_json_file(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_checkpoint(tmp_path)
    save_file({"x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(tmp_path)
