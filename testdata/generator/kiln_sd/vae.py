"""AutoencoderKL after diffusers: Encoder/Decoder with mid-block attention, quant_conv/post_quant_conv.

The exported components keep the whole autoencoder as the root module (as Optimum does), so node scopes read
`/decoder/up_blocks.0/resnets.1/...` and `/encoder/mid_block/attentions.0/...`.
"""

from torch import nn

from kiln_sd.blocks import AttentionBlock, Downsample2D, ResnetBlock2D, Upsample2D


class UNetMidBlock2D(nn.Module):
    def __init__(self, channels, groups, eps):
        super().__init__()
        self.attentions = nn.ModuleList([AttentionBlock(channels, groups, eps)])
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, None, groups, eps) for _ in range(2)])

    def forward(self, hidden_states):
        hidden_states = self.resnets[0](hidden_states, None)
        for attention, resnet in zip(self.attentions, self.resnets[1:]):
            hidden_states = attention(hidden_states)
            hidden_states = resnet(hidden_states, None)
        return hidden_states


class DownEncoderBlock2D(nn.Module):
    def __init__(self, num_layers, in_channels, out_channels, groups, eps, add_downsample):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels if index == 0 else out_channels, out_channels, None, groups, eps)
            for index in range(num_layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, padding=0)]) if add_downsample else None

    def forward(self, hidden_states):
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, None)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                hidden_states = downsampler(hidden_states)
        return hidden_states


class UpDecoderBlock2D(nn.Module):
    def __init__(self, num_layers, in_channels, out_channels, groups, eps, add_upsample):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels if index == 0 else out_channels, out_channels, None, groups, eps)
            for index in range(num_layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)]) if add_upsample else None

    def forward(self, hidden_states):
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, None)
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                hidden_states = upsampler(hidden_states)
        return hidden_states


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        channels = config["block_out_channels"]
        groups = config["norm_num_groups"]
        self.conv_in = nn.Conv2d(config["in_channels"], channels[0], kernel_size=3, stride=1, padding=1)
        self.down_blocks = nn.ModuleList()
        output_channel = channels[0]
        for index in range(len(channels)):
            input_channel = output_channel
            output_channel = channels[index]
            self.down_blocks.append(DownEncoderBlock2D(config["layers_per_block"], input_channel, output_channel,
                                                       groups, 1e-6, index != len(channels) - 1))
        self.mid_block = UNetMidBlock2D(channels[-1], groups, 1e-6)
        self.conv_norm_out = nn.GroupNorm(num_channels=channels[-1], num_groups=groups, eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[-1], 2 * config["latent_channels"], 3, padding=1)

    def forward(self, sample):
        sample = self.conv_in(sample)
        for down_block in self.down_blocks:
            sample = down_block(sample)
        sample = self.mid_block(sample)
        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        return self.conv_out(sample)


class Decoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        channels = config["block_out_channels"]
        groups = config["norm_num_groups"]
        self.conv_in = nn.Conv2d(config["latent_channels"], channels[-1], kernel_size=3, stride=1, padding=1)
        self.mid_block = UNetMidBlock2D(channels[-1], groups, 1e-6)
        self.up_blocks = nn.ModuleList()
        reversed_channels = list(reversed(channels))
        output_channel = reversed_channels[0]
        for index in range(len(channels)):
            prev_output_channel = output_channel
            output_channel = reversed_channels[index]
            self.up_blocks.append(UpDecoderBlock2D(config["layers_per_block"] + 1, prev_output_channel,
                                                   output_channel, groups, 1e-6, index != len(channels) - 1))
        self.conv_norm_out = nn.GroupNorm(num_channels=channels[0], num_groups=groups, eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[0], config["out_channels"], 3, padding=1)

    def forward(self, z):
        sample = self.conv_in(z)
        sample = self.mid_block(sample)
        for up_block in self.up_blocks:
            sample = up_block(sample)
        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        return self.conv_out(sample)


class AutoencoderKL(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        latent = config["latent_channels"]
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1)
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)

    def encode(self, sample):
        """Returns the latent distribution's parameters: mean and log-variance concatenated on channels."""
        return self.quant_conv(self.encoder(sample))

    def decode(self, latent_sample):
        return self.decoder(self.post_quant_conv(latent_sample))


class VaeEncoderModel(AutoencoderKL):
    """`sample` → `latent_parameters`, the export Optimum does for vae_encoder."""

    def forward(self, sample):
        return (self.encode(sample),)


class VaeDecoderModel(AutoencoderKL):
    """`latent_sample` → `sample`, the export Optimum does for vae_decoder."""

    def forward(self, latent_sample):
        return (self.decode(latent_sample),)
