"""The fixture components: configurations (diffusers/transformers config.json keys), weight initialisation,
and the deterministic reference inputs of each component's two test data sets."""

import torch
from torch import nn

from kiln_sd.blocks import AttentionBlock, CrossAttention
from kiln_sd.clip import CLIPAttention, CLIPTextModel, CLIPTextModelWithProjection
from kiln_sd.unet import UNet2DConditionModel
from kiln_sd.vae import VaeDecoderModel, VaeEncoderModel

SEED = 20260101

# CLIP ViT-L/14 as in SD 1.x (and SDXL's first encoder): quick_gelu, 12 layers in the real model.
CLIP_TEXT = {
    "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_size": 32,
    "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 3, "max_position_embeddings": 77,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": None, "eos_token_id": None,
    "pad_token_id": 1, "projection_dim": 32, "torch_dtype": "float32",
}
# OpenCLIP ViT-H as in SD 2.x: exact gelu, wider.
SD2_CLIP_TEXT = dict(CLIP_TEXT, hidden_size=48, intermediate_size=192, hidden_act="gelu", projection_dim=48)
# OpenCLIP ViT-bigG as SDXL's second encoder: gelu, with the text projection of the pooled output.
SDXL_CLIP_TEXT_2 = dict(SD2_CLIP_TEXT, architectures=["CLIPTextModelWithProjection"], projection_dim=48)

_UNET_COMMON = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "center_input_sample": False,
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "out_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-5, "norm_num_groups": 8,
    "block_out_channels": [16, 32, 32], "upcast_attention": False, "use_linear_projection": False,
}
UNET_SD15 = dict(_UNET_COMMON, sample_size=64, attention_head_dim=2, cross_attention_dim=32,
                 down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
# SD 2.x: per-block head counts with a constant head width (here 8, in the real model 64), linear projections.
UNET_SD2 = dict(UNET_SD15, sample_size=96, attention_head_dim=[2, 4, 4], cross_attention_dim=48,
                use_linear_projection=True, upcast_attention=True)
# SDXL: no attention at the highest resolution, deeper transformers lower down, text_time added embedding.
UNET_SDXL = dict(_UNET_COMMON, sample_size=128, attention_head_dim=[2, 4, 4], cross_attention_dim=80,
                 transformer_layers_per_block=[1, 1, 2], use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=48 + 6 * 8,
                 down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                 up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"])

VAE = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [16, 32, 32, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 8,
    "sample_size": 512, "scaling_factor": 0.18215,
}

# The torch-2 (SDPA) export form of the same architectures: narrower and one layer per block, so the four extra
# fixtures cost about as much as one torch-1 UNet; every attention kind (self, cross, per-block heads, SDXL's
# deeper transformers, the VAE's single head) is still there.
_SDPA_NARROW = {"block_out_channels": [8, 16, 16], "norm_num_groups": 4, "layers_per_block": 1}
UNET_SD15_SDPA = dict(UNET_SD15, **_SDPA_NARROW)
UNET_SD2_SDPA = dict(UNET_SD2, **_SDPA_NARROW)
UNET_SDXL_SDPA = dict(UNET_SDXL, **_SDPA_NARROW)
VAE_SDPA = dict(VAE, block_out_channels=[8, 16, 16, 16], norm_num_groups=4, layers_per_block=1)

QUERY_KEY_GAIN = 2.0
"""q/k projections are drawn wider than fan-in scaling so that attention is peaked, not uniform: a fusion that
gets the scale or the head split wrong then changes the output measurably."""


def initialize(model, seed):
    """Fan-in scaled normal weights, random biases, and norm affines away from 1/0, so that a rewrite that
    drops a bias or a gamma is visible in the outputs."""
    generator = torch.Generator().manual_seed(seed)

    def normal(tensor, std):
        with torch.no_grad():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

    query_key = set()
    for module in model.modules():
        if isinstance(module, CrossAttention):
            query_key.update([id(module.to_q), id(module.to_k)])
        elif isinstance(module, CLIPAttention):
            query_key.update([id(module.q_proj), id(module.k_proj)])
        elif isinstance(module, AttentionBlock):
            query_key.update([id(module.query), id(module.key)])
    for _, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            gain = QUERY_KEY_GAIN if id(module) in query_key else 1.0
            normal(module.weight, gain / fan_in ** 0.5)
            if module.bias is not None:
                normal(module.bias, 0.1)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
            normal(module.weight, 0.1)
            with torch.no_grad():
                module.weight.add_(1.0)
            normal(module.bias, 0.1)
        elif isinstance(module, nn.Embedding):
            normal(module.weight, 0.5)
    return model


def build_vae(kind, seed, config=VAE):
    """One AutoencoderKL's weights; the decoder and encoder components are its two halves."""
    model_class = VaeDecoderModel if kind == "decoder" else VaeEncoderModel
    model = initialize(model_class(config), seed)
    if kind == "decoder":
        model.encoder = None
        model.quant_conv = None
    else:
        model.decoder = None
        model.post_quant_conv = None
    return model.eval()


def build_text(config, seed, vocab_size):
    config = dict(config, vocab_size=vocab_size, eos_token_id=vocab_size - 1, bos_token_id=vocab_size - 2)
    model_class = CLIPTextModelWithProjection if "projection" in config["architectures"][0].lower() else CLIPTextModel
    return initialize(model_class(config), seed).eval()


def build_unet(config, seed):
    return initialize(UNet2DConditionModel(config), seed).eval()


# diffusers' ControlNetModel for SD 1.5, at the UNet fixture's widths: its encoder half plus the conditioning
# embedding (SD 1.5: [16, 32, 96, 256]; three stride-2 stages from the image to the latent size).
CONTROLNET_SD15 = {key: value for key, value in UNET_SD15.items() if key not in ("out_channels", "up_block_types")}
CONTROLNET_SD15.update({"_class_name": "ControlNetModel", "conditioning_channels": 3,
                        "conditioning_embedding_out_channels": [8, 16, 16, 32],
                        "controlnet_conditioning_channel_order": "rgb", "class_embed_type": None,
                        "global_pool_conditions": False, "only_cross_attention": False})


def build_controlnet(config, seed):
    # Imported here: kiln_sd.controlnet imports kiln_sd.unet, and generate.py's module list stays as it was.
    from kiln_sd.controlnet import ControlNetModel
    return initialize(ControlNetModel(config), seed).eval()


def build_unet_with_residuals(config, seed):
    """The same initialisation as build_unet with the same seed, so zero residuals give that UNet exactly."""
    from kiln_sd.controlnet import UNet2DConditionModelWithResiduals
    return initialize(UNet2DConditionModelWithResiduals(config), seed).eval()
