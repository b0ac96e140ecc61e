"""Running mean/variance of a stream of tensors, kept in buffers so it is saved with the model."""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Per-feature running mean and variance (parallel-variance merge) over the leading dimensions.

    ``shape`` is the feature shape: ``()`` for a scalar stream, ``(d,)`` for d features. Updates take
    any tensor whose trailing dimensions match ``shape``.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.register_buffer("mean", torch.zeros(self.shape))
        self.register_buffer("var", torch.ones(self.shape))
        self.register_buffer("count", torch.tensor(epsilon))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.shape).to(self.mean.dtype)
        batch_mean, batch_var, batch_count = x.mean(0), x.var(0, unbiased=False), x.size(0)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean += delta * batch_count / total
        merged = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var.copy_(merged / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / (self.var.sqrt() + 1e-8)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.var.sqrt() + 1e-8) + self.mean
