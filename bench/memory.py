"""Measured memory of one forward (and backward) pass: the ground truth `timesformer.cost.memory_breakdown`'s
estimate is checked against (`tests/test_cost.py`)."""

from __future__ import annotations

import weakref

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from timesformer.model import TimeSformer


class _StorageTracker(TorchDispatchMode):
    """Live bytes of the tensor storages created while active, and their peak.

    A storage counts from the op that creates it until Python frees it; outputs that alias an input (views,
    in-place ops) create nothing. What existed before (weights, the input clip) is not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)}
        for tensor in tree_leaves(out):
            if not isinstance(tensor, Tensor):
                continue
            storage = tensor.untyped_storage()
            if storage.data_ptr() in inputs or storage.nbytes() == 0:
                continue
            inputs.add(storage.data_ptr())
            self.live += storage.nbytes()
            weakref.finalize(storage, self._release, storage.nbytes())
        self.peak = max(self.peak, self.live)
        return out

    def _release(self, nbytes: int) -> None:
        self.live -= nbytes


def measure_peak_bytes(model: TimeSformer, video: Tensor, capture: bool = False, training: bool = False) -> int:
    """Peak bytes of the tensors one pass allocates beyond the weights and the clip.

    Inference runs under `no_grad`; training also runs backward from the summed logits (gradients returned,
    not accumulated, so the model is left as found). `capture` takes the explicit softmax path and keeps
    every block's attention probabilities, as `inspect` does.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.set_grad_enabled(training), _StorageTracker() as tracker:
        logits = model.inspect(video).logits if capture else model(video)
        if training:
            torch.autograd.grad(logits.sum(), params)
        del logits
    return tracker.peak
