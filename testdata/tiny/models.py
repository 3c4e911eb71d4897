"""Tiny SD-1.x-shaped models: CLIP text encoder, AutoencoderKL, UNet2DCondition.

Written from the published architectures (CLIP, LDM/SD 1.x) with the module names diffusers/transformers use,
so exported graphs carry the node-name prefixes Kiln's tools expect (`/down_blocks.0/attentions.0/...`,
`text_model.encoder.layers.0.self_attn.q_proj`, `encoder.mid_block.attentions.0.to_q`, ...). Nothing here is
copied from those libraries; only the layout and the math are the same.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------------------------------- text encoder

class CLIPAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def forward(self, x, causal_mask):
        batch, length, hidden = x.shape
        q = (self.q_proj(x) * self.scale).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) + causal_mask
        probabilities = scores.softmax(dim=-1)
        out = torch.matmul(probabilities, v).transpose(1, 2).reshape(batch, length, hidden)
        return self.out_proj(out)


class CLIPMLP(nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.fc1 = nn.Linear(hidden, intermediate)
        self.fc2 = nn.Linear(intermediate, hidden)

    def forward(self, x):
        x = self.fc1(x)
        x = x * torch.sigmoid(1.702 * x)  # quick_gelu, as CLIP ViT-L/14's text tower uses
        return self.fc2(x)


class CLIPEncoderLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate):
        super().__init__()
        self.self_attn = CLIPAttention(hidden, heads)
        self.layer_norm1 = nn.LayerNorm(hidden, eps=1e-5)
        self.mlp = CLIPMLP(hidden, intermediate)
        self.layer_norm2 = nn.LayerNorm(hidden, eps=1e-5)

    def forward(self, x, causal_mask):
        x = x + self.self_attn(self.layer_norm1(x), causal_mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEmbeddings(nn.Module):
    def __init__(self, vocab_size, hidden, max_positions):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, hidden)
        self.position_embedding = nn.Embedding(max_positions, hidden)
        self.register_buffer("position_ids", torch.arange(max_positions).unsqueeze(0), persistent=False)

    def forward(self, input_ids):
        length = input_ids.shape[-1]
        return self.token_embedding(input_ids) + self.position_embedding(self.position_ids[:, :length])


class CLIPEncoder(nn.Module):
    def __init__(self, hidden, heads, intermediate, layers):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(hidden, heads, intermediate) for _ in range(layers)])


class CLIPTextTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = config["hidden_size"]
        self.embeddings = CLIPEmbeddings(config["vocab_size"], hidden, config["max_position_embeddings"])
        self.encoder = CLIPEncoder(hidden, config["num_attention_heads"], config["intermediate_size"],
                                   config["num_hidden_layers"])
        self.final_layer_norm = nn.LayerNorm(hidden, eps=1e-5)

    def forward(self, input_ids):
        x = self.embeddings(input_ids)
        length = input_ids.shape[1]
        mask = torch.full((length, length), torch.finfo(x.dtype).min, dtype=x.dtype, device=x.device)
        causal_mask = torch.triu(mask, diagonal=1)[None, None, :, :]
        for layer in self.encoder.layers:
            x = layer(x, causal_mask)
        last_hidden_state = self.final_layer_norm(x)
        # SD 1.x's CLIP pools at the first <|endoftext|>, found as argmax of the ids (it is the largest id).
        end_positions = input_ids.to(torch.int64).argmax(dim=-1)
        pooled = last_hidden_state[torch.arange(last_hidden_state.shape[0]), end_positions]
        return last_hidden_state, pooled


class CLIPTextModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config)

    def forward(self, input_ids):
        return self.text_model(input_ids)


# ------------------------------------------------------------------------------------------ shared pieces

class ResnetBlock2D(nn.Module):
    def __init__(self, in_channels, out_channels, groups, temb_channels=None, eps=1e-6):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels) if temb_channels else None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


def _attention(q, k, v, heads):
    """Multi-head scaled dot-product attention on [B, N, C] tensors (contiguous batched matmuls: fast here)."""
    batch, queries, channels = q.shape
    keys = k.shape[1]
    head_dim = channels // heads
    q = q.reshape(batch, queries, heads, head_dim).permute(0, 2, 1, 3).reshape(batch * heads, queries, head_dim)
    k = k.reshape(batch, keys, heads, head_dim).permute(0, 2, 3, 1).reshape(batch * heads, head_dim, keys)
    v = v.reshape(batch, keys, heads, head_dim).permute(0, 2, 1, 3).reshape(batch * heads, keys, head_dim)
    scores = torch.bmm(q, k) * (head_dim ** -0.5)
    out = torch.bmm(scores.softmax(dim=-1), v)
    return out.reshape(batch, heads, queries, head_dim).permute(0, 2, 1, 3).reshape(batch, queries, channels)


class Attention(nn.Module):
    """diffusers-style attention: to_q/to_k/to_v/to_out.0 (+ group_norm for the VAE's spatial attention)."""

    def __init__(self, query_dim, heads, context_dim=None, bias=False, groups=None):
        super().__init__()
        self.heads = heads
        self.group_norm = nn.GroupNorm(groups, query_dim, eps=1e-6) if groups else None
        self.to_q = nn.Linear(query_dim, query_dim, bias=bias)
        self.to_k = nn.Linear(context_dim or query_dim, query_dim, bias=bias)
        self.to_v = nn.Linear(context_dim or query_dim, query_dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(query_dim, query_dim)])

    def forward(self, x, context=None):
        context = x if context is None else context
        return self.to_out[0](_attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads))

    def spatial(self, x):
        """VAE mid-block attention over the H*W positions of an image tensor, with residual."""
        batch, channels, height, width = x.shape
        h = self.group_norm(x).reshape(batch, channels, height * width).transpose(1, 2)
        h = self.forward(h)
        return x + h.transpose(1, 2).reshape(batch, channels, height, width)


# ------------------------------------------------------------------------------------------------- VAE

class Downsample2D(nn.Module):
    def __init__(self, channels, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))  # the VAE encoder's asymmetric pad, as in LDM
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class EncoderBlock(nn.Module):
    def __init__(self, in_channels, out_channels, layers, groups, downsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, groups)
                                      for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, 0)]) if downsample else None

    def forward(self, x):
        for resnet in self.resnets:
            x = resnet(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
        return x


class DecoderBlock(nn.Module):
    def __init__(self, in_channels, out_channels, layers, groups, upsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, groups)
                                      for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if upsample else None

    def forward(self, x):
        for resnet in self.resnets:
            x = resnet(x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class VAEMidBlock(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, groups) for _ in range(2)])
        self.attentions = nn.ModuleList([Attention(channels, 1, bias=True, groups=groups)])

    def forward(self, x):
        x = self.resnets[0](x)
        x = self.attentions[0].spatial(x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        channels = config["block_out_channels"]
        groups = config["norm_num_groups"]
        self.conv_in = nn.Conv2d(config["in_channels"], channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        previous = channels[0]
        for index, out in enumerate(channels):
            self.down_blocks.append(EncoderBlock(previous, out, config["layers_per_block"], groups,
                                                 downsample=index < len(channels) - 1))
            previous = out
        self.mid_block = VAEMidBlock(channels[-1], groups)
        self.conv_norm_out = nn.GroupNorm(groups, channels[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(channels[-1], 2 * config["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        channels = list(reversed(config["block_out_channels"]))
        groups = config["norm_num_groups"]
        self.conv_in = nn.Conv2d(config["latent_channels"], channels[0], 3, padding=1)
        self.mid_block = VAEMidBlock(channels[0], groups)
        self.up_blocks = nn.ModuleList()
        previous = channels[0]
        for index, out in enumerate(channels):
            self.up_blocks.append(DecoderBlock(previous, out, config["layers_per_block"] + 1, groups,
                                               upsample=index < len(channels) - 1))
            previous = out
        self.conv_norm_out = nn.GroupNorm(groups, channels[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(channels[-1], config["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        latent = config["latent_channels"]
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1)
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)

    def encode_parameters(self, sample):
        """[B,3,H,W] in [-1,1] -> the posterior's mean and log-variance, concatenated [B,8,H/8,W/8]."""
        return self.quant_conv(self.encoder(sample))

    def decode(self, latent_sample):
        """Unscaled latents [B,4,h,w] -> image [B,3,8h,8w] in about [-1,1]."""
        return self.decoder(self.post_quant_conv(latent_sample))


class VaeEncoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.encoder = vae.encoder
        self.quant_conv = vae.quant_conv

    def forward(self, sample):
        return self.quant_conv(self.encoder(sample))


class VaeDecoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.post_quant_conv = vae.post_quant_conv
        self.decoder = vae.decoder

    def forward(self, latent_sample):
        return self.decoder(self.post_quant_conv(latent_sample))


# ------------------------------------------------------------------------------------------------ UNet

class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for module in self.net:
            x = module(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, context_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim=context_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2DModel(nn.Module):
    def __init__(self, channels, heads, context_dim, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)  # SD 1.x: 1x1 conv projections
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(channels, heads, context_dim)])
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x, context):
        batch, channels, height, width = x.shape
        h = self.proj_in(self.norm(x))
        h = h.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        for block in self.transformer_blocks:
            h = block(h, context)
        h = h.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        return x + self.proj_out(h)


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (with attentions) or DownBlock2D (without)."""

    def __init__(self, in_channels, out_channels, temb, layers, groups, heads, context_dim, attention, downsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(in_channels if i == 0 else out_channels, out_channels, groups,
                                                    temb, eps=1e-5) for i in range(layers)])
        self.attentions = nn.ModuleList([Transformer2DModel(out_channels, heads, context_dim, groups)
                                         for _ in range(layers)]) if attention else None
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, 1)]) if downsample else None

    def forward(self, x, temb, context):
        skips = []
        for index, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[index](x, context)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D or UpBlock2D: resnets over [x, skip] concatenations."""

    def __init__(self, in_channels, out_channels, previous_channels, temb, layers, groups, heads, context_dim,
                 attention, upsample):
        super().__init__()
        self.resnets = nn.ModuleList()
        for index in range(layers):
            skip_channels = in_channels if index == layers - 1 else out_channels
            resnet_in = previous_channels if index == 0 else out_channels
            self.resnets.append(ResnetBlock2D(resnet_in + skip_channels, out_channels, groups, temb, eps=1e-5))
        self.attentions = nn.ModuleList([Transformer2DModel(out_channels, heads, context_dim, groups)
                                         for _ in range(layers)]) if attention else None
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if upsample else None

    def forward(self, x, skips, temb, context):
        for index, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[index](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNetMidBlock2DCrossAttn(nn.Module):
    def __init__(self, channels, temb, groups, heads, context_dim):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, groups, temb, eps=1e-5) for _ in range(2)])
        self.attentions = nn.ModuleList([Transformer2DModel(channels, heads, context_dim, groups)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, context)
        return self.resnets[1](x, temb)


class Timesteps(nn.Module):
    """Sinusoidal timestep features with flip_sin_to_cos=True, downscale_freq_shift=0 (SD 1.x)."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def forward(self, timesteps):
        half = self.channels // 2
        exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half
        arguments = timesteps.to(torch.float32)[:, None] * torch.exp(exponent)[None, :]
        return torch.cat([torch.cos(arguments), torch.sin(arguments)], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, channels, dim):
        super().__init__()
        self.linear_1 = nn.Linear(channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class UNet2DConditionModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        channels = config["block_out_channels"]
        groups = config["norm_num_groups"]
        layers = config["layers_per_block"]
        heads = [c // config["attention_head_dim"] for c in channels]
        context = config["cross_attention_dim"]
        temb = channels[0] * 4
        self.conv_in = nn.Conv2d(config["in_channels"], channels[0], 3, padding=1)
        self.time_proj = Timesteps(channels[0])
        self.time_embedding = TimestepEmbedding(channels[0], temb)
        self.down_blocks = nn.ModuleList()
        previous = channels[0]
        for index, kind in enumerate(config["down_block_types"]):
            self.down_blocks.append(DownBlock(previous, channels[index], temb, layers, groups, heads[index], context,
                                              attention=kind.startswith("CrossAttn"),
                                              downsample=index < len(channels) - 1))
            previous = channels[index]
        self.mid_block = UNetMidBlock2DCrossAttn(channels[-1], temb, groups, heads[-1], context)
        self.up_blocks = nn.ModuleList()
        reversed_channels = list(reversed(channels))
        reversed_heads = list(reversed(heads))
        previous = reversed_channels[0]
        for index, kind in enumerate(config["up_block_types"]):
            out = reversed_channels[index]
            skip_in = reversed_channels[min(index + 1, len(channels) - 1)]
            self.up_blocks.append(UpBlock(skip_in, out, previous, temb, layers + 1, groups, reversed_heads[index],
                                          context, attention=kind.startswith("CrossAttn"),
                                          upsample=index < len(channels) - 1))
            previous = out
        self.conv_norm_out = nn.GroupNorm(groups, channels[0], eps=1e-5)
        self.conv_out = nn.Conv2d(channels[0], config["out_channels"], 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, down_block_additional_residuals=None,
                mid_block_additional_residual=None):
        """The residual arguments are a ControlNet's outputs, added as diffusers' UNet2DConditionModel adds
        them: each to one down-block skip sample (in order), the mid one to the mid block's output."""
        timesteps = timestep.reshape(-1).expand(sample.shape[0]) if timestep.dim() <= 1 else timestep
        temb = self.time_embedding(self.time_proj(timesteps))
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, temb, encoder_hidden_states)
            skips.extend(block_skips)
        if down_block_additional_residuals is not None:
            skips = [skip + residual for skip, residual in zip(skips, down_block_additional_residuals, strict=True)]
        x = self.mid_block(x, temb, encoder_hidden_states)
        if mid_block_additional_residual is not None:
            x = x + mid_block_additional_residual
        for block in self.up_blocks:
            count = len(block.resnets)
            block_skips = skips[-count:]
            del skips[-count:]
            x = block(x, block_skips, temb, encoder_hidden_states)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


# ------------------------------------------------------------------------------------------- ControlNet

class ControlNetConditioningEmbedding(nn.Module):
    """The control image [B,3,H,W] in [0,1] -> a [B,C,H/8,W/8] feature added to the ControlNet's conv_in output:
    a 3x3 conv, then per channel step a 3x3 conv and a stride-2 3x3 conv, SiLU between, and a zero-initialised
    3x3 conv_out (so an untrained ControlNet sees its control image as nothing), as in the ControlNet paper."""

    def __init__(self, out_channels, channels):
        super().__init__()
        self.conv_in = nn.Conv2d(3, channels[0], 3, padding=1)
        self.blocks = nn.ModuleList()
        for index in range(len(channels) - 1):
            self.blocks.append(nn.Conv2d(channels[index], channels[index], 3, padding=1))
            self.blocks.append(nn.Conv2d(channels[index], channels[index + 1], 3, padding=1, stride=2))
        self.conv_out = _zero(nn.Conv2d(channels[-1], out_channels, 3, padding=1))

    def forward(self, conditioning):
        x = F.silu(self.conv_in(conditioning))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)


def _zero(module):
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ControlNetModel(nn.Module):
    """diffusers' ControlNetModel for this UNet: a copy of the UNet's encoder (conv_in, time embedding, down
    blocks, mid block) whose conv_in output gets the conditioning embedding added, and one zero-initialised 1x1
    conv per down-block skip sample (controlnet_down_blocks) and for the mid block (controlnet_mid_block).
    Returns the residuals the UNet adds (down_block_additional_residuals, mid_block_additional_residual), each
    multiplied by conditioning_scale."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        channels = config["block_out_channels"]
        groups = config["norm_num_groups"]
        layers = config["layers_per_block"]
        heads = [c // config["attention_head_dim"] for c in channels]
        context = config["cross_attention_dim"]
        temb = channels[0] * 4
        self.conv_in = nn.Conv2d(config["in_channels"], channels[0], 3, padding=1)
        self.time_proj = Timesteps(channels[0])
        self.time_embedding = TimestepEmbedding(channels[0], temb)
        self.controlnet_cond_embedding = ControlNetConditioningEmbedding(
            channels[0], config["conditioning_embedding_out_channels"])
        self.down_blocks = nn.ModuleList()
        self.controlnet_down_blocks = nn.ModuleList([_zero(nn.Conv2d(channels[0], channels[0], 1))])
        previous = channels[0]
        for index, kind in enumerate(config["down_block_types"]):
            downsample = index < len(channels) - 1
            self.down_blocks.append(DownBlock(previous, channels[index], temb, layers, groups, heads[index], context,
                                              attention=kind.startswith("CrossAttn"), downsample=downsample))
            for _ in range(layers + (1 if downsample else 0)):
                self.controlnet_down_blocks.append(_zero(nn.Conv2d(channels[index], channels[index], 1)))
            previous = channels[index]
        self.mid_block = UNetMidBlock2DCrossAttn(channels[-1], temb, groups, heads[-1], context)
        self.controlnet_mid_block = _zero(nn.Conv2d(channels[-1], channels[-1], 1))

    @classmethod
    def from_unet(cls, unet, conditioning_embedding_out_channels):
        """As diffusers' ControlNetModel.from_unet: the encoder weights copied from the UNet; the conditioning
        embedding (zero conv_out) and the zero convs fresh."""
        controlnet = cls(dict(unet.config, conditioning_embedding_out_channels=conditioning_embedding_out_channels))
        for name in ("conv_in", "time_proj", "time_embedding", "down_blocks", "mid_block"):
            getattr(controlnet, name).load_state_dict(getattr(unet, name).state_dict())
        return controlnet

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        timesteps = timestep.reshape(-1).expand(sample.shape[0]) if timestep.dim() <= 1 else timestep
        temb = self.time_embedding(self.time_proj(timesteps))
        x = self.conv_in(sample) + self.controlnet_cond_embedding(controlnet_cond)
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, temb, encoder_hidden_states)
            skips.extend(block_skips)
        x = self.mid_block(x, temb, encoder_hidden_states)
        down = [zero_conv(skip) * conditioning_scale for zero_conv, skip in zip(self.controlnet_down_blocks, skips)]
        return down, self.controlnet_mid_block(x) * conditioning_scale


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())
