"""A split LoRA training step against the same unsplit step, and the time to profile every cut.

Both steps run on the same device, fp32, same batch, same model (LoRA rank 8 on every linear layer
of the blocks), alternating so drift hits both alike; each figure is the median of `--repeats`.
Target: split overhead <= 5 %. Then the wall time of `profile_model` for BERT-base (every cut
layer from one split step at every block boundary, plus one timed step).

    python benchmarks/bench_split.py [--repeats 5] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from _common import print_table  # noqa: E402

from splitsim.learning import LoraSpec, ModelSpec, apply_lora, build_model, profile_model, split_model, split_step  # noqa: E402
from splitsim.learning.profile import device_label, resolve_device, synthetic_batch  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(preset: str, batch_size: int, seq: int, cuts: list[int], repeats: int, device) -> list:
    model, arch = build_model(ModelSpec(preset))
    model = apply_lora(model, arch, LoraSpec(rank=8)).to(device)
    model.train()
    batch = synthetic_batch(arch, "classification", model.get_base_model().config, batch_size, seq, None, device)
    tiers = split_model(model, arch, "classification", cuts)

    def unsplit():
        model(**batch).loss.backward()

    def split():
        split_step(tiers, batch)

    times = {"unsplit": [], "split": []}
    for fn in (unsplit, split):  # warm-up
        fn()
        model.zero_grad(set_to_none=True)
    for _ in range(repeats):
        for name, fn in (("unsplit", unsplit), ("split", split)):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    u, s = statistics.median(times["unsplit"]), statistics.median(times["split"])
    return [preset, f"{batch_size}x{seq}", str(cuts), u, s, 100 * (s - u) / u]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = [compare("bert-tiny", 16, 128, [1, 3], args.repeats * 4, device),
            compare("bert-base", 16, 128, [1], args.repeats, device),
            compare("bert-base", 16, 128, [1, 6], args.repeats, device)]
    print_table(f"Split vs unsplit LoRA training step (fp32, median of {args.repeats}+ runs) on {device_label(device)}",
                ["model", "batch", "cuts", "unsplit s", "split s", "overhead %"], rows)
    start = time.perf_counter()
    profile = profile_model(ModelSpec("bert-base"), LoraSpec(rank=8), 16, 128, device=args.device, use_cache=False)
    wall = time.perf_counter() - start
    print_table("Profiling every cut layer of BERT-base (batch 16 x 128, fp32, one counting + one timed step)",
                ["model", "cuts profiled", "device", "wall s"],
                [["bert-base", profile.num_blocks + 1, profile.device, wall]])


if __name__ == "__main__":
    main()
