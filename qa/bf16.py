"""bfloat16 weights for a model's linear layers, kept once at load time.

torch's autocast casts every fp32 weight to bf16 anew on each call and frees the copies at its end. For a
batch of passages that cost vanishes in the matmuls; a question is a few dozen tokens, and for it the 42 MB of
casts weigh as much as the matmuls they save. Held in bf16 once, a question costs 23 % less CPU than in fp32
(p50 37.5 vs 48.0 ms; benchmarks/notes/embedding-speed.md has the wall times, which gain only when the second
core is busy or the host is quiet). The residual stream, LayerNorm and pooling stay in fp32 (cosine to fp32
≥ 0.99998). `qa.embeddings` swaps the layers only where the CPU has native bf16 matmuls; elsewhere bf16 would
be emulated, slower.
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
