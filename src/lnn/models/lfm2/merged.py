"""Liquid layers merged into LFM2's ShortConv layers, and liquid adapters attached with forward hooks.

Merged (`model=lfm2_liquid`): `layers[i].conv` becomes a `LiquidShortConv` that runs the original
ShortConv and a `LiquidBranch` on the same (normalised) tokens and returns the learned mixture

    y = conv + mix ⊙ (liquid − conv),        mix ∈ R^H, zero at initialisation,

so the merged model computes exactly what the pretrained one did until training moves `mix` (the seed
blended a fixed 1%: `conv + 0.01·(liquid − conv)`, untrained).

Hybrid (`model=lfm2_hybrid`, the seed's second variant): a forward hook on decoder layer i adds
mix ⊙ liquid(RMSNorm(output)) to the layer's output (identity at initialisation, the seed added
0.1·lnn_out). Both keep their liquid state in the cache slot of the ShortConv layer they sit on, which
is why both accept ShortConv layer indices only.
"""

from __future__ import annotations

from torch import Tensor, nn

from lnn.models.lfm2.liquid import LiquidBranch, LiquidContext


class LiquidShortConv(nn.Module):
    """An LFM2 ShortConv with a liquid branch merged in; same call signature as `Lfm2ShortConv`."""

    def __init__(self, shortconv: nn.Module, liquid: LiquidBranch):
        super().__init__()
        self.shortconv = shortconv
        self.liquid = liquid
        self.layer_idx = shortconv.layer_idx

    def forward(self, hidden_states: Tensor, cache=None, attention_mask: Tensor | None = None, **kwargs) -> Tensor:
        cache = cache if cache is not None else kwargs.pop("past_key_values", None)
        conv = self.shortconv(hidden_states, cache=cache, attention_mask=attention_mask, **kwargs)
        liquid = self.liquid(hidden_states, cache, attention_mask)
        return conv + (self.liquid.mix * (liquid - conv)).to(conv.dtype)


def decoder_layers(base) -> nn.ModuleList:
    return base.model.language_model.layers


def merge_liquid_layers(base, indices: list[int], context: LiquidContext, size: int, **branch_kwargs) -> dict[int, LiquidBranch]:
    """Replace `layers[i].conv` by a LiquidShortConv for each index (already validated); returns the branches."""
    layers, width = decoder_layers(base), base.config.text_config.hidden_size
    branches = {}
    for i in indices:
        shortconv = layers[i].conv
        device = next(shortconv.parameters()).device
        branch = LiquidBranch(width, size, i, context, **branch_kwargs).to(device)
        layers[i].conv = LiquidShortConv(shortconv, branch)
        branches[i] = branch
    return branches


class HookAdapters(nn.Module):
    """Liquid adapters on decoder-layer outputs, attached with forward hooks (`attach`/`detach`)."""

    def __init__(self, base, indices: list[int], context: LiquidContext, size: int, **branch_kwargs):
        super().__init__()
        width = base.config.text_config.hidden_size
        device = next(base.parameters()).device
        self.adapters = nn.ModuleDict(
            {str(i): LiquidBranch(width, size, i, context, norm=True, **branch_kwargs).to(device) for i in indices}
        )
        self._handles = []
        self.attach(base)

    def attach(self, base) -> None:
        self.detach()
        layers = decoder_layers(base)
        for key, adapter in self.adapters.items():
            self._handles.append(layers[int(key)].register_forward_hook(self._hook(adapter), with_kwargs=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @staticmethod
    def _hook(adapter: LiquidBranch):
        def hook(module, args, kwargs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            liquid = adapter(hidden, cache, kwargs.get("attention_mask"))
            hidden = hidden + (adapter.mix * liquid).to(hidden.dtype)
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        return hook

    def branches(self) -> dict[int, LiquidBranch]:
        return {int(k): v for k, v in self.adapters.items()}
