"""Data sets for real fine-tuning: MRPC, CIFAR-100, a synthetic task; IID and Dirichlet partitions.

- MRPC: the GLUE TSV files in a folder (train.tsv, dev.tsv, and the labelled test set
  msr_paraphrase_test.txt), read without quote handling and with `utf-8-sig`; or the hub's
  `glue/mrpc` through the `datasets` package when online.
- CIFAR-100: the standard `cifar-100-python` folder (pickled `train` / `test`), or the hub.
  Images stay uint8 at 32 x 32 and are resized to the model's input per batch.
- synthetic: a learnable task of random tokens or images, for smoke tests.
Tokenisation pads or truncates to a fixed length. Models without a tokenizer (presets with
random weights) use a deterministic hashing tokenizer over their vocabulary.
"""

from __future__ import annotations

import csv
import pickle
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import LearningError


@dataclass
class TaskData:
    """An in-memory data set: model inputs (tensors with N rows) and labels (N,)."""

    name: str
    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    num_labels: int
    kind: str  # "text" or "image"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray | list[int]) -> TaskData:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return TaskData(self.name, {k: v[idx] for k, v in self.inputs.items()}, self.labels[idx], self.num_labels,
                        self.kind)

    def batch(self, indices: np.ndarray, image_size: int | None = None) -> dict[str, torch.Tensor]:
        """Model inputs and labels for these rows; images are scaled to [-1, 1] and resized."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        out = {k: v[idx] for k, v in self.inputs.items()}
        if self.kind == "image":
            pixels = out["pixel_values"].float() / 127.5 - 1.0
            if image_size and pixels.shape[-1] != image_size:
                pixels = torch.nn.functional.interpolate(pixels, size=(image_size, image_size), mode="bilinear",
                                                         align_corners=False)
            out["pixel_values"] = pixels
        out["labels"] = self.labels[idx]
        return out


# ---- tokenisation --------------------------------------------------------------------------

class HashTokenizer:
    """Words -> ids by CRC32 into a vocabulary, BERT-style pairs: [CLS] a [SEP] b [SEP], padded.

    For models built from a config without a tokenizer: learning dynamics on real text, no
    pretrained vocabulary. Ids 0, 1, 2 are [PAD], [CLS], [SEP].
    """

    def __init__(self, vocab_size: int):
        if vocab_size < 8:
            raise LearningError("vocabulary too small for the hashing tokenizer", field="model.source",
                                value=vocab_size)
        self.vocab_size = vocab_size

    def _ids(self, text: str) -> list[int]:
        return [3 + zlib.crc32(w.encode()) % (self.vocab_size - 3) for w in re.findall(r"\w+|[^\w\s]", text.lower())]

    def __call__(self, first: list[str], second: list[str], max_length: int) -> dict[str, torch.Tensor]:
        n = len(first)
        ids = torch.zeros(n, max_length, dtype=torch.long)
        types = torch.zeros(n, max_length, dtype=torch.long)
        mask = torch.zeros(n, max_length, dtype=torch.long)
        for i, (a, b) in enumerate(zip(first, second)):
            x, y = self._ids(a), self._ids(b)
            budget = max_length - 3
            while len(x) + len(y) > budget:  # truncate the longer sentence first
                (x if len(x) >= len(y) else y).pop()
            row = [1] + x + [2] + y + [2]
            ids[i, : len(row)] = torch.tensor(row)
            types[i, len(x) + 2: len(row)] = 1
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def make_tokenizer(choice: str, model_source: str, vocab_size: int):
    """'hash', a tokenizer folder / hub id, or 'auto': the model's own, else MiniLM's (BERT uncased
    vocabulary, when the sizes match), else the hashing tokenizer."""
    from .models import minilm_dir

    if choice == "hash":
        return HashTokenizer(vocab_size)
    candidates = []
    if choice != "auto":
        candidates.append(choice)
    else:
        if model_source == "minilm" and minilm_dir() is not None:
            candidates.append(str(minilm_dir()))
        elif Path(model_source).is_dir():
            candidates.append(model_source)
        elif vocab_size == 30522 and minilm_dir() is not None:
            candidates.append(str(minilm_dir()))  # bert-base / MiniLM presets share the uncased WordPiece vocab
    for name in candidates:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError):
            if choice != "auto":
                raise LearningError("cannot load this tokenizer", field="training.tokenizer", value=choice) from None
            continue
        if len(tok) > vocab_size:
            raise LearningError(f"the tokenizer has {len(tok)} ids, the model {vocab_size}",
                                field="training.tokenizer", value=name)
        return lambda a, b, n, tok=tok: dict(tok(a, b, padding="max_length", truncation=True, max_length=n,
                                                 return_tensors="pt"))
    return HashTokenizer(vocab_size)


# ---- MRPC ------------------------------------------------------------------------------------

MRPC_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "msr_paraphrase_test.txt"}


def read_mrpc(path: str | Path, split: str) -> pd.DataFrame:
    """The labelled rows of one MRPC split as a frame with columns label, a, b."""
    if split not in MRPC_FILES:
        raise LearningError(f"MRPC splits are {', '.join(MRPC_FILES)}", field="training.eval_split", value=split)
    folder = Path(path)
    file = folder / MRPC_FILES[split]
    if not file.is_file():
        raise LearningError(f"MRPC file {MRPC_FILES[split]} not found in {folder}: put the GLUE MRPC files "
                            f"(train.tsv, dev.tsv, msr_paraphrase_test.txt) there, or use data_path: glue/mrpc "
                            f"when online", field="training.data_path", value=str(path))
    frame = pd.read_csv(file, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    expected = ["Quality", "#1 String", "#2 String"]
    if not set(expected) <= set(frame.columns):
        raise LearningError(f"{file.name} lacks the columns {expected}", field="training.data_path", value=str(file))
    return pd.DataFrame({"label": frame["Quality"].astype(int), "a": frame["#1 String"], "b": frame["#2 String"]})


def _mrpc_from_hub(split: str) -> pd.DataFrame:
    try:
        from datasets import load_dataset
    except ImportError:
        raise LearningError("reading glue/mrpc from the hub needs the `datasets` package",
                            field="training.data_path", value="glue/mrpc") from None
    hub_split = {"train": "train", "dev": "validation", "test": "test"}[split]
    try:
        rows = load_dataset("glue", "mrpc", split=hub_split)
    except Exception as err:  # noqa: BLE001 - any hub failure becomes one clear line
        raise LearningError(f"cannot load glue/mrpc from the hub ({type(err).__name__}); offline, point data_path "
                            "at a folder with the GLUE files", field="training.data_path", value="glue/mrpc") from None
    return pd.DataFrame({"label": rows["label"], "a": rows["sentence1"], "b": rows["sentence2"]})


def load_mrpc(path: str, split: str, tokenizer, max_length: int) -> TaskData:
    frame = _mrpc_from_hub(split) if path in ("glue/mrpc", "hub") else read_mrpc(path, split)
    encoded = tokenizer(list(frame["a"]), list(frame["b"]), max_length)
    return TaskData("mrpc", encoded, torch.tensor(frame["label"].to_numpy(), dtype=torch.long), 2, "text")


# ---- CIFAR-100 -------------------------------------------------------------------------------

def load_cifar100(path: str, split: str) -> TaskData:
    """`path` is a cifar-100-python folder (files train, test) or 'cifar100' for the hub."""
    if split not in ("train", "test"):
        raise LearningError("CIFAR-100 splits are train and test", field="training.eval_split", value=split)
    if path in ("cifar100", "hub"):
        try:
            from datasets import load_dataset

            rows = load_dataset("cifar100", split=split)
        except Exception as err:  # noqa: BLE001
            raise LearningError(f"cannot load cifar100 from the hub ({type(err).__name__}); offline, point data_path "
                                "at a cifar-100-python folder", field="training.data_path", value=path) from None
        images = np.stack([np.asarray(img, dtype=np.uint8).transpose(2, 0, 1) for img in rows["img"]])
        labels = np.asarray(rows["fine_label"])
    else:
        file = Path(path) / split
        if not file.is_file():
            raise LearningError(f"CIFAR-100 file '{split}' not found in {path}: extract cifar-100-python.tar.gz "
                                "there, or use data_path: cifar100 when online", field="training.data_path", value=path)
        with file.open("rb") as handle:
            blob = pickle.load(handle, encoding="bytes")  # noqa: S301 - the data set's own format
        images = np.asarray(blob[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(blob[b"fine_labels"], dtype=np.int64)
    return TaskData("cifar100", {"pixel_values": torch.from_numpy(images.copy())}, torch.from_numpy(labels).long(),
                    100, "image")


# ---- synthetic --------------------------------------------------------------------------------

def synthetic_task(kind: str, samples: int, num_labels: int, seed: int, vocab_size: int = 1000,
                   sequence_length: int = 16, channels: int = 3) -> TaskData:
    """A learnable task for smoke tests. Text: a quarter of the tokens are the label's two keyword ids
    (3 + 2c, 4 + 2c), the rest random filler; images: the label's colour channel is brighter."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_labels, (samples,), generator=g)
    if kind == "image":
        images = torch.randint(0, 96, (samples, channels, 32, 32), generator=g)
        images[torch.arange(samples), labels % channels] += 120
        return TaskData("synthetic", {"pixel_values": images.to(torch.uint8)}, labels, num_labels, "image")
    first_filler = 3 + 2 * num_labels
    if vocab_size <= first_filler + 1:
        raise LearningError("vocabulary too small for the synthetic task", field="model.num_labels", value=num_labels)
    ids = torch.randint(first_filler, vocab_size, (samples, sequence_length), generator=g)
    keys = max(1, sequence_length // 4)
    positions = torch.stack([torch.randperm(sequence_length - 1, generator=g)[:keys] + 1 for _ in range(samples)])
    keywords = 3 + 2 * labels[:, None] + torch.randint(0, 2, (samples, keys), generator=g)
    ids.scatter_(1, positions, keywords)
    ids[:, 0] = 1
    return TaskData("synthetic", {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, labels, num_labels, "text")


# ---- partitions --------------------------------------------------------------------------------

def partition(labels: np.ndarray, users: int, how: str, alpha: float, seed: int) -> list[np.ndarray]:
    """Row indices per user. 'iid': a seeded shuffle cut into near-equal shards. 'dirichlet': for
    each class, shares ~ Dirichlet(alpha·1_K) over users (Wang et al. 2020); users may get nothing."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if how == "iid":
        order = rng.permutation(len(labels))
        return [np.sort(part) for part in np.array_split(order, users)]
    if how != "dirichlet":
        raise LearningError("partition must be iid or dirichlet", field="training.partitions", value=how)
    if not alpha > 0:
        raise LearningError("the Dirichlet concentration must be > 0", field="training.dirichlet_alpha", value=alpha)
    parts: list[list[int]] = [[] for _ in range(users)]
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet(np.full(users, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(rows)).round().astype(int)
        for k, chunk in enumerate(np.split(rows, cuts)):
            parts[k].extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def partition_summary(parts: list[np.ndarray], labels: np.ndarray, num_labels: int) -> pd.DataFrame:
    """One row per user: samples and the count of each class."""
    labels = np.asarray(labels)
    rows = []
    for k, idx in enumerate(parts):
        counts = np.bincount(labels[idx], minlength=num_labels) if len(idx) else np.zeros(num_labels, dtype=int)
        rows.append({"user": k, "samples": int(len(idx)), **{f"class_{c}": int(n) for c, n in enumerate(counts)}})
    return pd.DataFrame(rows)
