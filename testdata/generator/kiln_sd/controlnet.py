"""ControlNetModel after diffusers (SD 1.x), and the UNet that takes its residuals, with diffusers' module names.

The ControlNet is a copy of the UNet's encoder half (conv_in, time embedding, down blocks, mid block) plus:
  - controlnet_cond_embedding: conv_in → (conv, strided conv) per stage with SiLU → conv_out, bringing the
    [B, 3, 8h, 8w] control image to the latent size and channel count, added to conv_in's output;
  - controlnet_down_blocks / controlnet_mid_block: 1x1 "zero" convolutions on every down-block residual and on the
    mid block's output (zero-initialised in diffusers; random here so that every path shows in the outputs);
  - conditioning_scale multiplies every output.
The residual UNet adds them to its skip connections and mid-block output exactly as diffusers'
UNet2DConditionModel does with down_block_additional_residuals / mid_block_additional_residual.
"""

import torch
from torch import nn

from kiln_sd.unet import (CrossAttnDownBlock2D, DownBlock2D, TimestepEmbedding, Timesteps, UNet2DConditionModel,
                          UNetMidBlock2DCrossAttn, _per_block)


class ControlNetConditioningEmbedding(nn.Module):
    def __init__(self, conditioning_embedding_channels, conditioning_channels, block_out_channels):
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for index in range(len(block_out_channels) - 1):
            channel_in = block_out_channels[index]
            channel_out = block_out_channels[index + 1]
            self.blocks.append(nn.Conv2d(channel_in, channel_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(channel_in, channel_out, kernel_size=3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(block_out_channels[-1], conditioning_embedding_channels, kernel_size=3, padding=1)

    def forward(self, conditioning):
        embedding = self.conv_in(conditioning)
        embedding = torch.nn.functional.silu(embedding)
        for block in self.blocks:
            embedding = block(embedding)
            embedding = torch.nn.functional.silu(embedding)
        return self.conv_out(embedding)


class ControlNetModel(nn.Module):
    """forward(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale) →
    (down_block_res_samples_0, ..., down_block_res_samples_{N-1}, mid_block_res_sample)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        channels = config["block_out_channels"]
        count = len(channels)
        heads = _per_block(config["attention_head_dim"], count)
        transformer_layers = _per_block(config.get("transformer_layers_per_block", 1), count)
        layers = config["layers_per_block"]
        time_embed_dim = channels[0] * 4

        self.conv_in = nn.Conv2d(config["in_channels"], channels[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(channels[0], config["flip_sin_to_cos"], config["freq_shift"])
        self.time_embedding = TimestepEmbedding(channels[0], time_embed_dim)
        self.controlnet_cond_embedding = ControlNetConditioningEmbedding(
            channels[0], config["conditioning_channels"], config["conditioning_embedding_out_channels"])

        self.down_blocks = nn.ModuleList()
        self.controlnet_down_blocks = nn.ModuleList([nn.Conv2d(channels[0], channels[0], kernel_size=1)])
        output_channel = channels[0]
        for index, block_type in enumerate(config["down_block_types"]):
            input_channel = output_channel
            output_channel = channels[index]
            is_final_block = index == count - 1
            if block_type == "CrossAttnDownBlock2D":
                block = CrossAttnDownBlock2D(config, layers, input_channel, output_channel, time_embed_dim,
                                             heads[index], transformer_layers[index], not is_final_block)
            elif block_type == "DownBlock2D":
                block = DownBlock2D(config, layers, input_channel, output_channel, time_embed_dim, not is_final_block)
            else:
                raise ValueError("unknown down block " + block_type)
            self.down_blocks.append(block)
            for _ in range(layers + (0 if is_final_block else 1)):
                self.controlnet_down_blocks.append(nn.Conv2d(output_channel, output_channel, kernel_size=1))

        self.controlnet_mid_block = nn.Conv2d(channels[-1], channels[-1], kernel_size=1)
        self.mid_block = UNetMidBlock2DCrossAttn(config, channels[-1], time_embed_dim, heads[-1],
                                                 transformer_layers[-1])

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        # 1. time, broadcast to the batch as the UNet does
        timesteps = timestep
        if len(timesteps.shape) == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = self.time_proj(timesteps)
        t_emb = t_emb.to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb)

        # 2. pre-process: the control image joins after conv_in
        sample = self.conv_in(sample)
        controlnet_cond = self.controlnet_cond_embedding(controlnet_cond)
        sample = sample + controlnet_cond

        # 3. down
        down_block_res_samples = (sample,)
        for downsample_block in self.down_blocks:
            if downsample_block.has_cross_attention:
                sample, res_samples = downsample_block(sample, emb, encoder_hidden_states)
            else:
                sample, res_samples = downsample_block(sample, emb)
            down_block_res_samples += res_samples

        # 4. mid
        sample = self.mid_block(sample, emb, encoder_hidden_states)

        # 5. the zero convolutions, then the scale
        controlnet_down_block_res_samples = ()
        for down_block_res_sample, controlnet_block in zip(down_block_res_samples, self.controlnet_down_blocks):
            controlnet_down_block_res_samples += (controlnet_block(down_block_res_sample),)
        mid_block_res_sample = self.controlnet_mid_block(sample)
        outputs = tuple(residual * conditioning_scale for residual in controlnet_down_block_res_samples)
        return outputs + (mid_block_res_sample * conditioning_scale,)


class UNet2DConditionModelWithResiduals(UNet2DConditionModel):
    """The same UNet (same weights for the same seed) with ControlNet residual inputs:
    forward(sample, timestep, encoder_hidden_states, down_block_additional_residuals_0, ...,
    down_block_additional_residuals_{N-1}, mid_block_additional_residual)."""

    def forward(self, sample, timestep, encoder_hidden_states, *residuals):
        down_block_additional_residuals = residuals[:-1]
        mid_block_additional_residual = residuals[-1]
        default_overall_up_factor = 2 ** self.num_upsamplers
        forward_upsample_size = any(size % default_overall_up_factor != 0 for size in sample.shape[-2:])
        upsample_size = None

        timesteps = timestep
        if len(timesteps.shape) == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = self.time_proj(timesteps)
        t_emb = t_emb.to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb)

        sample = self.conv_in(sample)

        down_block_res_samples = (sample,)
        for downsample_block in self.down_blocks:
            if downsample_block.has_cross_attention:
                sample, res_samples = downsample_block(sample, emb, encoder_hidden_states)
            else:
                sample, res_samples = downsample_block(sample, emb)
            down_block_res_samples += res_samples

        # diffusers: each skip sample gets its ControlNet residual before the up blocks read it
        if len(down_block_additional_residuals) != len(down_block_res_samples):
            raise ValueError("%d down residuals for %d skip samples"
                             % (len(down_block_additional_residuals), len(down_block_res_samples)))
        new_down_block_res_samples = ()
        for down_block_res_sample, down_block_additional_residual in zip(down_block_res_samples,
                                                                         down_block_additional_residuals):
            new_down_block_res_samples += (down_block_res_sample + down_block_additional_residual,)
        down_block_res_samples = new_down_block_res_samples

        sample = self.mid_block(sample, emb, encoder_hidden_states)
        sample = sample + mid_block_additional_residual

        for index, upsample_block in enumerate(self.up_blocks):
            is_final_block = index == len(self.up_blocks) - 1
            res_samples = down_block_res_samples[-len(upsample_block.resnets):]
            down_block_res_samples = down_block_res_samples[:-len(upsample_block.resnets)]
            if not is_final_block and forward_upsample_size:
                upsample_size = down_block_res_samples[-1].shape[2:]
            if upsample_block.has_cross_attention:
                sample = upsample_block(sample, res_samples, emb, encoder_hidden_states, upsample_size)
            else:
                sample = upsample_block(sample, res_samples, emb, upsample_size)

        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        sample = self.conv_out(sample)
        return (sample,)


def residual_count(config):
    """N: conv_in's output, one per resnet, one per downsampler (diffusers' down_block_res_samples)."""
    blocks = len(config["block_out_channels"])
    return 1 + config["layers_per_block"] * blocks + (blocks - 1)


def residual_shapes(config, batch, height, width):
    """The [B, C, h, w] of each down residual and of the mid residual for a latent of height × width."""
    channels = config["block_out_channels"]
    shapes = [(batch, channels[0], height, width)]
    for index, channel in enumerate(channels):
        shapes += [(batch, channel, height, width)] * config["layers_per_block"]
        if index < len(channels) - 1:
            height, width = (height + 1) // 2, (width + 1) // 2
            shapes.append((batch, channel, height, width))
    return shapes, (batch, channels[-1], height, width)
