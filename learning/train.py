"""Real federated / split LoRA fine-tuning: SplitLLM, SFL (FedsLLM), FL and SL over rounds.

One physical model holds the frozen weights; every participant's trainable parameters (LoRA
adapters, and the head on the last tier) live in small state dicts that are loaded into the model
for that participant's work, each with its own optimizer. Only tensors cross the cuts (split_step).

- SplitLLM (Alg. 1): a global user adapter U, edge adapter E and the cloud's C. Each round every
  user starts from U and every edge from E; edges work in parallel (their batches interleave at
  the shared cloud), each edge's users in turn; user, edge and cloud optimizers have their own
  learning rates. At the end of the round U and E become the FedAvg (weights |D|) of the users' and
  edges' copies; C is one model, trained by every batch.
- SFL / FedsLLM: each client trains a copy of the client adapter and its own copy of the
  server-side adapter; the fed server averages the client copies, the main server the server copies.
- FL: each user trains a copy of the whole model's adapters; FedAvg.
- SL: users in turn pass the user-side adapter on; one server-side adapter is trained by all.

Shuffling and dropout are seeded per (round, user), so a run resumed from a checkpoint repeats
an uninterrupted one exactly.
"""

from __future__ import annotations

import math
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data import TaskData
from .errors import LearningError
from .fedavg import fedavg
from .profile import StepProbe
from .split import Tier, split_model, split_step

GIB = 2**30


@dataclass(frozen=True)
class TrainSettings:
    scheme: str  # splitllm, sfl, fl, sl
    cuts: tuple[int, ...]  # one cut (sfl, sl) or two (splitllm); ignored by fl
    batch_size: int
    optimizer: str  # adamw | sgd
    lr_user: float
    lr_edge: float
    lr_cloud: float  # the cloud (SplitLLM) or the main server / server side (SFL, SL)
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 0.998  # multiply the learning rates by this every round
    local_epochs: int = 1
    local_steps: int | None = None  # instead of local_epochs: mini-batch steps per user per round (FedsLLM's V)
    drop_last: bool = True
    seed: int = 0
    eval_batch_size: int = 64
    image_size: int | None = None


@dataclass
class RoundLog:
    round: int
    train_loss: float
    eval_loss: float
    eval_accuracy: float
    eval_f1: float
    samples: int
    bytes: dict = field(default_factory=dict)  # per tier: sent / received this round


def _seed(*parts: int) -> int:
    return zlib.crc32(np.asarray(parts, dtype=np.int64).tobytes()) & 0x7FFFFFFF


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> tuple[float, float]:
    """Accuracy and F1 (of class 1 when binary, as GLUE reports for MRPC; macro F1 otherwise)."""
    pred = logits.argmax(-1)
    acc = float((pred == labels).float().mean())
    classes = [1] if num_labels == 2 else range(num_labels)
    f1s = []
    for c in classes:
        tp = float(((pred == c) & (labels == c)).sum())
        fp = float(((pred == c) & (labels != c)).sum())
        fn = float(((pred != c) & (labels == c)).sum())
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return acc, float(np.mean(f1s))


def _names(module: nn.Module, prefix_map: dict[int, str]) -> list[str]:
    return [prefix_map[id(p)] for p in module.parameters() if p.requires_grad]


class FederatedTrainer:
    """Trains `model` (LoRA-wrapped) with one scheme; see the module docstring."""

    def __init__(self, model: nn.Module, arch: str, task: str, settings: TrainSettings, train: TaskData,
                 evaluation: TaskData, parts: list[np.ndarray], association: np.ndarray | None,
                 device: torch.device):
        self.model, self.arch, self.task, self.s = model, arch, task, settings
        self.train, self.evaluation, self.parts, self.device = train, evaluation, parts, device
        num_labels = model.get_base_model().config.num_labels
        if int(train.labels.max()) >= num_labels or int(evaluation.labels.max()) >= num_labels or \
                int(train.labels.min()) < 0:
            raise LearningError(f"labels run from {int(train.labels.min())} to "
                                f"{max(int(train.labels.max()), int(evaluation.labels.max()))} but the model has "
                                f"{num_labels} classes", field="model.num_labels", value=num_labels)
        self.num_labels = num_labels
        self.sizes = np.array([len(p) for p in parts], dtype=np.int64)
        if self.sizes.sum() == 0:
            raise LearningError("no user has any data", field="training.partitions", value=0)
        self.params = {n: p for n, p in model.named_parameters()}
        by_id = {id(p): n for n, p in model.named_parameters()}
        if settings.scheme == "fl":
            self.tiers: list[Tier] = []
            self.groups = {"whole": [n for n, p in model.named_parameters() if p.requires_grad]}
        else:
            self.tiers = split_model(model, arch, task, list(settings.cuts))
            roles = ["user", "edge", "cloud"] if settings.scheme == "splitllm" else ["user", "server"]
            if len(self.tiers) != len(roles):
                raise LearningError(f"scheme {settings.scheme} needs {len(roles) - 1} cut layer(s)",
                                    field="model.cut_layers", value=list(settings.cuts))
            self.groups = {role: _names(tier, by_id) for role, tier in zip(roles, self.tiers)}
        if settings.scheme == "splitllm":
            if association is None:
                raise LearningError("SplitLLM needs edge servers", field="cell.edge_servers", value=0)
            self.edges = [np.flatnonzero(association == m) for m in range(int(association.max()) + 1)]
        self.global_state = {g: self._get(g) for g in self.groups}
        self.persistent_opt: dict[str, torch.optim.Optimizer] = {}
        self.versions: dict[int, dict[str, torch.Tensor]] | None = None  # FedBuff: global versions still needed
        self.trainings: np.ndarray | None = None  # FedBuff: each user's trainings so far
        self.round_users: list[int] | None = None  # the users whose update the current round aggregates
        self.round_done = -1
        self.memory_bytes: dict[str, int] = {}
        model.to(device)

    # ---- parameter groups ------------------------------------------------------------------------
    def _get(self, group: str) -> dict[str, torch.Tensor]:
        return {n: self.params[n].detach().clone() for n in self.groups[group]}

    def _put(self, group: str, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n, t in state.items():
                self.params[n].copy_(t)

    def _bytes(self, group: str) -> int:
        return sum(self.params[n].nbytes for n in self.groups[group])

    def _optimizer(self, group: str, lr: float) -> torch.optim.Optimizer:
        params = [self.params[n] for n in self.groups[group]]
        if self.s.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.s.momentum, weight_decay=self.s.weight_decay)
        return torch.optim.AdamW(params, lr=lr, weight_decay=self.s.weight_decay)

    def _lr(self, base: float, r: int) -> float:
        return base * self.s.lr_decay ** r

    def _shared_model(self, group: str, r: int) -> torch.optim.Optimizer:
        """Load the one model every batch trains (SplitLLM's cloud, SL's server side); its optimizer
        persists across rounds with the learning rate of round r."""
        if group not in self.persistent_opt:
            self.persistent_opt[group] = self._optimizer(group, self.s.lr_cloud)
        opt = self.persistent_opt[group]
        for param_group in opt.param_groups:
            param_group["lr"] = self._lr(self.s.lr_cloud, r)
        self._put(group, self.global_state[group])
        return opt

    # ---- data -----------------------------------------------------------------------------------------
    def _batches(self, user: int, r: int) -> list[np.ndarray]:
        """The user's mini-batches of round r: `local_epochs` shuffled passes over its data, or with
        `local_steps` exactly that many, continuing with a fresh shuffle whenever a pass ends (a pass
        that ends early carries on from where the previous round's stopped: the passes are numbered
        across rounds, so V steps a round see the data as evenly as epochs do)."""
        rows = self.parts[user]
        per_pass = len(rows) // self.s.batch_size if self.s.drop_last else math.ceil(len(rows) / self.s.batch_size)
        if self.s.local_steps is None:
            passes, skip, want = range(self.s.local_epochs), 0, None
        else:
            if per_pass == 0:
                return []
            done = r * self.s.local_steps  # steps of the earlier rounds
            first, skip, want = done // per_pass, done % per_pass, self.s.local_steps  # the pass it is in
            passes = range(first, first + math.ceil((skip + want) / per_pass))
        batches = []
        for epoch in passes:
            order = np.random.default_rng(_seed(self.s.seed, r if want is None else 0, user, epoch)).permutation(rows)
            batches += [order[i * self.s.batch_size:(i + 1) * self.s.batch_size] for i in range(per_pass)]
        return batches if want is None else batches[skip:skip + want]

    def _batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.train.batch(rows, self.s.image_size).items()}

    # ---- one step ---------------------------------------------------------------------------------
    def _split_step(self, batch, optimizers: list[torch.optim.Optimizer], probe: bool, counts: dict) -> float:
        phases = None
        if probe and not self.memory_bytes:
            ptrs = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
            phases = StepProbe(len(self.tiers), ptrs, self.device)
        result = split_step(self.tiers, batch, phases)
        for opt in optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        if phases is not None:
            self._record_memory(phases, optimizers)
        first = result.crossings[0]
        counts["user_up"] += first.forward_bytes + first.side_bytes
        counts["user_down"] += first.backward_bytes
        counts["user_split"] += first.forward_bytes + first.backward_bytes
        if len(result.crossings) > 1:
            second = result.crossings[1]
            counts["edge_up"] += second.forward_bytes + second.side_bytes
            counts["edge_down"] += second.backward_bytes
        return float(result.loss)

    def _record_memory(self, phases, optimizers) -> None:
        """Peak memory per tier from the probed step: params, grads, optimizer state, saved tensors."""
        for t, (role, names) in enumerate(self.groups.items()):
            params = sum(p.nbytes for p in self.tiers[t].parameters())
            grads = sum(self.params[n].nbytes for n in names)
            mine = {id(self.params[n]) for n in names}
            state = sum(v.nbytes for opt in optimizers for p, st in opt.state.items() if id(p) in mine
                        for v in st.values() if torch.is_tensor(v))
            saved = sum(phases.saved[t].values()) + phases.transient[t]
            self.memory_bytes[role] = int(params + grads + state + saved)

    def _whole_step(self, batch, optimizer, probe: bool) -> float:
        saved: dict[int, int] = {}
        ptrs = {p.untyped_storage().data_ptr() for p in self.model.parameters()} if probe and not self.memory_bytes \
            else None

        def pack(t):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in ptrs:
                saved[ptr] = max(saved.get(ptr, 0), t.untyped_storage().nbytes())
            return t

        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t) if ptrs is not None else nullcontext()
        with hooks:
            loss = self.model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ptrs is not None:
            names = self.groups["whole"]
            state = sum(v.nbytes for st in optimizer.state.values() for v in st.values() if torch.is_tensor(v))
            self.memory_bytes["user"] = int(sum(p.nbytes for p in self.model.parameters())
                                            + sum(self.params[n].nbytes for n in names) + state + sum(saved.values()))
        return float(loss.detach())

    # ---- rounds ---------------------------------------------------------------------------------------
    def run_round(self, r: int, users: np.ndarray | None = None) -> RoundLog:
        """Synchronous round r. `users`: the users whose update reaches the server this round (the
        simulator's, where users come and go: netsim.participation); None: every user. FL and SFL."""
        self.model.train()
        if users is not None and self.s.scheme not in ("fl", "sfl"):
            raise LearningError("a round of some users is trained for FL and SFL", field="training.schemes",
                                value=self.s.scheme)
        self.round_users = None if users is None else sorted(int(k) for k in users)
        counts = {k: 0 for k in ("user_up", "user_down", "user_split", "edge_up", "edge_down")}
        losses: list[float] = []
        scheme = self.s.scheme
        if scheme == "splitllm":
            self._round_splitllm(r, counts, losses)
        elif scheme == "sfl":
            self._round_sfl(r, counts, losses)
        elif scheme == "fl":
            self._round_fl(r, counts, losses)
        elif scheme == "sl":
            self._round_sl(r, counts, losses)
        else:
            raise LearningError("unknown scheme", field="scheme", value=scheme)
        self.round_done = r
        eval_loss, acc, f1 = self.evaluate()
        users_with_data = max(int((self.sizes > 0).sum()), 1)
        per_user = {"user_split_bytes_per_user": counts["user_split"] / users_with_data}
        samples = self.sizes.sum() if users is None else self.sizes[self.round_users].sum()
        return RoundLog(round=r, train_loss=float(np.mean(losses)) if losses else float("nan"), eval_loss=eval_loss,
                        eval_accuracy=acc, eval_f1=f1, samples=int(samples),
                        bytes={**{f"{k}_bytes": int(v) for k, v in counts.items()}, **per_user})

    def _round_splitllm(self, r: int, counts: dict, losses: list[float]) -> None:
        u_bytes, e_bytes = self._bytes("user"), self._bytes("edge")
        cloud_opt = self._shared_model("cloud", r)
        users_state = {}
        edge_state = {m: dict(self.global_state["edge"]) for m in range(len(self.edges))}
        streams = []  # per edge: (user, rows) in turn
        for m, members in enumerate(self.edges):
            streams.append([(int(k), rows) for k in members for rows in self._batches(int(k), r)])
            counts["edge_down"] += u_bytes + e_bytes  # cloud -> edge: the global user and edge adapters
            counts["edge_up"] += len(members) * u_bytes + e_bytes  # edge -> cloud at the end
        user_opts: dict[int, torch.optim.Optimizer] = {}
        edge_opts = {m: None for m in range(len(self.edges))}
        position = [0] * len(streams)
        while any(position[m] < len(streams[m]) for m in range(len(streams))):
            for m, stream in enumerate(streams):  # the edges' batches interleave at the cloud
                if position[m] >= len(stream):
                    continue
                k, rows = stream[position[m]]
                position[m] += 1
                if k not in users_state:
                    users_state[k] = dict(self.global_state["user"])
                    counts["user_down"] += u_bytes
                    counts["user_up"] += u_bytes
                    torch.manual_seed(_seed(self.s.seed, r, k, 7))
                self._put("user", users_state[k])
                self._put("edge", edge_state[m])
                if k not in user_opts:
                    user_opts[k] = self._optimizer("user", self._lr(self.s.lr_user, r))
                if edge_opts[m] is None:
                    edge_opts[m] = self._optimizer("edge", self._lr(self.s.lr_edge, r))
                losses.append(self._split_step(self._batch(rows), [user_opts[k], edge_opts[m], cloud_opt], True, counts))
                users_state[k] = self._get("user")
                edge_state[m] = self._get("edge")
                if position[m] == len(stream) or stream[position[m]][0] != k:
                    user_opts.pop(k, None)  # this user's turn is over
        self.global_state["cloud"] = self._get("cloud")
        trained = [k for k in users_state]
        if trained:
            self.global_state["user"] = fedavg([users_state[k] for k in trained], [self.sizes[k] for k in trained])
            edge_sizes = [int(self.sizes[self.edges[m]].sum()) for m in range(len(self.edges))]
            self.global_state["edge"] = fedavg([edge_state[m] for m in range(len(self.edges))], edge_sizes)

    def _parallel_round(self, r: int, groups: list[str], base_lrs: list[float], step, counts: dict,
                        losses: list[float]) -> int:
        """Every user with data (of the round's users: run_round) trains its own copies of `groups` from
        the global state (in parallel in the protocol, one after another here); then each group becomes
        their FedAvg by |D|. Returns how many users trained."""
        copies: dict[str, list] = {g: [] for g in groups}
        weights = []
        adapter = self._bytes(groups[0])
        for k in range(len(self.parts)) if self.round_users is None else self.round_users:
            batches = self._batches(k, r)
            if not batches:
                continue
            torch.manual_seed(_seed(self.s.seed, r, k, 7))
            for g in groups:
                self._put(g, self.global_state[g])
            opts = [self._optimizer(g, self._lr(lr, r)) for g, lr in zip(groups, base_lrs)]
            for rows in batches:
                losses.append(step(self._batch(rows), opts))
            for g in groups:
                copies[g].append(self._get(g))
            weights.append(self.sizes[k])
            counts["user_up"] += adapter  # the user's adapter goes up, the aggregate comes down
            counts["user_down"] += adapter
        for g in groups if weights else ():
            self.global_state[g] = fedavg(copies[g], weights)
        return len(weights)

    def _round_sfl(self, r: int, counts: dict, losses: list[float]) -> None:
        """Clients with per-client server-side copies; the fed and main servers average each side."""
        self._parallel_round(r, ["user", "server"], [self.s.lr_user, self.s.lr_cloud],
                             lambda batch, opts: self._split_step(batch, opts, True, counts), counts, losses)

    def _round_fl(self, r: int, counts: dict, losses: list[float]) -> None:
        """Each user trains the whole model's adapters; FedAvg."""
        trained = self._parallel_round(r, ["whole"], [self.s.lr_user],
                                       lambda batch, opts: self._whole_step(batch, opts[0], True), counts, losses)
        counts["user_split"] += 2 * self._bytes("whole") * trained  # FL's Table II traffic: adapters up and down

    def _round_sl(self, r: int, counts: dict, losses: list[float]) -> None:
        u_bytes = self._bytes("user")
        server_opt = self._shared_model("server", r)
        self._put("user", self.global_state["user"])
        for k in range(len(self.parts)):
            batches = self._batches(k, r)
            if not batches:
                continue
            torch.manual_seed(_seed(self.s.seed, r, k, 7))
            user_opt = self._optimizer("user", self._lr(self.s.lr_user, r))
            counts["user_down"] += u_bytes  # the user-side adapter handed on to this user
            for rows in batches:
                losses.append(self._split_step(self._batch(rows), [user_opt, server_opt], True, counts))
            counts["user_up"] += u_bytes
        self.global_state["user"] = self._get("user")
        self.global_state["server"] = self._get("server")

    # ---- FL and SFL with buffered asynchronous aggregation, in the simulator's order ----------------
    def _fedbuff_groups(self) -> tuple[list[str], list[float]]:
        """The parameter groups a FedBuff training trains and their learning rates: FL's whole model;
        SFL's client side and its own copy of the server side (SplitFed's first variant)."""
        if self.s.scheme == "fl":
            return ["whole"], [self.s.lr_user]
        if self.s.scheme == "sfl":
            return ["user", "server"], [self.s.lr_user, self.s.lr_cloud]
        raise LearningError("FedBuff trains FL and SFL", field="training.schemes", value=self.s.scheme)

    def fedbuff_step(self, step: int, buffer: list[tuple[int, int]], keep: set[int], rounds_per_version: float,
                     staleness_exponent: float, server_lr: float) -> RoundLog:
        """FedBuff's server step `step` (version step -> step + 1; Nguyen et al., AISTATS 2022, Alg. 1),
        with the updates the simulator delivered into its buffer: `buffer` = (user, version it started
        on) in their order of arrival. Each user trains its V local steps (or epoch) from the global
        state of the version it started on — its j-th training with the mini-batches and dropout of
        synchronous round j, the learning rate of the rounds' worth of updates the server has taken
        (version × `rounds_per_version`) — and its update is Δ_i = local − start. The server steps
        x ← x + server_lr · Σ_i ŵ_i·Δ_i, ŵ_i = |D_i|·(1 + τ_i)^−a / Σ_j |D_j| over the buffer (FedAvg's
        data weights; τ_i = step − started_on). With every update fresh (τ = 0) and server_lr 1 that is
        Σ ŵ_i·local_i, FedAvg of the buffer, and it is computed so (fedavg: without the rounding of
        x + (local − x)): so buffer = concurrency = all users is synchronous FedAvg bit for bit.

        FL steps the whole model's adapters. SFL (SplitFed's first variant, as its synchronous round
        here) steps both sides with the same rule and weights: the client side (the fed server) and
        the server side, of which the main server trained one copy per training, from the version
        that training started on. Versions no later update starts on (`keep`) are dropped. The
        buffer is averaged, and its losses are taken, in user order (a sum's order must not depend on
        the arrival order of simultaneous updates)."""
        groups, lrs = self._fedbuff_groups()
        self.model.train()
        if self.versions is None:
            self.versions = {0: {g: self.global_state[g] for g in groups}}
            self.trainings = np.zeros(len(self.parts), dtype=np.int64)
        counts = {k: 0 for k in ("user_up", "user_down", "user_split", "edge_up", "edge_down")}
        adapter = self._bytes(groups[0])  # FL's whole adapter, SFL's client side: what crosses the radio
        trained = []  # (user, staleness, start states, local states, losses)
        for k, started_on in buffer:
            r = started_on * rounds_per_version
            r = int(r) if float(r).is_integer() else r
            j = int(self.trainings[k])
            self.trainings[k] += 1
            batches = self._batches(k, j)
            counts["user_down"] += adapter
            counts["user_up"] += adapter
            if not batches:
                continue
            torch.manual_seed(_seed(self.s.seed, j, k, 7))
            start = self.versions[started_on]
            for g in groups:
                self._put(g, start[g])
            opts = [self._optimizer(g, self._lr(lr, r)) for g, lr in zip(groups, lrs)]
            losses = []
            for rows in batches:
                batch = self._batch(rows)
                losses.append(self._whole_step(batch, opts[0], True) if self.s.scheme == "fl"
                              else self._split_step(batch, opts, True, counts))
            trained.append((k, step - started_on, start, {g: self._get(g) for g in groups}, losses))
        if self.s.scheme == "fl":
            counts["user_split"] += 2 * adapter * len(trained)  # FL's Table II traffic: adapters up and down
        trained.sort(key=lambda t: t[0])
        new = {g: self._stepped(g, step, trained, staleness_exponent, server_lr) for g in groups}
        self.versions[step + 1] = new
        self.global_state.update(new)
        for version in [v for v in self.versions if v not in keep and v != step + 1]:
            del self.versions[version]
        self.round_done = step
        eval_loss, acc, f1 = self.evaluate()
        losses = [loss for *_, mine in trained for loss in mine]
        users = max(int((self.sizes > 0).sum()), 1)
        return RoundLog(round=step, train_loss=float(np.mean(losses)) if losses else float("nan"), eval_loss=eval_loss,
                        eval_accuracy=acc, eval_f1=f1, samples=int(sum(self.sizes[k] for k, *_ in trained)),
                        bytes={**{f"{k}_bytes": int(v) for k, v in counts.items()},
                               "user_split_bytes_per_user": counts["user_split"] / users})

    def _stepped(self, group: str, step: int, trained: list, staleness_exponent: float,
                 server_lr: float) -> dict[str, torch.Tensor]:
        """Group `group`'s version step + 1 from the buffer's updates (fedbuff_step's rule)."""
        if not trained:
            return self.versions[step][group]
        sizes = [float(self.sizes[k]) for k, *_ in trained]
        if server_lr == 1.0 and all(tau == 0 for _, tau, *_ in trained):
            return fedavg([local[group] for *_, local, _ in trained], sizes)  # fresh: x + Σŵ(l − x) = Σŵ·l
        weights = [size * (1.0 + tau) ** -staleness_exponent for size, (_, tau, *_) in zip(sizes, trained)]
        total = sum(sizes)
        new = {}
        for key, x in self.versions[step][group].items():
            acc = x.to(torch.float64).clone()
            for w, (_, _, first, local, _) in zip(weights, trained):
                acc += (server_lr * w / total) * (local[group][key].to(torch.float64) - first[group][key].to(torch.float64))
            new[key] = acc.to(x.dtype)
        return new

    # ---- evaluation -----------------------------------------------------------------------------------
    def load_global(self) -> None:
        for group, state in self.global_state.items():
            self._put(group, state)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, float]:
        """Loss, accuracy and F1 of the global model on the evaluation set. Text is evaluated in
        batches of similar length, each cut to its longest row (the padding beyond it is masked
        anyway, so the logits are those of the padded batch; training keeps the padded length, which
        is what the profile and the traffic count)."""
        self.load_global()
        self.model.eval()
        n = len(self.evaluation)
        mask = self.evaluation.inputs.get("attention_mask")
        right_padded = mask is not None and bool((mask[:, 1:] <= mask[:, :-1]).all())  # left padding: no cut
        lengths = mask.sum(1).numpy() if right_padded else None
        order = np.arange(n) if lengths is None else np.argsort(lengths, kind="stable")
        pieces, loss_sum = [], 0.0
        for start in range(0, n, self.s.eval_batch_size):
            rows = order[start:start + self.s.eval_batch_size]
            batch = self.evaluation.batch(rows, self.s.image_size)
            if lengths is not None:
                width = max(int(lengths[rows].max()), 1)
                batch = {k: v[:, :width] if v.dim() == 2 and k != "labels" else v for k, v in batch.items()}
            out = self.model(**{k: v.to(self.device) for k, v in batch.items()})
            pieces.append(out.logits.float().cpu())
            loss_sum += float(out.loss) * len(rows)
        logits = torch.empty_like(torch.cat(pieces))
        logits[torch.as_tensor(order)] = torch.cat(pieces)
        acc, f1 = classification_metrics(logits, self.evaluation.labels, self.num_labels)
        return loss_sum / n, acc, f1

    # ---- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"round_done": self.round_done, "global_state": self.global_state,
                "persistent_opt": {k: o.state_dict() for k, o in self.persistent_opt.items()},
                "memory_bytes": self.memory_bytes,
                **({"versions": self.versions, "trainings": self.trainings} if self.versions is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.round_done = int(state["round_done"])
        self.global_state = state["global_state"]
        self.memory_bytes = dict(state.get("memory_bytes", {}))
        if "versions" in state:  # FedBuff: the global versions later updates start on, {version: {group: state}}
            self.versions = {v: (kept if set(kept) <= set(self.groups) else {"whole": kept})  # FL's, before SFL's
                             for v, kept in state["versions"].items()}
            self.trainings = np.asarray(state["trainings"], dtype=np.int64).copy()
        for group, opt_state in state["persistent_opt"].items():
            self._put(group, self.global_state[group])
            opt = self._optimizer(group, self.s.lr_cloud)
            opt.load_state_dict(opt_state)
            self.persistent_opt[group] = opt
