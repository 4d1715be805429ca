"""Real fine-tuning: data, partitions, FedAvg, first updates, learning, resume, bad input."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from splitsim.learning import LearningError, LoraSpec, ModelSpec, apply_lora, build_model
from splitsim.learning.data import HashTokenizer, load_cifar100, load_mrpc, partition, partition_summary, read_mrpc, synthetic_task
from splitsim.learning.fedavg import fedavg
from splitsim.learning.train import FederatedTrainer, TrainSettings, classification_metrics

from helpers import SHARED

warnings.filterwarnings("ignore", category=UserWarning)
MRPC = SHARED / "data" / "mrpc"
needs_mrpc = pytest.mark.skipif(not (MRPC / "train.tsv").is_file(),
                                reason=f"MRPC is not at {MRPC} (the shared data folder beside the repository; "
                                       "set SPLITSIM_SHARED_DIR to point elsewhere)")


# ---- FedAvg and metrics ---------------------------------------------------------------------

def test_fedavg_equals_numpy_average():
    rng = np.random.default_rng(0)
    states = [{"a": torch.tensor(rng.normal(size=(3, 4)), dtype=torch.float32),
               "b": torch.tensor(rng.normal(size=5), dtype=torch.float32)} for _ in range(6)]
    weights = [3.0, 0.0, 1.0, 7.0, 0.0, 2.5]
    out = fedavg(states, weights)
    for key in ("a", "b"):
        expected = np.average(np.stack([s[key].numpy() for s in states]), axis=0, weights=weights)
        np.testing.assert_allclose(out[key].numpy(), expected, rtol=1e-6)
        assert out[key].dtype == torch.float32


def test_fedavg_rejects_no_data_and_mismatched_keys():
    with pytest.raises(LearningError, match="no participant has data"):
        fedavg([{"a": torch.zeros(1)}], [0])
    with pytest.raises(LearningError, match="different keys"):
        fedavg([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}], [1, 1])


def test_metrics_binary_f1_is_the_positive_class():
    logits = torch.tensor([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=torch.float32)
    labels = torch.tensor([1, 0, 1, 0])
    acc, f1 = classification_metrics(logits, labels, 2)
    assert acc == 0.5 and f1 == pytest.approx(0.5)  # tp 1, fp 1, fn 1


# ---- data and partitions -------------------------------------------------------------------

def test_iid_partition_is_a_near_equal_cover():
    parts = partition(np.arange(103) % 3, 10, "iid", 0.5, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert {len(p) for p in parts} <= {10, 11}


def test_dirichlet_partition_is_seeded_covering_and_skewed():
    labels = np.repeat(np.arange(4), 250)
    a = partition(labels, 20, "dirichlet", 0.5, seed=3)
    b = partition(labels, 20, "dirichlet", 0.5, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    summary = partition_summary(a, labels, 4)
    shares = summary[[f"class_{c}" for c in range(4)]].to_numpy() / np.maximum(summary[["samples"]].to_numpy(), 1)
    assert shares.max(axis=1).mean() > 0.5, "alpha 0.5 gives users a dominant class"
    tiny = partition(labels, 20, "dirichlet", 0.01, seed=3)
    assert any(len(p) == 0 for p in tiny), "a very skewed draw leaves some users empty"


def test_hash_tokenizer_pairs():
    tok = HashTokenizer(100)
    out = tok(["A cat sat."], ["The cat!"], 12)
    ids = out["input_ids"][0].tolist()
    # [CLS] a cat sat . [SEP] the cat ! [SEP]: 10 tokens, the second sentence with type 1
    assert ids[0] == 1 and ids[5] == 2 and ids[9] == 2 and out["attention_mask"][0].sum() == 10
    assert ids[2] == ids[7], "the same word gets the same id"
    assert torch.equal(tok(["A cat sat."], ["The cat!"], 12)["input_ids"], out["input_ids"])
    assert out["token_type_ids"][0].tolist() == [0] * 6 + [1] * 4 + [0] * 2


@needs_mrpc
def test_mrpc_loader_reads_every_row_without_quote_handling():
    train, test = read_mrpc(MRPC, "train"), read_mrpc(MRPC, "test")
    assert len(train) == 3668 and train["label"].value_counts().to_dict() == {1: 2474, 0: 1194}
    assert len(test) == 1725 and test["label"].value_counts().to_dict() == {1: 1147, 0: 578}
    assert len(read_mrpc(MRPC, "dev")) == 408
    data = load_mrpc(str(MRPC), "dev", HashTokenizer(1000), 32)
    assert data.inputs["input_ids"].shape == (408, 32) and data.num_labels == 2


def test_missing_mrpc_says_where_to_put_the_files(tmp_path):
    with pytest.raises(LearningError, match="put the GLUE MRPC files") as info:
        read_mrpc(tmp_path, "train")
    assert info.value.field == "training.data_path"


def test_cifar100_loader_on_a_file_of_the_standard_format(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 5)):
        blob = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": list(rng.integers(0, 100, n)),
                b"coarse_labels": list(rng.integers(0, 20, n)), b"filenames": [b"x.png"] * n, b"batch_label": b"t"}
        with (folder / split).open("wb") as handle:
            pickle.dump(blob, handle)
    data = load_cifar100(str(folder), "train")
    assert len(data) == 12 and data.num_labels == 100 and data.inputs["pixel_values"].shape == (12, 3, 32, 32)
    batch = data.batch(np.arange(4), image_size=64)
    assert batch["pixel_values"].shape == (4, 3, 64, 64) and batch["pixel_values"].abs().max() <= 1.0
    with pytest.raises(LearningError, match="extract cifar-100-python"):
        load_cifar100(str(tmp_path), "test")


# ---- the schemes --------------------------------------------------------------------------

def no_dropout_model(preset="bert-tiny", rank=4):
    overrides = (("hidden_dropout_prob", 0.0), ("attention_probs_dropout_prob", 0.0))
    model, arch = build_model(ModelSpec(preset, overrides=overrides))
    model = apply_lora(model, arch, LoraSpec(rank=rank))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    return model, arch


@pytest.mark.parametrize("scheme,cuts", [("splitllm", (1, 3)), ("sfl", (2,)), ("sl", (1,)), ("fl", ())])
def test_first_update_equals_the_unsplit_update(scheme, cuts):
    data = synthetic_task("text", 8, 2, seed=0, vocab_size=1000, sequence_length=12)
    settings = TrainSettings(scheme=scheme, cuts=cuts, batch_size=8, optimizer="adamw", lr_user=1e-3, lr_edge=1e-3,
                             lr_cloud=1e-3, weight_decay=0.01)
    model, arch = no_dropout_model()
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = FederatedTrainer(model, arch, "classification", settings, data, data, [np.arange(8)],
                               np.zeros(1, dtype=int), torch.device("cpu"))
    trainer.run_round(0)
    trainer.load_global()
    got = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    # the same step, unsplit, on a fresh copy of the initial weights
    ref_model, _ = no_dropout_model()
    ref_model.load_state_dict({**ref_model.state_dict(), **{k: v for k, v in reference.items()}}, strict=False)
    with torch.no_grad():
        for n, p in ref_model.named_parameters():
            p.copy_(reference[n])
    rows = trainer._batches(0, 0)[0]
    opt = torch.optim.AdamW([p for p in ref_model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
    ref_model.train()
    ref_model(**data.batch(rows)).loss.backward()
    opt.step()
    for n, p in ref_model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(got[n], p.detach(), rtol=1e-5, atol=1e-7), n


@pytest.mark.parametrize("scheme,cuts", [("splitllm", (1, 3)), ("sfl", (1,)), ("fl", ()), ("sl", (1,))])
def test_loss_decreases_and_accuracy_rises(scheme, cuts):
    train = synthetic_task("text", 384, 2, seed=1, vocab_size=1000, sequence_length=16)
    evaluation = synthetic_task("text", 128, 2, seed=2, vocab_size=1000, sequence_length=16)
    model, arch = build_model(ModelSpec("bert-tiny"))
    model = apply_lora(model, arch, LoraSpec(rank=8))
    settings = TrainSettings(scheme=scheme, cuts=cuts, batch_size=16, optimizer="adamw", lr_user=3e-3, lr_edge=3e-3,
                             lr_cloud=3e-3, seed=4)
    parts = partition(train.labels.numpy(), 4, "iid", 0.5, 1)
    trainer = FederatedTrainer(model, arch, "classification", settings, train, evaluation, parts,
                               np.array([0, 0, 1, 1]), torch.device("cpu"))
    logs = [trainer.run_round(r) for r in range(4)]
    assert logs[-1].train_loss < logs[0].train_loss
    assert logs[-1].eval_accuracy > 0.65
    assert logs[0].bytes["user_split_bytes_per_user"] > 0


def test_labels_outside_the_model_are_rejected():
    data = synthetic_task("text", 16, 3, seed=0)
    model, arch = build_model(ModelSpec("bert-tiny", num_labels=2))
    model = apply_lora(model, arch, LoraSpec())
    settings = TrainSettings(scheme="fl", cuts=(), batch_size=4, optimizer="adamw", lr_user=1e-3, lr_edge=1e-3,
                             lr_cloud=1e-3)
    with pytest.raises(LearningError, match="2 classes") as info:
        FederatedTrainer(model, arch, "classification", settings, data, data, [np.arange(16)], None,
                         torch.device("cpu"))
    assert info.value.field == "model.num_labels"


# ---- splitsim train -------------------------------------------------------------------------

def tiny_training_scenario(path: Path, **training) -> Path:
    data = {"name": "tiny-train", "seed": 1, "scheme": "splitllm", "cell": {"users": 4, "edge_servers": 2},
            "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 16, "cut_layers": [1, 3]},
            "training": {"dataset": "synthetic", "rounds": 3, "lr": 3e-3, "synthetic_samples": 256,
                         "schemes": ["splitllm", "fl"], **training}}
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_command_writes_rounds_table_plot_and_report(cli, tmp_path):
    path = tiny_training_scenario(tmp_path / "t.yaml")
    code, out, err = cli("train", path, "--out", tmp_path / "o")
    assert code == 0, err
    rounds = pd.read_csv(tmp_path / "o" / "rounds.csv")
    assert len(rounds) == 2 * 2 * 3
    for col in ("round", "scheme", "partition", "train_loss", "eval_accuracy", "eval_f1", "user_up_bytes",
                "edge_up_bytes", "simulated_time_s"):
        assert col in rounds, col
    assert (rounds.groupby(["scheme", "partition"])["simulated_time_s"].diff().dropna() > 0).all()
    table = pd.read_csv(tmp_path / "o" / "table_ii.csv").set_index("scheme")
    assert {"best_accuracy_iid", "best_accuracy_dirichlet", "user_comm_gib", "user_memory_gib"} <= set(table.columns)
    assert table.loc["fl", "user_memory_gib"] > table.loc["splitllm", "user_memory_gib"]
    for name in ("time_to_accuracy.png", "report.md", "summary.json", "partition_iid.csv", "partition_dirichlet.csv"):
        assert (tmp_path / "o" / name).is_file(), name
    assert "best accuracy" in out


def test_resumed_training_equals_an_uninterrupted_run(cli, tmp_path):
    path = tiny_training_scenario(tmp_path / "t.yaml", partitions=["iid"])
    assert cli("train", path, "--out", tmp_path / "straight")[0] == 0
    short = tiny_training_scenario(tmp_path / "short.yaml", partitions=["iid"], rounds=1)
    assert cli("train", short, "--out", tmp_path / "resumed")[0] == 0
    assert len(pd.read_csv(tmp_path / "resumed" / "rounds.csv")) == 2
    assert cli("train", path, "--out", tmp_path / "resumed")[0] == 0  # continues rounds 1 and 2
    a = pd.read_csv(tmp_path / "straight" / "rounds.csv").drop(columns=["wall_s"])
    b = pd.read_csv(tmp_path / "resumed" / "rounds.csv").drop(columns=["wall_s"])
    pd.testing.assert_frame_equal(a, b)


def _train_until_the_first_checkpoint(path: Path, out: Path, **popen) -> tuple[list[str], subprocess.Popen]:
    """(the command, its process) of `splitsim train` started in the background and left running
    until its first checkpoint (SplitLLM, IID) is written."""
    cmd = [sys.executable, "-m", "splitsim.analysis.cli", "train", str(path), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **popen)
    deadline = time.time() + 180
    while time.time() < deadline and not (out / "checkpoints" / "splitllm-iid.pt").exists():
        time.sleep(0.05)
    return cmd, proc


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_result(tmp_path):
    path = tiny_training_scenario(tmp_path / "t.yaml", partitions=["iid"], rounds=4)
    out = tmp_path / "o"
    cmd, proc = _train_until_the_first_checkpoint(path, out, stderr=subprocess.DEVNULL, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "rounds.csv").exists(), "killed before the end"
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    reference = tmp_path / "ref"
    assert subprocess.run([*cmd[:-3], "--out", str(reference), "--no-progress"], capture_output=True,
                          timeout=300).returncode == 0
    a = pd.read_csv(out / "rounds.csv").drop(columns=["wall_s"])
    b = pd.read_csv(reference / "rounds.csv").drop(columns=["wall_s"])
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_a_terminated_training_says_how_to_resume_and_the_rerun_completes(tmp_path):
    """SIGTERM (a scheduler's stop) after the first checkpoint: exit 130 with one line naming the
    folder and the exact command that resumes it, which then completes the run from its checkpoint
    (that a resumed run equals an uninterrupted one is the test above's)."""
    path = tiny_training_scenario(tmp_path / "t.yaml", partitions=["iid"], schemes=["splitllm"], rounds=2)
    out = tmp_path / "o"
    cmd, proc = _train_until_the_first_checkpoint(path, out, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if (out / "rounds.csv").exists():
        pytest.skip("the run ended before the signal arrived")
    assert proc.returncode == 130, err
    assert f"rerun `splitsim train {path} --out {out}` to resume" in err and "Traceback" not in err
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    assert len(pd.read_csv(out / "rounds.csv")) == 2


def test_users_without_data_are_reported_and_the_run_completes(cli, tmp_path):
    path = tiny_training_scenario(tmp_path / "t.yaml", partitions=["dirichlet"], dirichlet_alpha=0.02,
                                  schemes=["sfl"], rounds=1)
    data = yaml.safe_load(path.read_text())
    data["cell"]["users"] = 12
    path.write_text(yaml.safe_dump(data))
    code, out, err = cli("train", path, "--out", tmp_path / "o")
    assert code == 0, err
    assert "sit out every round" in out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["notes"]


@pytest.mark.parametrize("training,field,message", [
    ({"dataset": "mrpc", "data_path": "/no/such/folder"}, "training.data_path", "no such folder"),
    ({"dataset": "mrpc"}, "training.data_path", "set the data folder"),
    ({"dataset": "cifar100", "data_path": "/no/such/folder"}, "training.data_path", "no such folder"),
    ({"dataset": "cifar100", "data_path": "/no/such/folder"}, "training.dataset", "CIFAR-100 is an image task"),
])
def test_bad_training_input_exits_2(cli, tmp_path, training, field, message):
    path = tiny_training_scenario(tmp_path / "t.yaml", **training)
    code, _, err = cli("train", path, "--out", tmp_path / "o")
    assert code == 2 and field in err and message in err and "Traceback" not in err
    code, _, err = cli("validate", path)  # the same, found without any work
    assert code == 2 and field in err and message in err and "Traceback" not in err


@needs_mrpc
def test_a_few_dozen_mrpc_pairs_train_end_to_end(cli, tmp_path):
    path = tiny_training_scenario(tmp_path / "t.yaml", dataset="mrpc", data_path=str(MRPC), max_train_samples=64,
                                  max_eval_samples=32, rounds=1, partitions=["iid"], tokenizer="hash")
    code, out, err = cli("train", path, "--out", tmp_path / "o")
    assert code == 0, err
    rounds = pd.read_csv(tmp_path / "o" / "rounds.csv")
    assert len(rounds) == 2 and rounds["eval_accuracy"].between(0, 1).all()


def test_a_round_of_v_local_steps_is_simulated_and_counted_as_v_batches_of_local_data(cli, tmp_path):
    """training.local_steps = 2 over 8 batches of data per user, against one local epoch over exactly
    2 batches per user: the same work a round, so the same bytes on the wire and the same simulated
    round time, scheme by scheme."""
    steps = tiny_training_scenario(tmp_path / "steps.yaml", partitions=["iid"], rounds=2, local_steps=2)
    epoch = tiny_training_scenario(tmp_path / "epoch.yaml", partitions=["iid"], rounds=2, synthetic_samples=64)
    assert cli("train", steps, "--out", tmp_path / "a")[0] == 0
    assert cli("train", epoch, "--out", tmp_path / "b")[0] == 0
    a, b = (pd.read_csv(tmp_path / d / "rounds.csv").set_index(["scheme", "round"]) for d in ("a", "b"))
    for col in ("simulated_round_s", "user_split_bytes", "user_up_bytes", "edge_up_bytes"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-12, err_msg=col)


@pytest.mark.parametrize("source, side", [("bert-tiny", "right"), ("gpt2-tiny", "right"), ("bert-tiny", "left")])
def test_evaluation_in_length_sorted_trimmed_batches_equals_the_padded_one(source, side):
    """Rows of many lengths (padding masked): the trimmed batches give the padded batches' loss,
    accuracy and F1 (the logits of the real tokens do not depend on masked padding); left-padded
    rows are not cut."""
    from splitsim.learning.data import TaskData

    base = synthetic_task("text", 150, 2, seed=3, vocab_size=1000, sequence_length=24)
    lengths = torch.randint(3, 25, (150,), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(24)[None, :] < lengths[:, None]).long()
    if side == "left":
        mask = mask.flip(1)
    ids = base.inputs["input_ids"] * mask  # pad id 0 beyond each row's length
    data = TaskData("padded", {"input_ids": ids, "attention_mask": mask}, base.labels, 2, "text")
    model, arch = build_model(ModelSpec(source))
    if source == "gpt2-tiny":
        model.config.pad_token_id = 0
    model = apply_lora(model, arch, LoraSpec(rank=4))
    settings = TrainSettings(scheme="fl", cuts=(), batch_size=8, optimizer="adamw", lr_user=1e-3, lr_edge=1e-3,
                             lr_cloud=1e-3, eval_batch_size=32)
    trainer = FederatedTrainer(model, arch, "classification", settings, data, data, [np.arange(150)], None,
                               torch.device("cpu"))
    loss, acc, f1 = trainer.evaluate()
    with torch.no_grad():  # the reference: the padded batches in their order
        logits, total = [], 0.0
        for start in range(0, 150, 32):
            rows = np.arange(start, min(150, start + 32))
            out = model(**data.batch(rows))
            logits.append(out.logits.float())
            total += float(out.loss) * len(rows)
    ref_acc, ref_f1 = classification_metrics(torch.cat(logits), data.labels, 2)
    assert loss == pytest.approx(total / 150, rel=1e-5)
    assert (acc, f1) == (ref_acc, pytest.approx(ref_f1))
