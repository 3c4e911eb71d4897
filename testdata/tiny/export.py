"""Exports the trained tiny pipeline in the diffusers/Optimum ONNX layout and as TorchScript, plus the
reference outputs the Java runner checks parity against.

    /usr/bin/python3 testdata/tiny/export.py

Writes testdata/pipelines/tiny-sd/ (ONNX, opset 17, dynamic axes, Optimum I/O names) and
testdata/pipelines/tiny-sd-torchscript/ (torch.jit.trace'd model.pt per component, same configs), and
testdata/pipelines/tiny-sd/reference/ (one seeded DDIM run, every intermediate as .npy).
"""

import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "generator"))

import config  # noqa: E402
import evaluate  # noqa: E402
import models  # noqa: E402
import sampler  # noqa: E402
import scenes  # noqa: E402
from kiln_sd.clip_bpe import build_tokenizer  # noqa: E402

PIPELINES = os.path.join(HERE, "..", "pipelines")
ONNX_DIR = os.path.join(PIPELINES, "tiny-sd")
TORCHSCRIPT_DIR = os.path.join(PIPELINES, "tiny-sd-torchscript")
DIFFUSERS_VERSION = "0.12.1"
REFERENCE_PROMPT = "a red circle on a white background"
REFERENCE_SEED = 0


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", newline="\n") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def model_index():
    runtime = ["onnxruntime", "OnnxRuntimeModel"]
    return {"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
            "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": runtime,
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": runtime, "vae_decoder": runtime,
            "vae_encoder": runtime}


def scheduler_config():
    return {"_class_name": "PNDMScheduler", "_diffusers_version": DIFFUSERS_VERSION,
            "beta_end": config.SCHEDULER["beta_end"], "beta_schedule": config.SCHEDULER["beta_schedule"],
            "beta_start": config.SCHEDULER["beta_start"], "clip_sample": False,
            "num_train_timesteps": config.SCHEDULER["num_train_timesteps"],
            "prediction_type": config.SCHEDULER["prediction_type"], "set_alpha_to_one": False,
            "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None}


def text_encoder_config(text_config, tokenizer):
    return {"architectures": ["CLIPTextModel"], "bos_token_id": tokenizer.start_id,
            "eos_token_id": tokenizer.end_id, "hidden_act": "quick_gelu",
            "hidden_size": text_config["hidden_size"], "intermediate_size": text_config["intermediate_size"],
            "layer_norm_eps": 1e-05, "max_position_embeddings": text_config["max_position_embeddings"],
            "model_type": "clip_text_model", "num_attention_heads": text_config["num_attention_heads"],
            "num_hidden_layers": text_config["num_hidden_layers"], "pad_token_id": tokenizer.pad_id,
            "projection_dim": text_config["hidden_size"], "torch_dtype": "float32",
            "vocab_size": text_config["vocab_size"]}


def unet_config():
    u = config.UNET
    return {"_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
            "attention_head_dim": [c // u["attention_head_dim"] for c in u["block_out_channels"]],
            "block_out_channels": u["block_out_channels"], "center_input_sample": False,
            "cross_attention_dim": u["cross_attention_dim"], "down_block_types": u["down_block_types"],
            "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": u["in_channels"],
            "layers_per_block": u["layers_per_block"], "mid_block_scale_factor": 1, "norm_eps": 1e-05,
            "norm_num_groups": u["norm_num_groups"], "out_channels": u["out_channels"],
            "sample_size": u["sample_size"], "up_block_types": u["up_block_types"], "upcast_attention": False,
            "use_linear_projection": False}


def vae_config(scaling_factor):
    v = config.VAE
    count = len(v["block_out_channels"])
    return {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
            "block_out_channels": v["block_out_channels"], "down_block_types": ["DownEncoderBlock2D"] * count,
            "in_channels": v["in_channels"], "latent_channels": v["latent_channels"],
            "layers_per_block": v["layers_per_block"], "norm_num_groups": v["norm_num_groups"],
            "out_channels": v["out_channels"], "sample_size": v["sample_size"],
            "scaling_factor": round(scaling_factor, 6), "up_block_types": ["UpDecoderBlock2D"] * count}


class TextEncoderExport(torch.nn.Module):
    """Optimum's text-encoder outputs: last_hidden_state, pooler_output, hidden_states.0..N."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_model = text_encoder.text_model

    def forward(self, input_ids):
        model = self.text_model
        x = model.embeddings(input_ids)
        length = input_ids.shape[1]
        mask = torch.full((length, length), torch.finfo(x.dtype).min, dtype=x.dtype)
        causal_mask = torch.triu(mask, diagonal=1)[None, None, :, :]
        hidden_states = [x]
        for layer in model.encoder.layers:
            x = layer(x, causal_mask)
            hidden_states.append(x)
        last_hidden_state = model.final_layer_norm(x)
        end_positions = input_ids.to(torch.int64).argmax(dim=-1)
        pooled = last_hidden_state[torch.arange(last_hidden_state.shape[0]), end_positions]
        return (last_hidden_state, pooled, *hidden_states)


def components(text_encoder, unet, vae):
    hidden = text_encoder.config["hidden_size"]
    layers = text_encoder.config["num_hidden_layers"]
    ids = torch.tensor([[1] * 77], dtype=torch.int32)
    return {
        "text_encoder": (TextEncoderExport(text_encoder), (ids,), ["input_ids"],
                         ["last_hidden_state", "pooler_output"] + ["hidden_states.%d" % i for i in range(layers + 1)],
                         dict({"input_ids": {0: "batch_size", 1: "sequence_length"},
                               "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
                               "pooler_output": {0: "batch_size"}},
                              **{"hidden_states.%d" % i: {0: "batch_size", 1: "sequence_length"}
                                 for i in range(layers + 1)})),
        "unet": (unet, (torch.randn(2, 4, 8, 8), torch.tensor([951], dtype=torch.int64), torch.randn(2, 77, hidden)),
                 ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
                 {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "steps"},
                  "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
                  "out_sample": {0: "batch_size", 2: "height", 3: "width"}}),
        "vae_encoder": (models.VaeEncoderExport(vae), (torch.randn(1, 3, 64, 64),), ["sample"], ["latent_parameters"],
                        {"sample": {0: "batch_size", 2: "height", 3: "width"},
                         "latent_parameters": {0: "batch_size", 2: "height_latent", 3: "width_latent"}}),
        "vae_decoder": (models.VaeDecoderExport(vae), (torch.randn(1, 4, 8, 8),), ["latent_sample"], ["sample"],
                        {"latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
                         "sample": {0: "batch_size", 2: "height", 3: "width"}}),
    }


def export_all(text_encoder, unet, vae, tokenizer_words, scaling_factor, text_config):
    for folder in (ONNX_DIR, TORCHSCRIPT_DIR):
        for name in ("text_encoder", "unet", "vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
            if os.path.isdir(os.path.join(folder, name)):
                shutil.rmtree(os.path.join(folder, name))
        tokenizer = build_tokenizer(tokenizer_words, os.path.join(folder, "tokenizer"))
        write_json(os.path.join(folder, "model_index.json"), model_index())
        write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), scheduler_config())
        write_json(os.path.join(folder, "text_encoder", "config.json"), text_encoder_config(text_config, tokenizer))
        write_json(os.path.join(folder, "unet", "config.json"), unet_config())
        write_json(os.path.join(folder, "vae_encoder", "config.json"), vae_config(scaling_factor))
        write_json(os.path.join(folder, "vae_decoder", "config.json"), vae_config(scaling_factor))
    for name, (module, example, inputs, outputs, axes) in components(text_encoder, unet, vae).items():
        module.eval()
        path = os.path.join(ONNX_DIR, name, "model.onnx")
        torch.onnx.export(module, example, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=17, do_constant_folding=True)
        model = onnx.load(path)
        onnx.checker.check_model(model)
        traced_example = tuple(e.to(torch.int64) if e.dtype == torch.int32 else e for e in example)
        traced = torch.jit.trace(module, traced_example, check_trace=False)
        traced.save(os.path.join(TORCHSCRIPT_DIR, name, "model.pt"))
        with torch.no_grad():
            eager = module(*traced_example)
            scripted = traced(*traced_example)
        eager = eager if isinstance(eager, tuple) else (eager,)
        scripted = scripted if isinstance(scripted, tuple) else (scripted,)
        difference = max(float((a - b).abs().max()) for a, b in zip(eager, scripted))
        print("%s: onnx %d nodes %.2f MB, torchscript %.2f MB, trace max diff %.2e" % (
            name, len(model.graph.node), os.path.getsize(path) / 1e6,
            os.path.getsize(os.path.join(TORCHSCRIPT_DIR, name, "model.pt")) / 1e6, difference))


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


@torch.no_grad()
def write_reference(text_encoder, unet, vae, tokenizer, scaling_factor):
    folder = os.path.join(ONNX_DIR, "reference")
    os.makedirs(folder, exist_ok=True)
    record = {}
    images, latents = sampler.sample(text_encoder, unet, vae, tokenizer, [REFERENCE_PROMPT], [REFERENCE_SEED],
                                     scaling_factor, steps=20, guidance=7.5, record=record)
    ids = record["input_ids"].to(torch.int32)
    empty = record["uncond_input_ids"].to(torch.int32)
    cond = text_encoder(record["input_ids"])
    uncond = text_encoder(record["uncond_input_ids"])
    first_t = sampler.ddim_timesteps(20)[0]
    context = torch.cat([uncond[0], cond[0]])
    first_noise_prediction = unet(torch.cat([record["initial_noise"]] * 2), torch.tensor([first_t]), context)
    save_npy(os.path.join(folder, "input_ids.npy"), ids.numpy())
    save_npy(os.path.join(folder, "uncond_input_ids.npy"), empty.numpy())
    save_npy(os.path.join(folder, "last_hidden_state.npy"), cond[0].numpy())
    save_npy(os.path.join(folder, "pooler_output.npy"), cond[1].numpy())
    save_npy(os.path.join(folder, "uncond_last_hidden_state.npy"), uncond[0].numpy())
    save_npy(os.path.join(folder, "initial_noise.npy"), record["initial_noise"].numpy())
    save_npy(os.path.join(folder, "first_step_noise_prediction.npy"), first_noise_prediction.numpy())
    save_npy(os.path.join(folder, "latents_per_step.npy"),
             torch.stack([s["latents"] for s in record["steps"]]).numpy())
    save_npy(os.path.join(folder, "final_latents.npy"), latents.numpy())
    save_npy(os.path.join(folder, "image.npy"), images.numpy())
    pixels = sampler.to_uint8(images)[0]
    Image.fromarray(pixels).save(os.path.join(folder, "image.png"), optimize=True)
    import judge
    verdict = judge.judge(pixels)
    summary = {"prompt": REFERENCE_PROMPT, "negative_prompt": "", "seed": REFERENCE_SEED, "steps": 20,
               "guidance_scale": 7.5, "height": 64, "width": 64, "scheduler": "DDIM, eta 0",
               "timesteps": sampler.ddim_timesteps(20), "scaling_factor": round(scaling_factor, 6),
               "input_ids": ids[0].tolist(), "uncond_input_ids": empty[0].tolist(),
               "judge": {"colour": verdict["colour"], "shape": verdict["shape"],
                         "background": verdict["background"]},
               "initial_noise_first_values": [round(v, 6) for v in record["initial_noise"].reshape(-1)[:8].tolist()]}
    write_json(os.path.join(folder, "reference.json"), summary)
    print("reference:", json.dumps(summary["judge"]), "ids", summary["input_ids"][:12])


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    text_encoder, unet, vae, tokenizer, scaling_factor = evaluate.load()
    checkpoint = torch.load(os.path.join(evaluate.WORK, "unet.pt"))
    export_all(text_encoder, unet, vae, scenes.caption_vocabulary(), scaling_factor, checkpoint["text_config"])
    write_reference(text_encoder, unet, vae, tokenizer, scaling_factor)


if __name__ == "__main__":
    main()
