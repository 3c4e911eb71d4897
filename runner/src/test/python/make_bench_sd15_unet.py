"""Exports a full-size SD 1.5 UNet with random weights for bench/runner.sh (run with /usr/bin/python3).

Same architecture as runwayml/stable-diffusion-v1-5's UNet (860M parameters, fp32) built with the fixture
generator's diffusers-compatible UNet (testdata/generator/kiln_sd); latency does not depend on the weights.
Writes ~/.cache/kiln/bench/sd15-unet/model.onnx plus external data files (~3.4 GB), and with --torchscript
also model.pt (the same weights traced, for the libtorch/DJL side of the benchmark); never committed.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "testdata", "generator"))
from kiln_sd.unet import UNet2DConditionModel  # noqa: E402

SD15 = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "upcast_attention": False, "use_linear_projection": False,
}


def main():
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    torchscript = "--torchscript" in sys.argv
    out = os.path.expanduser(arguments[0] if arguments else "~/.cache/kiln/bench/sd15-unet")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = UNet2DConditionModel(SD15).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.5)
    count = sum(p.numel() for p in model.parameters())
    print("parameters:", count, file=sys.stderr)
    inputs = (torch.randn(2, 4, 64, 64), torch.tensor([500, 500], dtype=torch.int64), torch.randn(2, 77, 768))
    if torchscript:
        with torch.no_grad():
            torch.jit.trace(model, inputs).save(os.path.join(out, "model.pt"))
        print("wrote", os.path.join(out, "model.pt"), file=sys.stderr)
        if os.path.exists(os.path.join(out, "model.onnx")):
            return
    with torch.no_grad():
        torch.onnx.export(model, inputs, os.path.join(out, "model.onnx"), opset_version=17,
                          input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                          dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                                        "encoder_hidden_states": {0: "batch"}})
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(SD15, handle, indent=2, sort_keys=True)
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()
