"""Lightning wrapper around :class:`~nmt.models.classifier.TextClassifier`: loss, metrics,
optimiser (with a separate rate for a transferred encoder), checkpoint payload."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F

from nmt.data.classification_batching import ClassificationBatch
from nmt.data.tokenizers import Tokenizer
from nmt.embeddings.pretrained import load_pretrained_embeddings
from nmt.evaluation.classification import confusion_matrix, per_class_scores
from nmt.models.classifier import TextClassifier
from nmt.models.classifier_output import ClassifierOutput, predicted_classes
from nmt.tasks.base import TrainingTask
from nmt.training.distributed import sum_across_ranks

MONITOR = "val/f1"  # macro-F1: equals accuracy's ranking on balanced data, robust on SMS spam


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean BCE on a single logit (two classes) or cross-entropy (more), in float32.

    :param logits: (batch, 1) or (batch, num_classes). :param labels: (batch,) class ids.
    """
    logits = logits.float()
    if logits.size(-1) == 1:
        targets = labels.float() * (1 - label_smoothing) + label_smoothing / 2
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), targets)
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


class ClassificationTask(TrainingTask):
    """Trains a :class:`TextClassifier`; validates with loss, accuracy and macro-F1.

    With ``model.encoder.init_from`` set (and no ``ckpt_path`` to resume from), the embedding
    and encoder are initialised from that translation checkpoint; ``tokenizer`` must then be
    its source tokenizer (the datamodule takes care of that).

    Under DDP each rank evaluates its share of the dev batches and the confusion matrix and
    loss are summed across ranks, so the metrics equal those of a single process.

    :param config: the resolved run config (plain dict), stored in every checkpoint.
    """

    task_name = "classification"
    monitor = MONITOR
    monitor_mode = "max"

    def __init__(self, config: Mapping[str, Any], tokenizer: Tokenizer) -> None:
        bilm = None
        contextual = config["model"].get("contextual") or {}
        if contextual.get("bilm") and not config.get("ckpt_path"):  # on resume the checkpoint has it all
            from nmt.tasks.contextual_transfer import read_bilm, with_bilm_model

            bilm = read_bilm(contextual["bilm"])
            if bilm.tokenizer.to_state() != tokenizer.to_state():
                raise ValueError(
                    f"the classifier's tokenizer is not the tokenizer of {bilm.path}: "
                    'build the datamodule with nmt.tasks.registry.get("classification").datamodule'
                )
            config = with_bilm_model(config, bilm)
        super().__init__(config)
        self.tokenizer = tokenizer
        self.label_names = list(config["data"]["labels"])
        model_cfg = config["model"]
        # A TextClassifier, or a ConvLSTMClassifier (model.architecture=conv_lstm): duck-typed below.
        self.model: Any = cast(Any, TextClassifier.from_config(model_cfg, tokenizer.vocab_size, len(self.label_names)))
        if bilm is not None:
            from nmt.tasks.contextual_transfer import load_bilm_weights

            load_bilm_weights(self.model.contextual.bilm, bilm)
        self.label_smoothing = float(config["loss"]["label_smoothing"])
        transfer = model_cfg.get("encoder") or {}
        if transfer.get("init_from"):
            from nmt.tasks.encoder_transfer import freeze_encoder, init_from_translation

            if not config.get("ckpt_path"):  # on resume the weights come from the checkpoint
                source = init_from_translation(self.model, model_cfg, transfer["init_from"])
                if source.tokenizer.to_state() != tokenizer.to_state():
                    raise ValueError(
                        f"the classifier's tokenizer is not the source tokenizer of {source.path}: "
                        'build the datamodule with nmt.tasks.registry.get("classification").datamodule'
                    )
            if transfer.get("freeze"):
                freeze_encoder(self.model)
        elif transfer.get("freeze"):
            raise ValueError("model.encoder.freeze=true needs model.encoder.init_from=PATH to a translation checkpoint")
        self.pretrained = load_pretrained_embeddings(
            config, {"source": (self.model.src_embed, tokenizer)}, lambda dm: {"source": dm.dataset("train").ids}
        )
        self._confusion: torch.Tensor | None = None
        self._loss_sum, self._count = 0.0, 0

    def tokenizers(self) -> dict[str, Tokenizer]:
        return {"source": self.tokenizer}

    def uniform_loss(self) -> float:
        return math.log(len(self.label_names))

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.pretrained is not None:
            self.pretrained.report(self.trainer)

    def extra_payload(self) -> dict[str, Any]:
        return {"labels": list(self.label_names)}

    def forward(self, batch: ClassificationBatch) -> ClassifierOutput:
        return self.model(batch.src, batch.src_lengths)

    def training_loss(self, batch: ClassificationBatch) -> tuple[torch.Tensor, int]:
        return classification_loss(self(batch).logits, batch.labels, self.label_smoothing), batch.labels.numel()

    # -- evaluation (validation and test share it) --------------------------------------------
    def _start_eval(self) -> None:
        n = len(self.label_names)
        self._confusion = torch.zeros(n, n, dtype=torch.long)
        self._loss_sum, self._count = 0.0, 0

    def _eval_step(self, batch: ClassificationBatch, dataloader_idx: int = 0) -> None:
        logits = self(batch).logits
        self._loss_sum += float(classification_loss(logits, batch.labels)) * batch.labels.numel()
        self._count += batch.labels.numel()
        assert self._confusion is not None  # reset when evaluation starts
        self._confusion += confusion_matrix(predicted_classes(logits).cpu(), batch.labels.cpu(), len(self.label_names))

    def _end_eval(self, stage: str) -> None:
        n = len(self.label_names)
        assert self._confusion is not None  # reset when evaluation starts
        totals = sum_across_ranks([self._loss_sum, self._count, *self._confusion.flatten().tolist()])
        loss_sum, count = totals[0], int(totals[1])
        if not count:
            return
        confusion = torch.tensor(totals[2:], dtype=torch.float64).round().long().view(n, n)
        scores = per_class_scores(confusion)
        self.log(f"{stage}/loss", loss_sum / count)
        self.log(f"{stage}/acc", float(confusion.diag().sum()) / count, prog_bar=True)
        self.log(f"{stage}/f1", sum(s["f1"] for s in scores) / len(scores), prog_bar=True)
        for name, score in zip(self.label_names, scores):
            self.log(f"{stage}/f1_{name}", score["f1"])

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        contextual = getattr(self.model, "contextual", None)
        if contextual is not None:  # what the classifier takes from each biLM layer
            for layer, weight in enumerate(contextual.mix.layer_weights()):
                self.log(f"mix/layer{layer}", weight)
            self.log("mix/gamma", float(contextual.mix.gamma))

    # -- optimisation and checkpoints --------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """Head at ``optim.lr``; embedding and encoder at ``lr * model.encoder.lr_scale``; a
        fine-tuned biLM at ``lr * model.contextual.lr_scale`` (its scalar mix is in the head).
        Frozen parameters are left out."""
        lr = float(self.config["optim"]["lr"])
        model_cfg = self.config["model"]
        scales = {
            "encoder": float((model_cfg.get("encoder") or {}).get("lr_scale", 1.0)),
            "contextual": float((model_cfg.get("contextual") or {}).get("lr_scale", 1.0)),
        }
        members = {
            "encoder": self.model.transferable_parameters(),
            "contextual": getattr(self.model, "contextual_parameters", list)(),
        }
        grouped = {id(p) for params in members.values() for p in params}
        head = [p for p in self.model.parameters() if id(p) not in grouped and p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": head, "name": "head"}]
        for name, params in members.items():
            trainable = [p for p in params if p.requires_grad]
            if trainable:
                groups.append({"params": trainable, "lr": lr * scales[name], "name": name})
        return groups
