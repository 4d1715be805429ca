"""Weight-free vs real-step profiles: wall time and peak memory (RSS) of one profile each.

Each profile runs in its own process (so that its peak RSS is its own): every cut of the model,
LoRA r = 16 on every linear layer, AdamW accounting, float32, causal LM.

    .venv/bin/python benchmarks/bench_profiles.py            # 1B, 8B, 70B weight-free; 1B real
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from splitsim.learning import LoraSpec, ModelSpec, profile_model
name, weights, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
p = profile_model(ModelSpec(name, task="causal_lm", weights=weights), LoraSpec(rank=16), 1, seq,
                  use_cache=False, timed=weights != "none")
print(json.dumps({"seconds": time.perf_counter() - start, "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "blocks": p.num_blocks, "gflop": p.whole().flops / 1e9, "cut1_mib": p.boundary(1).forward_bytes / 2**20}))
"""

CASES = [("llama-3.2-1b", "none", 2048), ("llama-3.1-8b", "none", 2048), ("llama-3.1-70b", "none", 2048),
         ("llama-3.2-1b", "none", 512), ("llama-3.2-1b", "random", 512)]


def main() -> None:
    print(f"{'model':<15} {'weights':<8} {'tokens':>6} {'blocks':>6} {'time (s)':>9} {'peak RSS (GiB)':>15} "
          f"{'step GFLOP':>11} {'cut-1 MiB':>10}")
    for name, weights, seq in CASES:
        done = subprocess.run([sys.executable, "-c", CHILD, name, weights, str(seq)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name:<15} {weights:<8} {seq:>6} failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:<15} {weights:<8} {seq:>6} {r['blocks']:>6} {r['seconds']:>9.1f} {r['rss_gib']:>15.2f} "
              f"{r['gflop']:>11.4g} {r['cut1_mib']:>10.4g}")


if __name__ == "__main__":
    main()
