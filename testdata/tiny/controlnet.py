"""Shared pieces of the tiny ControlNet: the frozen tiny-sd components (loaded from the committed TorchScript
archives, so no training work folder is needed), the control images, the continuous-position dataset, and the
export wrappers with diffusers' flattened I/O names.

The control image (diffusers' ControlNet convention, no [-1, 1] normalisation): 64 x 64 RGB, black background,
the shape's filled mask in white at the shape's position, anti-aliased edges as grey levels (the 4x4-supersampled
coverage of scenes.py, rounded to 0..255, the same value in R, G and B). The model input is that image / 255.
"""

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "generator"))

import config  # noqa: E402
import models  # noqa: E402
import scenes  # noqa: E402
from kiln_sd.clip_bpe import ClipBpeTokenizer  # noqa: E402

PIPELINES = os.path.join(HERE, "..", "pipelines")
TINY_ONNX = os.path.join(PIPELINES, "tiny-sd")
TINY_TORCHSCRIPT = os.path.join(PIPELINES, "tiny-sd-torchscript")
WORK = os.path.join(HERE, "work")

# The conditioning embedding's channels: 3 stride-2 steps take the 64x64 control image to the 8x8 latent grid.
CONDITIONING_CHANNELS = [8, 16, 32, 32]
CONTROLNET_TRAINING = {"images": 20000, "captions_per_image": 2, "steps": 4400, "batch": 128,
                       "learning_rate": 1e-3, "final_learning_rate": 2e-5, "warmup_steps": 50,
                       "caption_dropout": 0.3, "position_words": 0.25, "min_snr_gamma": 5.0, "ema_decay": 0.998,
                       "edge_margin": 2.0}
CONTROLNET_SEED = config.SEED + 100


def _state_dict(folder):
    return {k: v.detach().clone() for k, v in torch.jit.load(os.path.join(folder, "model.pt")).state_dict().items()}


def load_tiny():
    """(text_encoder, unet, vae, tokenizer, scaling_factor) of the committed tiny-sd, eval mode, frozen."""
    text_config = json.load(open(os.path.join(TINY_TORCHSCRIPT, "text_encoder", "config.json")))
    text_encoder = models.CLIPTextModel(dict(config.TEXT_ENCODER, vocab_size=text_config["vocab_size"]))
    missing, unexpected = text_encoder.load_state_dict(_state_dict(os.path.join(TINY_TORCHSCRIPT, "text_encoder")),
                                                       strict=False)
    assert not missing and all(k.endswith("position_ids") for k in unexpected), (missing, unexpected)
    unet = models.UNet2DConditionModel(config.UNET)
    unet.load_state_dict(_state_dict(os.path.join(TINY_TORCHSCRIPT, "unet")))
    vae = models.AutoencoderKL(config.VAE)
    vae_state = _state_dict(os.path.join(TINY_TORCHSCRIPT, "vae_encoder"))
    vae_state.update(_state_dict(os.path.join(TINY_TORCHSCRIPT, "vae_decoder")))
    vae.load_state_dict(vae_state)
    for module in (text_encoder, unet, vae):
        module.eval()
        module.requires_grad_(False)
    tokenizer = ClipBpeTokenizer(os.path.join(TINY_ONNX, "tokenizer"))
    scaling_factor = json.load(open(os.path.join(TINY_ONNX, "vae_decoder", "config.json")))["scaling_factor"]
    return text_encoder, unet, vae, tokenizer, scaling_factor


def control_mask(shape, cx, cy, r):
    """uint8 [64, 64]: the shape's coverage, 0 (background) .. 255 (inside)."""
    return np.round(scenes.coverage(shape, cx, cy, r) * 255).astype(np.uint8)


def control_rgb(mask):
    """uint8 [64, 64] mask -> the control image, uint8 [64, 64, 3]."""
    return np.repeat(mask[:, :, None], 3, axis=2)


def control_tensor(masks):
    """uint8 [N, 64, 64] masks -> controlnet_cond float [N, 3, 64, 64] in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None] / 255.0
    return x.expand(-1, 3, -1, -1).contiguous()


def mask_centroid(mask):
    weights = mask.astype(np.float64)
    ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    return float((xs * weights).sum() / weights.sum() + 0.5), float((ys * weights).sum() / weights.sum() + 0.5)


def position_name(cx, cy):
    """The caption grammar's name for a centre, or None where no grid position describes it honestly."""
    dx, dy = cx - 32.0, cy - 32.0
    if abs(dx) < 6 and abs(dy) < 6:
        return "centre"
    if abs(dx) >= 8 and abs(dy) >= 8:
        return ("top" if dy < 0 else "bottom") + " " + ("left" if dx < 0 else "right")
    return None


def honest_caption(attributes, cx, cy, rng, position_words):
    """A caption from scenes.py's grammar. It names the position only when one honestly describes the centre,
    and then only with probability position_words: otherwise the control image alone must place the shape."""
    name = position_name(cx, cy)
    if name is not None and rng.random() < position_words:
        return scenes.caption_for(dict(attributes, position=name), rng)
    text = scenes.caption_for(dict(attributes, position="centre"), rng)
    return text.replace(" in the centre", "").replace(" in the middle", "")


def sample_scene(rng, margin):
    """Attributes with a continuously sampled centre (anywhere the shape stays margin px inside the frame)."""
    colour = list(scenes.COLOURS)[rng.integers(len(scenes.COLOURS))]
    shape = scenes.SHAPES[rng.integers(len(scenes.SHAPES))]
    size = ("small", "medium", "large")[rng.integers(3)]
    background = list(scenes.BACKGROUNDS)[rng.integers(len(scenes.BACKGROUNDS))]
    r = scenes.SIZES[size] * rng.uniform(0.92, 1.08)
    extent = scenes.shape_extent(shape, r)
    low, high = extent + margin, scenes.IMAGE_SIZE - extent - margin
    cx, cy = rng.uniform(low, high), rng.uniform(low, high)
    return {"colour": colour, "shape": shape, "size": size, "background": background}, cx, cy, r


def render_at(attributes, cx, cy, r, rng):
    """As scenes.render, at a given centre and radius: RGB uint8 [64, 64, 3] and the control mask."""
    alpha = scenes.coverage(attributes["shape"], cx, cy, r)
    foreground = np.clip(np.array(scenes.COLOURS[attributes["colour"]]) + rng.integers(-12, 13, size=3), 0, 255)
    background = np.clip(np.array(scenes.BACKGROUNDS[attributes["background"]]) + rng.integers(-8, 9, size=3), 0, 255)
    image = alpha[:, :, None] * foreground[None, None, :] + (1 - alpha[:, :, None]) * background[None, None, :]
    return np.round(image).astype(np.uint8), np.round(alpha * 255).astype(np.uint8)


def make_dataset(count, captions_per_image, seed, settings):
    rng = np.random.default_rng(seed)
    images = np.empty((count, 64, 64, 3), dtype=np.uint8)
    masks = np.empty((count, 64, 64), dtype=np.uint8)
    captions = []
    for index in range(count):
        attributes, cx, cy, r = sample_scene(rng, settings["edge_margin"])
        images[index], masks[index] = render_at(attributes, cx, cy, r, rng)
        captions.append([honest_caption(attributes, cx, cy, rng, settings["position_words"])
                         for _ in range(captions_per_image)])
    return images, masks, captions


# ----------------------------------------------------------------------------------------------- export

class ControlNetExport(models.ControlNetModel):
    """Flat outputs (down_block_res_samples_0..N-1, mid_block_res_sample) for ONNX and TorchScript."""

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        down, mid = super().forward(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale)
        return (*down, mid)


class UNetWithResidualsExport(models.UNet2DConditionModel):
    """The UNet with flat residual inputs (down_block_additional_residuals_0..N-1, mid_block_additional_residual)."""

    def forward(self, sample, timestep, encoder_hidden_states, *residuals):
        return super().forward(sample, timestep, encoder_hidden_states, list(residuals[:-1]), residuals[-1])


def residual_count(unet_config):
    blocks = len(unet_config["block_out_channels"])
    return 1 + unet_config["layers_per_block"] * blocks + (blocks - 1)


def residual_shapes(unet_config, batch, height, width):
    """[(channels, h, w)] of the down residuals at a latent size, then the mid one."""
    channels = unet_config["block_out_channels"]
    shapes = [(channels[0], height, width)]
    h, w = height, width
    for index, c in enumerate(channels):
        shapes.extend([(c, h, w)] * unet_config["layers_per_block"])
        if index < len(channels) - 1:
            h, w = (h + 1) // 2, (w + 1) // 2
            shapes.append((c, h, w))
    return [(batch,) + s for s in shapes], (batch, channels[-1], h, w)
