"""Training throughput: samples per second of each scheme's rounds against a plain unsplit loop.

Every scheme trains the same model on the same synthetic batches (learning/data.py's keyword task)
for the same number of mini-batch steps (users x V local steps a round, evaluation excluded); the
reference is the unsplit model's own loop — forward, loss, backward, AdamW — over those batches. A
ratio below 1 is what the scheme's bookkeeping costs (split steps, state swaps between users,
optimisers per user, averaging). Evaluation is timed separately (samples per second, no gradients).

    .venv/bin/python benchmarks/bench_training.py [--model minilm|bert-tiny] [--steps 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import print_table

from splitsim.learning import LoraSpec, ModelSpec, apply_lora, build_model
from splitsim.learning.data import partition, synthetic_task
from splitsim.learning.train import FederatedTrainer, TrainSettings


def _model(name: str, seq: int):
    spec = ModelSpec(name, num_labels=2)
    model, arch = build_model(spec)
    return apply_lora(model, arch, LoraSpec(rank=8, alpha=16)), arch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--steps", type=int, default=5, help="local steps per user per round")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seq", type=int, default=48)
    args = parser.parse_args()
    torch.manual_seed(0)
    batch = 16
    model, arch = _model(args.model, args.seq)
    vocab = model.get_base_model().config.vocab_size
    data = synthetic_task("text", batch * args.steps * args.users * 2, 2, 0, vocab, args.seq)
    evaluation = synthetic_task("text", 256, 2, 1, vocab, args.seq)
    parts = partition(data.labels.numpy(), args.users, "iid", 0.5, 0)
    steps = args.users * args.steps * args.rounds
    rows = []

    # the reference: the unsplit model's own loop over the same number of batches, after 3 untimed
    # steps (the first calls of a fresh process pay for allocations and kernel selection)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    rng = np.random.default_rng(0)
    model.train()
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        b = data.batch(rng.choice(len(data), batch, replace=False))
        model(**b).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    reference = steps * batch / (time.perf_counter() - start)
    rows.append(["unsplit loop (reference)", steps, reference, 1.0])

    for scheme, cuts in (("fl", (1,)), ("sfl", (1,)), ("sl", (1,))):
        fresh, arch = _model(args.model, args.seq)
        settings = TrainSettings(scheme=scheme, cuts=cuts, batch_size=batch, optimizer="adamw", lr_user=1e-3,
                                 lr_edge=1e-3, lr_cloud=1e-3, local_steps=args.steps)
        trainer = FederatedTrainer(fresh, arch, "classification", settings, data, evaluation, parts, None,
                                   torch.device("cpu"))
        trainer.run_round(0)  # untimed warm-up round (it also probes the memory of one step)
        spent = 0.0
        for r in range(1, args.rounds + 1):
            start = time.perf_counter()
            trainer.run_round(r)
            total = time.perf_counter() - start
            e0 = time.perf_counter()
            trainer.evaluate()
            spent += total - (time.perf_counter() - e0)  # the round less its evaluation
        rate = steps * batch / spent
        rows.append([scheme, steps, rate, rate / reference])
    e0 = time.perf_counter()
    trainer.evaluate()
    eval_rate = len(evaluation) / (time.perf_counter() - e0)
    print_table(f"Training throughput, {args.model}, batch {batch}, {args.seq} tokens, {args.users} users x "
                f"{args.steps} local steps x {args.rounds} rounds (evaluation: {eval_rate:.0f} samples/s)",
                ["scheme", "steps", "samples/s", "vs unsplit"], rows)


if __name__ == "__main__":
    main()
