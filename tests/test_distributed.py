"""Training with torchrun on this machine: 2 processes (DDP, gloo) give the model 1 process gives with the same
global batch, each process takes its own slice of every batch, and a state written by 2 processes resumes in 1.

Tolerance, stated: weights within 1e-4 and epoch losses within 1e-5 of the 1-process run. In these runs the
weights move about 5e-3 from their initialisation, and training with half the global batch lands 7e-3 away;
2 processes land 1e-5 away (float rounding: the slices' gradients are summed in another order).

Run as a script under torchrun, this file is the worker of the resume test (see `_worker`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from timesformer import train as training
from timesformer.checkpoints import load_checkpoint
from timesformer.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # torchrun starts processes: tens of seconds

CONFIG = TrainConfig(preset="tiny", train_size=61, val_size=16, epochs=2, batch_size=16, threads=1)
"""61 clips in batches of 16: the last batch of 13 splits 7 + 6, which checks the weighting of unequal slices."""
WEIGHT_TOLERANCE, LOSS_TOLERANCE = 1e-4, 1e-5


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def one_process() -> training.TrainResult:
    """The reference: the same config trained in this process."""
    threads = torch.get_num_threads()
    result = training.train(CONFIG, progress=False)
    torch.set_num_threads(threads)
    return result


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    b_state = b.state_dict()
    return max((value - b_state[name]).abs().max().item() for name, value in a.state_dict().items())


def assert_same_history(state: dict, reference: training.TrainResult) -> None:
    for saved, expected in zip(state["history"], reference.history, strict=True):
        assert abs(saved["loss"] - expected.loss) < LOSS_TOLERANCE
        assert saved["train_accuracy"] == pytest.approx(expected.train_accuracy)


def test_two_processes_train_the_model_one_process_trains(tmp_path: Path, one_process: training.TrainResult) -> None:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in CONFIG.to_dict().items() if v != getattr(TrainConfig(), k)]
    done = torchrun(
        "-m", "timesformer", "train", *flags, "--out", "two.safetensors", "--state", "two.state", cwd=tmp_path
    )
    assert (done.stdout + done.stderr).count("epoch 2/2  loss") == 1  # only rank 0 logs
    two = load_checkpoint(tmp_path / "two.safetensors")
    assert max_weight_difference(two.model, one_process.model) < WEIGHT_TOLERANCE
    assert_same_history(torch.load(tmp_path / "two.state", weights_only=True), one_process)


def test_slices_partition_every_batch_and_state_resumes_in_one_process(
    tmp_path: Path, one_process: training.TrainResult
) -> None:
    torchrun(__file__, "half.state", cwd=tmp_path)
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    order = torch.randperm(CONFIG.train_size, generator=torch.Generator().manual_seed(CONFIG.seed * 100_003))
    for step, batch in enumerate(order.split(CONFIG.batch_size)):
        first, second = batch.tensor_split(2)
        assert (seen[0][step], seen[1][step]) == (first.tolist(), second.tolist())

    state = torch.load(tmp_path / "half.state", weights_only=True)
    assert len(state["history"]) == 1
    resumed = training.train(CONFIG, state=tmp_path / "half.state", progress=False)
    assert max_weight_difference(resumed.model, one_process.model) < WEIGHT_TOLERANCE
    assert_same_history(torch.load(tmp_path / "half.state", weights_only=True), one_process)


class _Stop(Exception):
    pass


def _worker(state: str) -> None:
    """One torchrun process: train CONFIG, record the clips of each of its training batches in rank<r>.json,
    and stop after the first epoch (its state is written then, by rank 0)."""
    seen: list[list[int]] = []
    clips = training.clips

    def recording(videos, index):
        if isinstance(index, torch.Tensor):  # training batches; validation passes slices
            seen.append(index.tolist())
        return clips(videos, index)

    def stop(_: training.EpochLog) -> None:
        raise _Stop

    training.clips = recording
    try:
        training.train(CONFIG, state=state, progress=False, on_epoch=stop)
    except _Stop:
        pass
    rank = torch.distributed.get_rank()
    Path(f"rank{rank}.json").write_text(json.dumps(seen))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1])
