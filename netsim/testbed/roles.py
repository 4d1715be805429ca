"""What each device process does, per scheme: the protocols' own order of work, for real.

Each role is a function of a `Device` (netsim.testbed.device) and mirrors the simulator's protocol
(netsim.protocols), activity for activity and with the simulator's node and link names:

- SFL (netsim.protocols.sfl): `sfl_fed` broadcasts the user adapter to every user at the start of a
  round (each on its own downlink), collects their adapters and averages them; `sfl_user` runs V
  local steps (forward, activations up, gradient back, backward) and uploads its adapter;
  `sfl_main` serves the users' steps one at a time in arrival order (the simulator's
  `server_concurrency: 1`), holding one copy of the server-side adapter per user (FedsLLM), which
  it averages when a round's steps are done.

Every device warms its tier up (`spec.warmup_steps` steps) before it reports ready, so that the
first measured step is not the one that allocates.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from scenarios.schema import ModelConfig

from .device import Device
from .steps import TierModel, fedavg_into

MAIN, FED = "main_server", "fed_server"


def _tier(device: Device, tier: int | None) -> TierModel:
    spec = device.spec
    return TierModel(ModelConfig(**spec.model), list(spec.cuts), tier, seed=spec.seed + 7919 * (spec.user + 1))


def _warm_first(tier: TierModel, steps: int) -> None:
    import torch

    for i in range(steps):
        activations, _ = tier.forward_first(tier.batch(i))
        tier.backward_first(torch.ones_like(activations) * 1e-6)


def _warm_last(tier: TierModel, steps: int) -> None:
    activations, side = tier.example_input()
    for _ in range(steps):
        tier.forward_backward(activations, side)


def _side(tensors: dict) -> dict:
    return {name.removeprefix("side."): t for name, t in tensors.items() if name.startswith("side.")}


# ---- SFL ------------------------------------------------------------------------------------------
def sfl_user(device: Device) -> None:
    spec, me, k = device.spec, device.spec.name, device.spec.user
    tier = _tier(device, 0)
    _warm_first(tier, spec.warmup_steps)
    batches = [tier.batch(i) for i in range(4)]
    device.ready_and_wait()
    main, fed = device.connect(MAIN), device.connect(FED)
    up, adapter_up = device.sender(main, MAIN), device.sender(fed, FED)
    step = 0
    for r in range(spec.rounds):
        _, state = device.receive(fed)  # the round's adapter, broadcast by the fed server
        tier.load(state)
        for _ in range(spec.local_steps):
            with device.timed(me, "client_forward", k, r):
                activations, side = tier.forward_first(batches[step % len(batches)])
            step += 1
            device.send(up, "uplink_activation", {"activation": activations, **{f"side.{n}": t for n, t in side.items()}},
                        f"{me}->{MAIN}", k, r)
            _, tensors = device.receive(main)
            with device.timed(me, "client_backward", k, r):
                tier.backward_first(tensors["gradient"])
        device.send(adapter_up, "uplink_adapter", tier.state(), f"{me}->{FED}", k, r)
    main.close()
    fed.close()


def sfl_main(device: Device) -> None:
    spec = device.spec
    tier = _tier(device, 1)
    _warm_last(tier, spec.warmup_steps)
    initial = tier.state()
    copies = [dict(initial) for _ in range(spec.users)]
    optimizers = [tier.new_optimizer() for _ in range(spec.users)]
    device.listen()
    device.ready_and_wait()
    conns = device.accept(spec.users)
    users = [f"user{k}" for k in range(spec.users)]
    jobs: queue.Queue = queue.Queue()
    outboxes = [queue.Queue() for _ in users]

    def receive_from(k: int) -> None:
        for _ in range(spec.rounds * spec.local_steps):
            header, tensors = device.receive(conns[users[k]])
            jobs.put((time.monotonic(), k, header["round"], tensors))

    def send_to(k: int) -> None:
        sender = device.sender(conns[users[k]], users[k])
        while (item := outboxes[k].get()) is not None:
            r, gradient = item
            device.send(sender, "downlink_gradient", {"gradient": gradient}, f"{MAIN}->{users[k]}", k, r)

    threads = [threading.Thread(target=f, args=(k,), daemon=True) for k in range(spec.users)
               for f in (receive_from, send_to)]
    for t in threads:
        t.start()
    served = [0] * spec.rounds
    for _ in range(spec.rounds * spec.local_steps * spec.users):
        arrived, k, r, tensors = jobs.get()
        start = time.monotonic()
        device.record(arrived, start, MAIN, "server_queue", k, 0, r)
        with device.timed(MAIN, "server_compute", k, r):
            tier.load(copies[k])
            tier.optimizer = optimizers[k]
            gradient = tier.forward_backward(tensors["activation"], _side(tensors))
            copies[k] = tier.state()
        outboxes[k].put((r, gradient))
        served[r] += 1
        if served[r] == spec.local_steps * spec.users:  # the round's steps are done: average the copies
            average = fedavg_into(copies[0], copies)
            copies = [dict(average) for _ in users]
    for box in outboxes:
        box.put(None)
    for t in threads:
        t.join()


def sfl_fed(device: Device) -> None:
    spec = device.spec
    state = _tier(device, 0).state()  # the user adapter's initial value
    device.listen()
    device.ready_and_wait()
    conns = device.accept(spec.users)
    users = [f"user{k}" for k in range(spec.users)]
    senders = {name: device.sender(conns[name], name) for name in users}

    def exchange(k: int, r: int, global_state: dict) -> dict:
        # the simulator names the downlink main_server->user (one base station, one downlink)
        device.send(senders[users[k]], "downlink_adapter", global_state, f"{MAIN}->{users[k]}", k, r)
        _, adapter = device.receive(conns[users[k]])
        return adapter

    with ThreadPoolExecutor(spec.users) as pool:
        for r in range(spec.rounds):
            adapters = list(pool.map(lambda k, r=r, s=state: exchange(k, r, s), range(spec.users)))
            with device.timed(FED, "aggregation", -1, r):
                state = fedavg_into(state, adapters)


ROLES = {"sfl_user": sfl_user, "sfl_main": sfl_main, "sfl_fed": sfl_fed}
