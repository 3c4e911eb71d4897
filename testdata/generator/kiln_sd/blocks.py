"""Building blocks shared by the UNet and the VAE, written after diffusers' 0.10-0.12 era modules.

Module names (attribute names) are the ones diffusers uses, because torch.onnx.export turns them into node
scopes such as `/down_blocks.1/attentions.0/transformer_blocks.0/attn1/MatMul`, which Kiln's fusions and error
messages rely on. The arithmetic is written the way those diffusers versions wrote it (explicit matmul/softmax
attention, GroupNorm followed by a separate SiLU, residual then divide by output_scale_factor), since the
exported graph's shape depends on how the math is spelled, not only on what it computes.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResnetBlock2D(nn.Module):
    """norm1 → SiLU → conv1 (+ time embedding) → norm2 → SiLU → dropout → conv2, residual with conv_shortcut
    when the channel count changes, then divided by output_scale_factor."""

    def __init__(self, in_channels, out_channels, temb_channels, groups, eps, output_scale_factor=1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(num_groups=groups, num_channels=in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels) if temb_channels is not None else None
        self.norm2 = nn.GroupNorm(num_groups=groups, num_channels=out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.nonlinearity = nn.SiLU()
        self.output_scale_factor = output_scale_factor
        self.conv_shortcut = (nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)
                              if in_channels != out_channels else None)

    def forward(self, input_tensor, temb):
        hidden_states = input_tensor
        hidden_states = self.norm1(hidden_states)
        hidden_states = self.nonlinearity(hidden_states)
        hidden_states = self.conv1(hidden_states)
        if temb is not None:
            temb = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]
            hidden_states = hidden_states + temb
        hidden_states = self.norm2(hidden_states)
        hidden_states = self.nonlinearity(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.conv2(hidden_states)
        if self.conv_shortcut is not None:
            input_tensor = self.conv_shortcut(input_tensor)
        return (input_tensor + hidden_states) / self.output_scale_factor


class Downsample2D(nn.Module):
    """Strided 3x3 conv; with padding=0 (the VAE encoder) diffusers pads right/bottom by one first."""

    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=padding)

    def forward(self, hidden_states):
        if self.padding == 0:
            hidden_states = F.pad(hidden_states, (0, 1, 0, 1), mode="constant", value=0)
        return self.conv(hidden_states)


class Upsample2D(nn.Module):
    """Nearest 2x interpolation (or to an explicit size) then a 3x3 conv."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, hidden_states, output_size=None):
        if output_size is None:
            hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
        else:
            hidden_states = F.interpolate(hidden_states, size=output_size, mode="nearest")
        return self.conv(hidden_states)


def scaled_dot_product_attention(query, key, value):
    """torch 2's `F.scaled_dot_product_attention` on [B, N, L, H] tensors, spelled so that torch 1.13 exports
    exactly what torch 2's ONNX symbolic (opset 14+) emits: the scale computed from the graph
    (`Shape → Slice[-1:] → Cast → Sqrt → Div(1, ·)`), q and kᵀ each multiplied by its square root
    (`Sqrt → Mul`, torch's "scale q, k before matmul for stability"), then `MatMul → Softmax → MatMul`. The
    exporter's peephole merges the head split's Transpose[0,2,1,3] with kᵀ's Transpose[0,1,3,2] into one
    Transpose[0,2,3,1], as it does for torch 2 exports. Same math as SDPA with its default scale 1/√H."""
    embedding_size = torch._shape_as_tensor(query)[-1:].to(query.dtype)
    scale = torch.tensor([1.0], dtype=query.dtype) / torch.sqrt(embedding_size)
    key_transposed = key.transpose(-2, -1)
    query_scaled = query * torch.sqrt(scale)
    key_transposed_scaled = key_transposed * torch.sqrt(scale)
    weights = torch.softmax(torch.matmul(query_scaled, key_transposed_scaled), dim=-1)
    return torch.matmul(weights, value)


def use_sdpa(model):
    """Switches every attention of `model` to the torch-2 export form (diffusers' AttnProcessor2_0): heads
    split into a 4-D [B, N, L, H] view instead of folded into the batch, then `scaled_dot_product_attention`."""
    for module in model.modules():
        if isinstance(module, (CrossAttention, AttentionBlock)):
            module.sdpa = True
    return model


class CrossAttention(nn.Module):
    """diffusers' CrossAttention with the torch-1 attention path: heads folded into the batch dimension,
    matmul(q, kᵀ)·scale → softmax → matmul(v). Key and value come from the context when one is given."""

    def __init__(self, query_dim, cross_attention_dim, heads, dim_head, upcast_attention=False):
        super().__init__()
        inner_dim = dim_head * heads
        cross_attention_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.scale = dim_head ** -0.5
        self.heads = heads
        self.upcast_attention = upcast_attention
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(cross_attention_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(cross_attention_dim, inner_dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner_dim, query_dim), nn.Dropout(0.0)])
        self.sdpa = False

    def reshape_heads_to_batch_dim(self, tensor):
        batch_size, seq_len, dim = tensor.shape
        head_size = self.heads
        tensor = tensor.reshape(batch_size, seq_len, head_size, dim // head_size)
        return tensor.permute(0, 2, 1, 3).reshape(batch_size * head_size, seq_len, dim // head_size)

    def reshape_batch_dim_to_heads(self, tensor):
        batch_size, seq_len, dim = tensor.shape
        head_size = self.heads
        tensor = tensor.reshape(batch_size // head_size, head_size, seq_len, dim)
        return tensor.permute(0, 2, 1, 3).reshape(batch_size // head_size, seq_len, dim * head_size)

    def forward(self, hidden_states, context=None):
        query = self.to_q(hidden_states)
        context = context if context is not None else hidden_states
        key = self.to_k(context)
        value = self.to_v(context)
        if self.sdpa:
            hidden_states = self._attention_sdpa(query, key, value)
            hidden_states = self.to_out[0](hidden_states)
            return self.to_out[1](hidden_states)
        query = self.reshape_heads_to_batch_dim(query)
        key = self.reshape_heads_to_batch_dim(key)
        value = self.reshape_heads_to_batch_dim(value)
        hidden_states = self._attention(query, key, value)
        hidden_states = self.to_out[0](hidden_states)
        return self.to_out[1](hidden_states)

    def _attention_sdpa(self, query, key, value):
        """AttnProcessor2_0: view(B, -1, N, H).transpose(1, 2), SDPA, transpose(1, 2).reshape(B, -1, N·H)."""
        batch_size = query.shape[0]
        head_dim = key.shape[-1] // self.heads
        query, key, value = [tensor.view(batch_size, -1, self.heads, head_dim).transpose(1, 2)
                             for tensor in (query, key, value)]
        hidden_states = scaled_dot_product_attention(query, key, value)
        return hidden_states.transpose(1, 2).reshape(batch_size, -1, self.heads * head_dim)

    def _attention(self, query, key, value):
        if self.upcast_attention:
            # SD 2.x configs set upcast_attention; in fp32 these are no-op casts that the exporter still emits.
            query = query.float()
            key = key.float()
        attention_scores = torch.matmul(query, key.transpose(-1, -2)) * self.scale
        attention_probs = attention_scores.softmax(dim=-1)
        if self.upcast_attention:
            attention_probs = attention_probs.to(value.dtype)
        hidden_states = torch.matmul(attention_probs, value)
        return self.reshape_batch_dim_to_heads(hidden_states)


class GEGLU(nn.Module):
    """proj to twice the width, split in half, hidden · gelu(gate) with the exact (erf) GELU."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, hidden_states):
        hidden_states, gate = self.proj(hidden_states).chunk(2, dim=-1)
        return hidden_states * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        inner_dim = int(dim * mult)
        self.net = nn.ModuleList([GEGLU(dim, inner_dim), nn.Dropout(0.0), nn.Linear(inner_dim, dim)])

    def forward(self, hidden_states):
        for module in self.net:
            hidden_states = module(hidden_states)
        return hidden_states


class BasicTransformerBlock(nn.Module):
    """Pre-LN: self-attention (attn1), cross-attention to the text states (attn2), GEGLU feed-forward."""

    def __init__(self, dim, heads, dim_head, cross_attention_dim, upcast_attention):
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head, upcast_attention)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, cross_attention_dim, heads, dim_head, upcast_attention)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, hidden_states, context):
        hidden_states = self.attn1(self.norm1(hidden_states)) + hidden_states
        hidden_states = self.attn2(self.norm2(hidden_states), context=context) + hidden_states
        return self.ff(self.norm3(hidden_states)) + hidden_states


class Transformer2DModel(nn.Module):
    """GroupNorm → proj_in (1x1 conv for SD 1.x, linear after flattening for SD 2.x/XL) → transformer blocks
    → proj_out → residual."""

    def __init__(self, heads, dim_head, in_channels, num_layers, cross_attention_dim, groups,
                 use_linear_projection, upcast_attention):
        super().__init__()
        inner_dim = heads * dim_head
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(num_groups=groups, num_channels=in_channels, eps=1e-6, affine=True)
        if use_linear_projection:
            self.proj_in = nn.Linear(in_channels, inner_dim)
        else:
            self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1, stride=1, padding=0)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner_dim, heads, dim_head, cross_attention_dim, upcast_attention)
            for _ in range(num_layers)])
        if use_linear_projection:
            self.proj_out = nn.Linear(inner_dim, in_channels)
        else:
            self.proj_out = nn.Conv2d(inner_dim, in_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, hidden_states, encoder_hidden_states):
        batch, _, height, width = hidden_states.shape
        residual = hidden_states
        hidden_states = self.norm(hidden_states)
        if not self.use_linear_projection:
            hidden_states = self.proj_in(hidden_states)
            inner_dim = hidden_states.shape[1]
            hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch, height * width, inner_dim)
        else:
            inner_dim = hidden_states.shape[1]
            hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch, height * width, inner_dim)
            hidden_states = self.proj_in(hidden_states)
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, context=encoder_hidden_states)
        if not self.use_linear_projection:
            hidden_states = hidden_states.reshape(batch, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
            hidden_states = self.proj_out(hidden_states)
        else:
            hidden_states = self.proj_out(hidden_states)
            hidden_states = hidden_states.reshape(batch, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
        return hidden_states + residual


class AttentionBlock(nn.Module):
    """The VAE's single-head spatial self-attention (diffusers AttentionBlock): baddbmm with an empty input and
    beta=0, softmax in float, bmm, proj_attn, then (out + residual) / rescale_output_factor."""

    def __init__(self, channels, groups, eps, rescale_output_factor=1.0):
        super().__init__()
        self.channels = channels
        self.num_heads = 1
        self.group_norm = nn.GroupNorm(num_channels=channels, num_groups=groups, eps=eps, affine=True)
        self.query = nn.Linear(channels, channels)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.rescale_output_factor = rescale_output_factor
        self.proj_attn = nn.Linear(channels, channels, 1)
        self.sdpa = False

    def reshape_heads_to_batch_dim(self, tensor):
        batch_size, seq_len, dim = tensor.shape
        head_size = self.num_heads
        tensor = tensor.reshape(batch_size, seq_len, head_size, dim // head_size)
        return tensor.permute(0, 2, 1, 3).reshape(batch_size * head_size, seq_len, dim // head_size)

    def reshape_batch_dim_to_heads(self, tensor):
        batch_size, seq_len, dim = tensor.shape
        head_size = self.num_heads
        tensor = tensor.reshape(batch_size // head_size, head_size, seq_len, dim)
        return tensor.permute(0, 2, 1, 3).reshape(batch_size // head_size, seq_len, dim * head_size)

    def forward(self, hidden_states):
        residual = hidden_states
        batch, channel, height, width = hidden_states.shape
        hidden_states = self.group_norm(hidden_states)
        hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        query_proj = self.query(hidden_states)
        key_proj = self.key(hidden_states)
        value_proj = self.value(hidden_states)
        if self.sdpa:
            # diffusers' Attention with AttnProcessor2_0 (the VAE's mid-block since diffusers 0.15).
            head_dim = channel // self.num_heads
            query_proj, key_proj, value_proj = [
                tensor.view(batch, -1, self.num_heads, head_dim).transpose(1, 2)
                for tensor in (query_proj, key_proj, value_proj)]
            hidden_states = scaled_dot_product_attention(query_proj, key_proj, value_proj)
            hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, self.num_heads * head_dim)
            hidden_states = self.proj_attn(hidden_states)
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
            return (hidden_states + residual) / self.rescale_output_factor
        scale = 1 / math.sqrt(self.channels / self.num_heads)
        query_proj = self.reshape_heads_to_batch_dim(query_proj)
        key_proj = self.reshape_heads_to_batch_dim(key_proj)
        value_proj = self.reshape_heads_to_batch_dim(value_proj)
        attention_scores = torch.baddbmm(
            torch.empty(query_proj.shape[0], query_proj.shape[1], key_proj.shape[1],
                        dtype=query_proj.dtype, device=query_proj.device),
            query_proj, key_proj.transpose(-1, -2), beta=0, alpha=scale)
        attention_probs = torch.softmax(attention_scores.float(), dim=-1).type(attention_scores.dtype)
        hidden_states = torch.bmm(attention_probs, value_proj)
        hidden_states = self.reshape_batch_dim_to_heads(hidden_states)
        hidden_states = self.proj_attn(hidden_states)
        hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        return (hidden_states + residual) / self.rescale_output_factor
