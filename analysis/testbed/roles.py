"""What each device process does, per scheme: the protocols' own order of work, for real.

Each role is a function of a `Device` (netsim.testbed.device, which runs it: `ROLES` by name) and mirrors the simulator's protocol
(netsim.protocols), activity for activity and with the simulator's node and link names:

- SFL (netsim.protocols.sfl): `sfl_fed` broadcasts the user adapter to every user at the start of a
  round (each on its own downlink), collects their adapters and averages them; `sfl_user` runs V
  local steps (forward, activations up, gradient back, backward) and uploads its adapter;
  `sfl_main` serves the users' steps one at a time in arrival order (the simulator's
  `server_concurrency: 1`), holding one copy of the server-side adapter per user (FedsLLM), which
  it averages when a round's steps are done.
- SL (netsim.protocols.sl): `sl_server` hands the user-side adapter to each user in turn (downlink),
  serves its V steps and takes the adapter back; `sl_user` trains in its turn.
- SplitLLM (netsim.protocols.splitllm): `splitllm_cloud` sends each edge the round's user and edge
  adapters over the backhaul, serves the edges' batches one at a time in arrival order and averages
  the adapters; each `splitllm_edge` serves its users in turn (user forward, edge forward, cloud,
  edge backward, user backward per batch) and sends their adapters and its own up; `splitllm_user`.
- FL (netsim.protocols.fl): `fl_fed` broadcasts the whole model's adapters, collects and averages
  them; `fl_user` runs V whole-model steps between.

Every device warms its tier up (`spec.warmup_steps` steps) before it reports ready, so that the
first measured step is not the one that allocates, and times its share of a step when the
coordinator asks (the simulator's calibration: the same code, in the same process, on this host).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from splitsim.scenarios.schema import ModelConfig

from splitsim.learning.tier_model import TierModel, fedavg_into
from splitsim.netsim.testbed.device import Device

MAIN, FED, CLOUD = "main_server", "fed_server", "cloud"


def _tier(device: Device, tier: int | None) -> TierModel:
    spec = device.spec
    return TierModel(ModelConfig(**spec.model), list(spec.cuts), tier, seed=spec.seed + 7919 * (spec.user + 1))


def _first_steps(tier: TierModel):
    """The user's step, timed by phase: (steps) -> {user_forward: [s], user_backward: [s]}."""
    import torch

    def run(steps: int) -> dict[str, list[float]]:
        times = {"user_forward": [], "user_backward": []}
        for i in range(steps):
            t0 = time.perf_counter()
            activations, _ = tier.forward_first(tier.batch(i % 4))
            t1 = time.perf_counter()
            tier.backward_first(torch.full_like(activations, 1e-6))
            times["user_forward"].append(t1 - t0)
            times["user_backward"].append(time.perf_counter() - t1)
        return times

    return run


def _last_steps(tier: TierModel, key: str):
    """A last tier's step (forward, backward, optimizer step), timed: (steps) -> {key: [s]}."""
    activations, side = tier.example_input()

    def run(steps: int) -> dict[str, list[float]]:
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            tier.forward_backward(activations, side)
            times.append(time.perf_counter() - t0)
        return {key: times}

    return run


def _middle_steps(tier: TierModel):
    """A middle tier's work (SplitLLM's edge), timed: its forward, and its backward with its step."""
    import torch

    activations, side = tier.example_input()

    def run(steps: int) -> dict[str, list[float]]:
        times = {"edge_forward": [], "edge_backward": []}
        for _ in range(steps):
            t0 = time.perf_counter()
            out = tier.forward_middle(activations, side)
            t1 = time.perf_counter()
            tier.backward_middle(torch.full_like(out, 1e-6))
            times["edge_forward"].append(t1 - t0)
            times["edge_backward"].append(time.perf_counter() - t1)
        return times

    return run


def _whole_steps(tier: TierModel):
    def run(steps: int) -> dict[str, list[float]]:
        times = []
        for i in range(steps):
            t0 = time.perf_counter()
            tier.whole_step(tier.batch(i % 4))
            times.append(time.perf_counter() - t0)
        return {"user_step": times}

    return run


def _side(tensors: dict) -> dict:
    return {name.removeprefix("side."): t for name, t in tensors.items() if name.startswith("side.")}


def _user_steps(device: Device, tier: TierModel, batches: list, step: int, conn, up, peer: str, r: int) -> int:
    """A user's V split steps of round r with `peer` (main server or edge): forward, activations up,
    the gradient back, backward; the next batch index."""
    me, k = device.spec.name, device.spec.user
    for _ in range(device.spec.local_steps):
        with device.timed(me, "client_forward", k, r):
            activations, side = tier.forward_first(batches[step % len(batches)])
        step += 1
        device.send(up, "uplink_activation", {"activation": activations, **{f"side.{n}": t for n, t in side.items()}},
                    f"{me}->{peer}", k, r)
        _, tensors = device.receive(conn)
        with device.timed(me, "client_backward", k, r):
            tier.backward_first(tensors["gradient"])
    return step


# ---- SFL ------------------------------------------------------------------------------------------
def sfl_user(device: Device) -> None:
    spec, me, k = device.spec, device.spec.name, device.spec.user
    tier = _tier(device, 0)
    steps = _first_steps(tier)
    steps(spec.warmup_steps)
    batches = [tier.batch(i) for i in range(4)]
    device.ready_and_wait(steps)
    main, fed = device.connect(MAIN), device.connect(FED)
    up, adapter_up = device.sender(main, MAIN), device.sender(fed, FED)
    step = 0
    for r in range(spec.rounds):
        _, state = device.receive(fed)  # the round's adapter, broadcast by the fed server
        tier.load(state)
        step = _user_steps(device, tier, batches, step, main, up, MAIN, r)
        device.send(adapter_up, "uplink_adapter", tier.state(), f"{me}->{FED}", k, r)
    main.close()
    fed.close()


def sfl_main(device: Device) -> None:
    spec = device.spec
    tier = _tier(device, 1)
    steps = _last_steps(tier, "server")
    steps(spec.warmup_steps)
    initial = tier.state()
    copies = [dict(initial) for _ in range(spec.users)]
    optimizers = [tier.new_optimizer() for _ in range(spec.users)]
    device.listen()
    device.ready_and_wait(steps)
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


def _aggregate_rounds(device: Device, state: dict, downlink_from: str) -> None:
    """A server that broadcasts `state` to every user at the start of each round (each on its own
    downlink, named from `downlink_from`), collects their adapters and averages them (SFL's fed server,
    FL's aggregator)."""
    spec = device.spec
    device.listen()
    device.ready_and_wait()
    conns = device.accept(spec.users)
    users = [f"user{k}" for k in range(spec.users)]
    senders = {name: device.sender(conns[name], name) for name in users}

    def exchange(k: int, r: int, global_state: dict) -> dict:
        device.send(senders[users[k]], "downlink_adapter", global_state, f"{downlink_from}->{users[k]}", k, r)
        _, adapter = device.receive(conns[users[k]])
        return adapter

    with ThreadPoolExecutor(spec.users) as pool:
        for r in range(spec.rounds):
            adapters = list(pool.map(lambda k, r=r, s=state: exchange(k, r, s), range(spec.users)))
            with device.timed(spec.name, "aggregation", -1, r):
                state = fedavg_into(state, adapters)


def sfl_fed(device: Device) -> None:
    # the simulator names the downlink main_server->user (one base station, one downlink)
    _aggregate_rounds(device, _tier(device, 0).state(), MAIN)


# ---- SL -------------------------------------------------------------------------------------------
def _turn_user(device: Device, peer: str) -> None:
    """A user that trains in its turn with `peer` (SL's server, SplitLLM's edge): each round the
    user-side adapter comes down, V split steps, the adapter goes back up."""
    spec, me, k = device.spec, device.spec.name, device.spec.user
    tier = _tier(device, 0)
    steps = _first_steps(tier)
    steps(spec.warmup_steps)
    batches = [tier.batch(i) for i in range(4)]
    device.ready_and_wait(steps)
    conn = device.connect(peer)
    up = device.sender(conn, peer)
    step = 0
    for r in range(spec.rounds):
        _, state = device.receive(conn)  # its turn: the user-side adapter
        tier.load(state)
        step = _user_steps(device, tier, batches, step, conn, up, peer, r)
        device.send(up, "uplink_adapter", tier.state(), f"{me}->{peer}", k, r)
    conn.close()


def sl_user(device: Device) -> None:
    _turn_user(device, MAIN)


def sl_server(device: Device) -> None:
    """SL's server: one server-side adapter trained by every user in turn; the user-side adapter goes
    to each user at its turn and comes back after it (the simulator's SL, netsim.protocols.sl)."""
    spec = device.spec
    tier = _tier(device, 1)
    steps = _last_steps(tier, "server")
    steps(spec.warmup_steps)
    user_state = _tier(device, 0).state()
    device.listen()
    device.ready_and_wait(steps)
    users = [f"user{k}" for k in range(spec.users)]
    conns = device.accept(spec.users)
    senders = {name: device.sender(conns[name], name) for name in users}
    for r in range(spec.rounds):
        for k, name in enumerate(users):
            device.send(senders[name], "downlink_adapter", user_state, f"{MAIN}->{name}", k, r)
            for _ in range(spec.local_steps):
                _, tensors = device.receive(conns[name])
                with device.timed(MAIN, "server_compute", k, r):
                    gradient = tier.forward_backward(tensors["activation"], _side(tensors))
                device.send(senders[name], "downlink_gradient", {"gradient": gradient}, f"{MAIN}->{name}", k, r)
            _, user_state = device.receive(conns[name])


# ---- FL -------------------------------------------------------------------------------------------
def fl_user(device: Device) -> None:
    spec, me, k = device.spec, device.spec.name, device.spec.user
    whole = _tier(device, None)
    steps = _whole_steps(whole)
    steps(spec.warmup_steps)
    batches = [whole.batch(i) for i in range(4)]
    device.ready_and_wait(steps)
    fed = device.connect(FED)
    up = device.sender(fed, FED)
    step = 0
    for r in range(spec.rounds):
        _, state = device.receive(fed)
        whole.load(state)
        for _ in range(spec.local_steps):
            with device.timed(me, "client_train", k, r):
                whole.whole_step(batches[step % len(batches)])
            step += 1
        device.send(up, "uplink_adapter", whole.state(), f"{me}->{FED}", k, r)
    fed.close()


def fl_fed(device: Device) -> None:
    _aggregate_rounds(device, _tier(device, None).state(), FED)


# ---- SplitLLM -------------------------------------------------------------------------------------
def _edge_of(device: Device) -> str:
    return next(edge for edge, users in device.spec.groups.items() if device.spec.user in users)


def splitllm_user(device: Device) -> None:
    _turn_user(device, _edge_of(device))


def splitllm_edge(device: Device) -> None:
    """An edge: the round's adapters come down the backhaul; its users in turn, each batch through its
    tier both ways with the cloud's step between; then its users' adapters and its own go up."""
    spec, me = device.spec, device.spec.name
    tier = _tier(device, 1)
    steps = _middle_steps(tier)
    steps(spec.warmup_steps)
    users = [f"user{k}" for k in spec.groups[me]]
    device.listen()
    device.ready_and_wait(steps)
    cloud = device.connect(CLOUD)
    up_haul = device.sender(cloud, CLOUD)
    conns = device.accept(len(users))
    senders = {name: device.sender(conns[name], name) for name in users}
    for r in range(spec.rounds):
        _, tensors = device.receive(cloud)
        user_state = {n.removeprefix("user."): t for n, t in tensors.items() if n.startswith("user.")}
        tier.load({n.removeprefix("edge."): t for n, t in tensors.items() if n.startswith("edge.")})
        tier.optimizer = tier.new_optimizer()
        adapters = {}
        for k, name in zip(spec.groups[me], users):
            device.send(senders[name], "downlink_adapter", user_state, f"{me}->{name}", k, r)
            for _ in range(spec.local_steps):
                _, t = device.receive(conns[name])
                side = _side(t)
                with device.timed(me, "edge_compute", k, r):
                    out = tier.forward_middle(t["activation"], side)
                device.send(up_haul, "backhaul_activation", {"activation": out, **{f"side.{n}": v for n, v in side.items()}},
                            f"{me}->{CLOUD}", k, r)
                _, g = device.receive(cloud)
                with device.timed(me, "edge_compute", k, r):
                    gradient = tier.backward_middle(g["gradient"])
                device.send(senders[name], "downlink_gradient", {"gradient": gradient}, f"{me}->{name}", k, r)
            _, adapters[k] = device.receive(conns[name])
        up = {f"u{k}.{n}": t for k, state in adapters.items() for n, t in state.items()}
        up.update({f"edge.{n}": t for n, t in tier.state().items()})
        device.send(up_haul, "backhaul_adapter", up, f"{me}->{CLOUD}", -1, r)
    cloud.close()


def splitllm_cloud(device: Device) -> None:
    """The cloud: sends each edge the round's user and edge adapters, serves the edges' batches one at
    a time in arrival order (simulation.cloud_concurrency: 1), and averages the adapters once every
    edge has sent its own."""
    spec = device.spec
    tier = _tier(device, 2)
    steps = _last_steps(tier, "cloud")
    steps(spec.warmup_steps)
    user_state, edge_state = tier.state_of(0), tier.state_of(1)
    edges = list(spec.groups)
    device.listen()
    device.ready_and_wait(steps)
    conns = device.accept(len(edges))
    inbox: queue.Queue = queue.Queue()
    outboxes = {edge: queue.Queue() for edge in edges}
    expected = {edge: spec.rounds * (len(spec.groups[edge]) * spec.local_steps + 1) for edge in edges}

    def receive_from(edge: str) -> None:
        for _ in range(expected[edge]):
            header, tensors = device.receive(conns[edge])
            inbox.put((time.monotonic(), edge, header, tensors))

    def send_to(edge: str) -> None:
        sender = device.sender(conns[edge], edge)
        while (item := outboxes[edge].get()) is not None:
            kind, tensors, user, r = item
            device.send(sender, kind, tensors, f"{CLOUD}->{edge}", user, r)

    threads = [threading.Thread(target=f, args=(edge,), daemon=True) for edge in edges for f in (receive_from, send_to)]
    for t in threads:
        t.start()
    for r in range(spec.rounds):
        down = {**{f"user.{n}": t for n, t in user_state.items()}, **{f"edge.{n}": t for n, t in edge_state.items()}}
        for edge in edges:
            outboxes[edge].put(("backhaul_adapter", down, -1, r))
        collected = {}
        while len(collected) < len(edges):
            arrived, edge, header, tensors = inbox.get()
            if header["kind"] == "backhaul_adapter":
                collected[edge] = tensors
                continue
            k = header["user"]
            device.record(arrived, time.monotonic(), CLOUD, "server_queue", k, 0, r)
            with device.timed(CLOUD, "cloud_compute", k, r):
                gradient = tier.forward_backward(tensors["activation"], _side(tensors))
            outboxes[edge].put(("backhaul_gradient", {"gradient": gradient}, k, r))
        with device.timed(CLOUD, "aggregation", -1, r):
            users = [{n.split(".", 1)[1]: t for n, t in c.items() if n.startswith(f"u{k}.")}
                     for edge, c in collected.items() for k in spec.groups[edge]]
            user_state = fedavg_into(user_state, users)
            edge_state = fedavg_into(edge_state, [{n.removeprefix("edge."): t for n, t in c.items()
                                                   if n.startswith("edge.")} for c in collected.values()])
    for box in outboxes.values():
        box.put(None)
    for t in threads:
        t.join()


ROLES = {"sfl_user": sfl_user, "sfl_main": sfl_main, "sfl_fed": sfl_fed, "sl_user": sl_user, "sl_server": sl_server,
         "fl_user": fl_user, "fl_fed": fl_fed, "splitllm_user": splitllm_user, "splitllm_edge": splitllm_edge,
         "splitllm_cloud": splitllm_cloud}
