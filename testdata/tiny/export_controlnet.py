"""Exports the tiny ControlNet pipeline: the trained ControlNet plus the tiny-sd UNet with diffusers' residual
inputs, in the diffusers/Optimum ONNX layout and as TorchScript; the other components are tiny-sd's own files
(linked).

    /usr/bin/python3 testdata/tiny/export_controlnet.py                 # trained (work/controlnet.pt)
    /usr/bin/python3 testdata/tiny/export_controlnet.py --untrained --out DIR   # from_unet weights, zero convs

Writes testdata/pipelines/tiny-sd-controlnet/ (ONNX opset 17, dynamic axes) and
testdata/pipelines/tiny-sd-controlnet-torchscript/ (torch.jit.trace'd model.pt; the unchanged tiny-sd components
are relative links to tiny-sd's files), I/O names as in
the ControlNet contract shared with the runner and tools (diffusers names):
  controlnet: sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale ->
              down_block_res_samples_0..3, mid_block_res_sample
  unet:       sample, timestep, encoder_hidden_states, down_block_additional_residuals_0..3,
              mid_block_additional_residual -> out_sample
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import config  # noqa: E402
import controlnet  # noqa: E402
import export  # noqa: E402
import models  # noqa: E402

ONNX_DIR = os.path.join(controlnet.PIPELINES, "tiny-sd-controlnet")
TORCHSCRIPT_DIR = os.path.join(controlnet.PIPELINES, "tiny-sd-controlnet-torchscript")
COPIED = ("text_encoder", "vae_decoder", "vae_encoder", "tokenizer", "scheduler")


class UNetExport(models.UNet2DConditionModel):
    """Named residual inputs (TorchScript keeps the argument names; a *args signature would lose them)."""

    def forward(self, sample, timestep, encoder_hidden_states, down_block_additional_residuals_0,
                down_block_additional_residuals_1, down_block_additional_residuals_2,
                down_block_additional_residuals_3, mid_block_additional_residual):
        residuals = [down_block_additional_residuals_0, down_block_additional_residuals_1,
                     down_block_additional_residuals_2, down_block_additional_residuals_3]
        return super().forward(sample, timestep, encoder_hidden_states, residuals, mid_block_additional_residual)


def link_or_copy(source, destination):
    """tiny-sd's unchanged component files: relative links inside testdata/pipelines (as the generated pipelines
    link to testdata/fixtures: no second copy of the bytes in the repository), copies elsewhere."""
    inside = os.path.abspath(destination).startswith(os.path.abspath(controlnet.PIPELINES) + os.sep)
    if not inside:
        shutil.copytree(source, destination)
        return
    os.makedirs(destination)
    for name in sorted(os.listdir(source)):
        os.symlink(os.path.relpath(os.path.join(source, name), destination), os.path.join(destination, name))


def controlnet_config(conditioning_channels):
    u = config.UNET
    return {"_class_name": "ControlNetModel", "_diffusers_version": export.DIFFUSERS_VERSION, "act_fn": "silu",
            "attention_head_dim": [c // u["attention_head_dim"] for c in u["block_out_channels"]],
            "block_out_channels": u["block_out_channels"], "class_embed_type": None, "conditioning_channels": 3,
            "conditioning_embedding_out_channels": conditioning_channels,
            "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": u["cross_attention_dim"],
            "down_block_types": u["down_block_types"], "downsample_padding": 1, "flip_sin_to_cos": True,
            "freq_shift": 0, "global_pool_conditions": False, "in_channels": u["in_channels"],
            "layers_per_block": u["layers_per_block"], "mid_block_scale_factor": 1, "norm_eps": 1e-05,
            "norm_num_groups": u["norm_num_groups"], "num_class_embeds": None, "only_cross_attention": False,
            "projection_class_embeddings_input_dim": None, "resnet_time_scale_shift": "default",
            "upcast_attention": False, "use_linear_projection": False}


def model_index(source):
    index = json.load(open(os.path.join(source, "model_index.json")))
    index["_class_name"] = "OnnxStableDiffusionControlNetPipeline"
    index["controlnet"] = ["onnxruntime", "OnnxRuntimeModel"]
    return index


def examples(batch=2, height=8, width=8):
    down_shapes, mid_shape = controlnet.residual_shapes(config.UNET, batch, height, width)
    torch.manual_seed(0)
    sample = torch.randn(batch, 4, height, width)
    timestep = torch.tensor([951], dtype=torch.int64)
    context = torch.randn(batch, 77, config.UNET["cross_attention_dim"])
    cond = torch.rand(batch, 3, 8 * height, 8 * width)
    residuals = [torch.randn(*s) * 0.1 for s in down_shapes] + [torch.randn(*mid_shape) * 0.1]
    return sample, timestep, context, cond, residuals


def export_folder(model, unet, onnx_dir, torchscript_dir):
    """Writes both folders (component files for controlnet/ and unet/, the rest copied from tiny-sd)."""
    count = controlnet.residual_count(config.UNET)
    assert count == 4, "UNetExport names four down residuals"
    down_names = ["down_block_res_samples_%d" % i for i in range(count)]
    residual_names = ["down_block_additional_residuals_%d" % i for i in range(count)]
    sample, timestep, context, cond, residuals = examples()
    spatial = {0: "batch_size", 2: "height", 3: "width"}
    controlnet_axes = {"sample": spatial, "timestep": {0: "steps"},
                       "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
                       "controlnet_cond": {0: "batch_size", 2: "image_height", 3: "image_width"}}
    unet_axes = {"sample": spatial, "timestep": {0: "steps"},
                 "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"}, "out_sample": spatial}
    for index, (down, residual) in enumerate(zip(down_names, residual_names)):
        axes = {0: "batch_size", 2: "height_%d" % index, 3: "width_%d" % index}
        controlnet_axes[down] = axes
        unet_axes[residual] = axes
    mid_axes = {0: "batch_size", 2: "height_mid", 3: "width_mid"}
    controlnet_axes["mid_block_res_sample"] = mid_axes
    unet_axes["mid_block_additional_residual"] = mid_axes
    flat_unet = UNetExport(config.UNET)
    flat_unet.load_state_dict(unet.state_dict())
    flat_controlnet = controlnet.ControlNetExport(model.config)
    flat_controlnet.load_state_dict(model.state_dict())
    scale = torch.tensor(1.0)
    jobs = {
        "controlnet": (flat_controlnet, (sample, timestep, context, cond, scale),
                       ["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale"],
                       down_names + ["mid_block_res_sample"], controlnet_axes),
        "unet": (flat_unet, (sample, timestep, context, *residuals),
                 ["sample", "timestep", "encoder_hidden_states"] + residual_names + ["mid_block_additional_residual"],
                 ["out_sample"], unet_axes),
    }
    for folder, source in ((onnx_dir, controlnet.TINY_ONNX), (torchscript_dir, controlnet.TINY_TORCHSCRIPT)):
        for name in COPIED + ("controlnet", "unet"):
            if os.path.isdir(os.path.join(folder, name)):
                shutil.rmtree(os.path.join(folder, name))
        os.makedirs(folder, exist_ok=True)
        for name in COPIED:
            link_or_copy(os.path.join(source, name), os.path.join(folder, name))
        export.write_json(os.path.join(folder, "model_index.json"), model_index(source))
        export.write_json(os.path.join(folder, "controlnet", "config.json"),
                          controlnet_config(model.config["conditioning_embedding_out_channels"]))
        export.write_json(os.path.join(folder, "unet", "config.json"), export.unet_config())
    report = {}
    for name, (module, example, inputs, outputs, axes) in jobs.items():
        module.eval()
        path = os.path.join(onnx_dir, name, "model.onnx")
        torch.onnx.export(module, example, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=17, do_constant_folding=True)
        graph = onnx.load(path)
        onnx.checker.check_model(graph)
        assert [i.name for i in graph.graph.input] == inputs, [i.name for i in graph.graph.input]
        assert [o.name for o in graph.graph.output] == outputs, [o.name for o in graph.graph.output]
        traced = torch.jit.trace(module, example, check_trace=False)
        traced.save(os.path.join(torchscript_dir, name, "model.pt"))
        with torch.no_grad():
            eager = module(*example)
            scripted = traced(*example)
        eager = eager if isinstance(eager, tuple) else (eager,)
        scripted = scripted if isinstance(scripted, tuple) else (scripted,)
        difference = max(float((a - b).abs().max()) for a, b in zip(eager, scripted))
        report[name] = {"onnx_nodes": len(graph.graph.node), "onnx_mb": round(os.path.getsize(path) / 1e6, 2),
                        "torchscript_mb": round(os.path.getsize(os.path.join(torchscript_dir, name, "model.pt"))
                                                / 1e6, 2), "trace_max_diff": difference}
        print("%s: %s" % (name, json.dumps(report[name])), flush=True)
    return report


def check_zero_residuals(unet):
    """The exported UNet with zero residuals is the plain tiny UNet (torch side; CheckControlNet.java checks ORT)."""
    sample, timestep, context, _, residuals = examples()
    with torch.no_grad():
        plain = unet(sample, timestep, context)
        zero = unet(sample, timestep, context, [torch.zeros_like(r) for r in residuals[:-1]],
                    torch.zeros_like(residuals[-1]))
    return float((plain - zero).abs().max())


def load_trained(unet, raw=False, path=None):
    checkpoint = torch.load(path or os.path.join(controlnet.WORK, "controlnet.pt"))
    model = models.ControlNetModel(dict(unet.config, conditioning_embedding_out_channels=checkpoint[
        "conditioning_embedding_out_channels"]))
    model.load_state_dict(checkpoint["controlnet_raw" if raw else "controlnet"])
    model.eval()
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--untrained", action="store_true", help="export ControlNetModel.from_unet's weights")
    parser.add_argument("--out", default=None, help="ONNX folder (TorchScript goes to OUT-torchscript)")
    parser.add_argument("--no-reference", action="store_true")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    text_encoder, unet, vae, tokenizer, scaling_factor = controlnet.load_tiny()
    if arguments.untrained:
        model = models.ControlNetModel.from_unet(unet, controlnet.CONDITIONING_CHANNELS)
    else:
        model = load_trained(unet)
    model.eval()
    onnx_dir = arguments.out or ONNX_DIR
    torchscript_dir = (arguments.out + "-torchscript") if arguments.out else TORCHSCRIPT_DIR
    export_folder(model, unet, onnx_dir, torchscript_dir)
    print("unet with zero residuals vs plain unet (torch): max abs diff %.3g" % check_zero_residuals(unet))
    if not arguments.no_reference and not arguments.untrained:
        import evaluate_controlnet
        evaluate_controlnet.write_reference(text_encoder, unet, vae, tokenizer, scaling_factor, model,
                                            os.path.join(onnx_dir, "reference"))


if __name__ == "__main__":
    main()
