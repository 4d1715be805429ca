"""Per-tier peak memory of a profile (real step and weight-free) against the CPU allocator's measured peak.

For each case the tier's own training step (receive, forward, backward, AdamW step) runs under
torch's profiler, whose allocation events carry the allocator's running total
(learning/measured_memory.py); the profile's figure is parameters + gradients + optimizer state +
saved tensors + the measured transient. LoRA r = 8 on every linear layer, float32, batch 4.

    .venv/bin/python benchmarks/bench_memory.py
"""

from __future__ import annotations

from splitsim.learning import LoraSpec, ModelSpec, profile_model
from splitsim.learning.measured_memory import measured_tier_peak_bytes

CASES = [("bert-base", "classification", 128, [1], 0), ("bert-base", "classification", 128, [1], 1),
         ("bert-base", "classification", 128, [6], 0), ("gpt2", "classification", 256, [1], 0),
         ("gpt2", "classification", 256, [1], 1), ("qwen2.5-0.5b", "causal_lm", 256, [1], 0),
         ("qwen2.5-0.5b", "causal_lm", 256, [12], 1), ("llama-tiny", "causal_lm", 128, [1], 0)]


def main() -> None:
    print(f"{'model':<13} {'tokens':>6} {'cuts':>5} {'tier':<7} {'measured MiB':>13} {'real-step MiB':>14} "
          f"{'ratio':>6} {'weight-free MiB':>16} {'ratio':>6}")
    lora = LoraSpec(rank=8)
    for name, task, seq, cuts, tier in CASES:
        measured = measured_tier_peak_bytes(ModelSpec(name, task=task), lora, 4, seq, cuts, tier)
        ours = [profile_model(ModelSpec(name, task=task, weights=w), lora, 4, seq, use_cache=False,
                              timed=False).tiers(cuts)[tier].peak_memory_bytes for w in ("random", "none")]
        mib = 2**20
        print(f"{name:<13} {seq:>6} {cuts[0]:>5} {('user', 'server')[tier]:<7} {measured / mib:>13.1f} "
              f"{ours[0] / mib:>14.1f} {ours[0] / measured:>6.3f} {ours[1] / mib:>16.1f} {ours[1] / measured:>6.3f}")


if __name__ == "__main__":
    main()
