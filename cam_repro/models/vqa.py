"""The paper's VQA model (Section 4.2, after Zhou et al. 2015, "Simple baseline for visual question
answering"): the image's globally pooled last conv maps, concatenated with a bag-of-words of the
question, feed one linear layer over the answers.

    logits = W_img @ pool(f(x)) + W_q @ bow(q) + b

so the answer a's class activation map M_a(x, y) = sum_k W_img[a, k] f_k(x, y) (the image part of
the weights) satisfies, with GAP, logit_a = mean_xy M_a + W_q[a] @ bow(q) + b_a: the CAM identity,
with the question's term added to the bias. `answer_cams` computes those maps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cam_repro.localize.cam import CAMOutput, class_activation_maps
from cam_repro.models.config import ModelConfig, variant_name
from cam_repro.models.heads import CAMNet
from cam_repro.models.zoo import build_model
from cam_repro.runtime.errors import ConfigError


def bag_of_words(tokens: Tensor, vocab_size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, L) word indices, -1 padding -> (B, V) word counts."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be (B, L), got shape {tuple(tokens.shape)}")
    counts = torch.zeros(tokens.shape[0], vocab_size, dtype=dtype, device=tokens.device)
    present = tokens >= 0
    return counts.scatter_add_(1, tokens.clamp(min=0), present.to(dtype))


class VQANet(nn.Module):
    """A CAM network's trunk and pooling (`image`), and one linear layer over [pooled image
    features; bag-of-words of the question] (`classifier`, (A, K + V))."""

    def __init__(self, image_net: CAMNet, vocab_size: int, num_answers: int) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ConfigError(f"the question vocabulary is empty (vocab_size={vocab_size})")
        self.image_features = image_net.classifier.in_features  # K
        self.vocab_size = vocab_size
        image_net.classifier = nn.Identity()  # image(x) is now the pooled vector (B, K)
        self.image = image_net
        self.classifier = nn.Linear(self.image_features + vocab_size, num_answers)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    @property
    def image_weight(self) -> Tensor:
        """W_img (A, K): the weights the answer CAMs are made of."""
        return self.classifier.weight[:, : self.image_features]

    @property
    def question_weight(self) -> Tensor:
        """W_q (A, V)."""
        return self.classifier.weight[:, self.image_features :]

    def features(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> the last conv maps f_k (B, K, h, w)."""
        return self.image.features(x)

    def logits_from_features(self, features: Tensor, tokens: Tensor) -> Tensor:
        pooled = self.image.dropout(self.image.pool(features))
        bow = bag_of_words(tokens, self.vocab_size, pooled.dtype)
        return self.classifier(torch.cat([pooled, bow], dim=1))

    def forward(self, x: Tensor, tokens: Tensor) -> Tensor:
        return self.logits_from_features(self.features(x), tokens)


def build_vqa_model(cfg: ModelConfig, num_answers: int, vocab_size: int) -> VQANet:
    """The VQA model on the CAM network `cfg` describes (its weights as build_model loads them)."""
    net = build_model(cfg, num_answers)
    if not isinstance(net, CAMNet):
        raise ConfigError(
            f"task=vqa needs a CAM network (global pooling, one linear layer) for its image "
            f"features; {variant_name(cfg)} has fully connected layers: use a -GAP or -GMP "
            "variant (e.g. model=tiny_gap, model=googlenet_gap)"
        )
    model = VQANet(net, vocab_size, num_answers)
    reused = getattr(net, "reused_keys", None)
    if reused is not None:  # the loaded tensors, named as in the VQA model
        kept = (k for k in reused if not k.startswith("classifier"))
        model.reused_keys = frozenset(f"image.{k}" for k in kept)
    if hasattr(net, "weights_load"):  # what the image network's weights file gave it
        model.weights_load = net.weights_load
    return model


def answer_cams(
    model: VQANet,
    images: Tensor,
    tokens: Tensor,
    topk: int = 1,
    answers: Tensor | None = None,
    append: Tensor | None = None,
) -> CAMOutput:
    """Logits and the CAMs of the top-k answers (or of the given `answers` (B,) or (B, k)), then
    of `append` (B,), e.g. the true answers, as cam-eval appends the true class; from the image
    part of the answer layer's weights, in one forward pass."""
    features = model.features(images)
    logits = model.logits_from_features(features, tokens)
    if answers is None:
        answers = logits.topk(min(topk, logits.shape[1]), dim=1).indices
    elif answers.dim() == 1:
        answers = answers[:, None]
    if append is not None:
        answers = torch.cat([answers, append[:, None].to(answers.device)], dim=1)
    scores = logits.softmax(dim=1).gather(1, answers)
    cams = class_activation_maps(features, model.image_weight, answers)
    return CAMOutput(logits=logits, classes=answers, scores=scores, cams=cams)
