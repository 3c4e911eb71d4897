"""UNet2DConditionModel after diffusers (SD 1.x, SD 2.x and SDXL configurations), with diffusers' module names."""

import math

import torch
from torch import nn

from kiln_sd.blocks import Downsample2D, ResnetBlock2D, Transformer2DModel, Upsample2D


def get_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos, downscale_freq_shift, max_period=10000):
    half_dim = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(start=0, end=half_dim, dtype=torch.float32)
    exponent = exponent / (half_dim - downscale_freq_shift)
    emb = torch.exp(exponent)
    emb = timesteps[:, None].float() * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half_dim:], emb[:, :half_dim]], dim=-1)
    return emb


class Timesteps(nn.Module):
    def __init__(self, num_channels, flip_sin_to_cos, downscale_freq_shift):
        super().__init__()
        self.num_channels = num_channels
        self.flip_sin_to_cos = flip_sin_to_cos
        self.downscale_freq_shift = downscale_freq_shift

    def forward(self, timesteps):
        return get_timestep_embedding(timesteps, self.num_channels, self.flip_sin_to_cos, self.downscale_freq_shift)


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels, time_embed_dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)

    def forward(self, sample):
        return self.linear_2(self.act(self.linear_1(sample)))


class CrossAttnDownBlock2D(nn.Module):
    has_cross_attention = True

    def __init__(self, config, num_layers, in_channels, out_channels, temb_channels, heads, transformer_layers,
                 add_downsample):
        super().__init__()
        groups = config["norm_num_groups"]
        self.resnets = nn.ModuleList()
        self.attentions = nn.ModuleList()
        for index in range(num_layers):
            self.resnets.append(ResnetBlock2D(in_channels if index == 0 else out_channels, out_channels,
                                              temb_channels, groups, config["norm_eps"]))
            self.attentions.append(Transformer2DModel(
                heads, out_channels // heads, out_channels, transformer_layers, config["cross_attention_dim"],
                groups, config["use_linear_projection"], config["upcast_attention"]))
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, padding=1)]) if add_downsample else None

    def forward(self, hidden_states, temb, encoder_hidden_states):
        output_states = ()
        for resnet, attention in zip(self.resnets, self.attentions):
            hidden_states = resnet(hidden_states, temb)
            hidden_states = attention(hidden_states, encoder_hidden_states)
            output_states += (hidden_states,)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                hidden_states = downsampler(hidden_states)
            output_states += (hidden_states,)
        return hidden_states, output_states


class DownBlock2D(nn.Module):
    has_cross_attention = False

    def __init__(self, config, num_layers, in_channels, out_channels, temb_channels, add_downsample):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels if index == 0 else out_channels, out_channels, temb_channels,
                          config["norm_num_groups"], config["norm_eps"])
            for index in range(num_layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, padding=1)]) if add_downsample else None

    def forward(self, hidden_states, temb):
        output_states = ()
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, temb)
            output_states += (hidden_states,)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                hidden_states = downsampler(hidden_states)
            output_states += (hidden_states,)
        return hidden_states, output_states


class CrossAttnUpBlock2D(nn.Module):
    has_cross_attention = True

    def __init__(self, config, num_layers, in_channels, out_channels, prev_output_channel, temb_channels, heads,
                 transformer_layers, add_upsample):
        super().__init__()
        groups = config["norm_num_groups"]
        self.resnets = nn.ModuleList()
        self.attentions = nn.ModuleList()
        for index in range(num_layers):
            res_skip_channels = in_channels if index == num_layers - 1 else out_channels
            resnet_in_channels = prev_output_channel if index == 0 else out_channels
            self.resnets.append(ResnetBlock2D(resnet_in_channels + res_skip_channels, out_channels, temb_channels,
                                              groups, config["norm_eps"]))
            self.attentions.append(Transformer2DModel(
                heads, out_channels // heads, out_channels, transformer_layers, config["cross_attention_dim"],
                groups, config["use_linear_projection"], config["upcast_attention"]))
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if add_upsample else None

    def forward(self, hidden_states, res_hidden_states_tuple, temb, encoder_hidden_states, upsample_size=None):
        for resnet, attention in zip(self.resnets, self.attentions):
            res_hidden_states = res_hidden_states_tuple[-1]
            res_hidden_states_tuple = res_hidden_states_tuple[:-1]
            hidden_states = torch.cat([hidden_states, res_hidden_states], dim=1)
            hidden_states = resnet(hidden_states, temb)
            hidden_states = attention(hidden_states, encoder_hidden_states)
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                hidden_states = upsampler(hidden_states, upsample_size)
        return hidden_states


class UpBlock2D(nn.Module):
    has_cross_attention = False

    def __init__(self, config, num_layers, in_channels, out_channels, prev_output_channel, temb_channels,
                 add_upsample):
        super().__init__()
        self.resnets = nn.ModuleList()
        for index in range(num_layers):
            res_skip_channels = in_channels if index == num_layers - 1 else out_channels
            resnet_in_channels = prev_output_channel if index == 0 else out_channels
            self.resnets.append(ResnetBlock2D(resnet_in_channels + res_skip_channels, out_channels, temb_channels,
                                              config["norm_num_groups"], config["norm_eps"]))
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if add_upsample else None

    def forward(self, hidden_states, res_hidden_states_tuple, temb, upsample_size=None):
        for resnet in self.resnets:
            res_hidden_states = res_hidden_states_tuple[-1]
            res_hidden_states_tuple = res_hidden_states_tuple[:-1]
            hidden_states = torch.cat([hidden_states, res_hidden_states], dim=1)
            hidden_states = resnet(hidden_states, temb)
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                hidden_states = upsampler(hidden_states, upsample_size)
        return hidden_states


class UNetMidBlock2DCrossAttn(nn.Module):
    def __init__(self, config, in_channels, temb_channels, heads, transformer_layers):
        super().__init__()
        groups = config["norm_num_groups"]
        self.attentions = nn.ModuleList([Transformer2DModel(
            heads, in_channels // heads, in_channels, transformer_layers, config["cross_attention_dim"], groups,
            config["use_linear_projection"], config["upcast_attention"])])
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels, in_channels, temb_channels, groups, config["norm_eps"]) for _ in range(2)])

    def forward(self, hidden_states, temb, encoder_hidden_states):
        hidden_states = self.resnets[0](hidden_states, temb)
        for attention, resnet in zip(self.attentions, self.resnets[1:]):
            hidden_states = attention(hidden_states, encoder_hidden_states)
            hidden_states = resnet(hidden_states, temb)
        return hidden_states


def _per_block(value, count):
    return list(value) if isinstance(value, (list, tuple)) else [value] * count


class UNet2DConditionModel(nn.Module):
    """`config` uses diffusers' config.json keys. In diffusers (and so here) `attention_head_dim` is the number of
    heads per block, a long-standing misnomer: SD 1.5 uses 8 everywhere, SD 2.x [5,10,20,20] (64-wide heads)."""

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
        self.addition_embed_type = config.get("addition_embed_type")
        if self.addition_embed_type == "text_time":
            self.add_time_proj = Timesteps(config["addition_time_embed_dim"], True, 0)
            self.add_embedding = TimestepEmbedding(config["projection_class_embeddings_input_dim"], time_embed_dim)

        self.down_blocks = nn.ModuleList()
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

        self.mid_block = UNetMidBlock2DCrossAttn(config, channels[-1], time_embed_dim, heads[-1],
                                                 transformer_layers[-1])

        self.num_upsamplers = 0
        self.up_blocks = nn.ModuleList()
        reversed_channels = list(reversed(channels))
        reversed_heads = list(reversed(heads))
        reversed_layers = list(reversed(transformer_layers))
        output_channel = reversed_channels[0]
        for index, block_type in enumerate(config["up_block_types"]):
            is_final_block = index == count - 1
            prev_output_channel = output_channel
            output_channel = reversed_channels[index]
            input_channel = reversed_channels[min(index + 1, count - 1)]
            if not is_final_block:
                self.num_upsamplers += 1
            if block_type == "CrossAttnUpBlock2D":
                block = CrossAttnUpBlock2D(config, layers + 1, input_channel, output_channel, prev_output_channel,
                                           time_embed_dim, reversed_heads[index], reversed_layers[index],
                                           not is_final_block)
            elif block_type == "UpBlock2D":
                block = UpBlock2D(config, layers + 1, input_channel, output_channel, prev_output_channel,
                                  time_embed_dim, not is_final_block)
            else:
                raise ValueError("unknown up block " + block_type)
            self.up_blocks.append(block)

        self.conv_norm_out = nn.GroupNorm(num_channels=channels[0], num_groups=config["norm_num_groups"],
                                          eps=config["norm_eps"])
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[0], config["out_channels"], kernel_size=3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds=None, time_ids=None):
        default_overall_up_factor = 2 ** self.num_upsamplers
        forward_upsample_size = any(size % default_overall_up_factor != 0 for size in sample.shape[-2:])
        upsample_size = None

        # 1. time — broadcast to the batch in a way ONNX can express (a [1] timestep with a batch of 2 works)
        timesteps = timestep
        if len(timesteps.shape) == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = self.time_proj(timesteps)
        t_emb = t_emb.to(dtype=sample.dtype)
        emb = self.time_embedding(t_emb)
        if self.addition_embed_type == "text_time":
            time_embeds = self.add_time_proj(time_ids.flatten())
            time_embeds = time_embeds.reshape((text_embeds.shape[0], -1))
            add_embeds = torch.concat([text_embeds, time_embeds], dim=-1)
            add_embeds = add_embeds.to(emb.dtype)
            emb = emb + self.add_embedding(add_embeds)

        # 2. pre-process
        sample = self.conv_in(sample)

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

        # 5. up
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

        # 6. post-process
        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        sample = self.conv_out(sample)
        return (sample,)
