"""Tiny ONNX pipelines that pin the runner's contract with exported models (run with /usr/bin/python3).

Random-free, analytic components (a few KB each) in the diffusers/Optimum layout, each exercising a variant
users hit in real exports:
  contract-sd    SD 1.x style: int64 timestep [batch], VAE factor 4 (3 VAE blocks, not the usual 8),
                 text encoder with hidden_states.* outputs (clip skip), vae_encoder with latent_parameters.
  contract-sd2   SD 2 style: float32 scalar timestep, v_prediction, tokenizer pads with "!" (id 0),
                 UNet exported with a static batch of 2.
  contract-sdxl  SDXL style: two text encoders (the second with text_embeds), UNet with text_embeds and
                 time_ids, float32 timestep [1].
The UNet's output depends on every input (sample, timestep, text), so a wrong feed changes the image.
"""
import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "resources", "pipelines")
TOKENIZER = os.path.join(HERE, "..", "..", "..", "..", "testdata", "fixtures", "tokenizer")
WIDTH = 8


def seeded(module, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return module


class TextEncoder(torch.nn.Module):
    def __init__(self, vocabulary, width=WIDTH, projection=None):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, width)
        self.first = torch.nn.Linear(width, width)
        self.second = torch.nn.Linear(width, width)
        self.norm = torch.nn.LayerNorm(width)
        self.projection = torch.nn.Linear(width, projection, bias=False) if projection else None

    def forward(self, input_ids):
        h0 = self.embedding(input_ids)
        h1 = h0 + torch.tanh(self.first(h0))
        h2 = h1 + torch.tanh(self.second(h1))
        last = self.norm(h2)
        pooled = last[torch.arange(last.shape[0]), input_ids.argmax(dim=-1)]
        if self.projection is not None:
            return self.projection(pooled), last, h0, h1, h2
        return last, pooled, h0, h1, h2


class Unet(torch.nn.Module):
    def __init__(self, context_width, pooled_width=0, time_ids=0):
        super().__init__()
        self.mix = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.context = torch.nn.Linear(context_width, 4)
        self.pooled = torch.nn.Linear(pooled_width + time_ids, 4) if pooled_width else None

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds=None, time_ids=None):
        t = timestep.to(torch.float32).reshape(-1, 1, 1, 1) / 1000.0
        context = self.context(encoder_hidden_states.mean(dim=1))
        if self.pooled is not None:
            context = context + self.pooled(torch.cat([text_embeds, time_ids / 1024.0], dim=1))
        return 0.2 * torch.tanh(self.mix(sample)) + 0.9 * sample * (1 - t) + context[:, :, None, None]


class Decoder(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor
        self.project = torch.nn.Conv2d(4, 3, 1)

    def forward(self, latent_sample):
        upsampled = torch.nn.functional.interpolate(latent_sample, scale_factor=float(self.factor), mode="nearest")
        return torch.tanh(self.project(upsampled))


class Encoder(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor
        self.project = torch.nn.Conv2d(3, 8, 1)

    def forward(self, sample):
        return self.project(torch.nn.functional.avg_pool2d(sample, self.factor))


def export(module, arguments, path, inputs, outputs, dynamic):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(module.eval(), arguments, path, input_names=inputs, output_names=outputs, dynamic_axes=dynamic, opset_version=17)


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")


def tokenizer(folder, pad=None):
    shutil.copytree(TOKENIZER, folder, dirs_exist_ok=True)
    if pad is not None:
        config_path = os.path.join(folder, "tokenizer_config.json")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        config["pad_token"] = pad
        write_json(config_path, config)


def scheduler(folder, **changes):
    config = {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "num_train_timesteps": 1000, "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1,
              "clip_sample": False, "set_alpha_to_one": False}
    config.update(changes)
    write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), config)


def text_encoder(folder, name, vocabulary, seed, projection=None):
    module = seeded(TextEncoder(vocabulary, projection=projection), seed)
    names = (["text_embeds", "last_hidden_state"] if projection else ["last_hidden_state", "pooler_output"]) + \
        ["hidden_states.0", "hidden_states.1", "hidden_states.2"]
    export(module, (torch.zeros(1, 77, dtype=torch.int64),), os.path.join(folder, name, "model.onnx"), ["input_ids"], names,
           {"input_ids": {0: "batch"}})


def vae(folder, factor, seed, encoder=True):
    blocks = [8] * (factor.bit_length())
    export(seeded(Decoder(factor), seed), (torch.zeros(1, 4, 4, 4),), os.path.join(folder, "vae_decoder", "model.onnx"),
           ["latent_sample"], ["sample"], {"latent_sample": {0: "batch", 2: "height", 3: "width"}})
    write_json(os.path.join(folder, "vae_decoder", "config.json"),
               {"block_out_channels": blocks, "latent_channels": 4, "scaling_factor": 0.5})
    if encoder:
        export(seeded(Encoder(factor), seed + 1), (torch.zeros(1, 3, 16, 16),), os.path.join(folder, "vae_encoder", "model.onnx"),
               ["sample"], ["latent_parameters"], {"sample": {0: "batch", 2: "height", 3: "width"}})


def main():
    with open(os.path.join(TOKENIZER, "vocab.json"), encoding="utf-8") as handle:
        vocabulary = len(json.load(handle))

    folder = os.path.join(OUT, "contract-sd")
    tokenizer(os.path.join(folder, "tokenizer"))
    scheduler(folder)
    text_encoder(folder, "text_encoder", vocabulary, 1)
    export(seeded(Unet(WIDTH), 2), (torch.zeros(2, 4, 4, 4), torch.zeros(2, dtype=torch.int64), torch.zeros(2, 77, WIDTH)),
           os.path.join(folder, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}})
    write_json(os.path.join(folder, "unet", "config.json"), {"in_channels": 4, "sample_size": 8})
    vae(folder, 4, 3)
    write_json(os.path.join(folder, "model_index.json"), {"_class_name": "OnnxStableDiffusionPipeline"})

    folder = os.path.join(OUT, "contract-sd2")
    tokenizer(os.path.join(folder, "tokenizer"), pad="!")
    scheduler(folder, _class_name="EulerDiscreteScheduler", prediction_type="v_prediction")
    text_encoder(folder, "text_encoder", vocabulary, 4)
    export(seeded(Unet(WIDTH), 5), (torch.zeros(2, 4, 4, 4), torch.tensor(1.0), torch.zeros(2, 77, WIDTH)),
           os.path.join(folder, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {2: "height", 3: "width"}})
    write_json(os.path.join(folder, "unet", "config.json"), {"in_channels": 4, "sample_size": 4})
    vae(folder, 8, 6, encoder=False)
    write_json(os.path.join(folder, "model_index.json"), {"_class_name": "OnnxStableDiffusionPipeline"})

    folder = os.path.join(OUT, "contract-sdxl")
    tokenizer(os.path.join(folder, "tokenizer"))
    tokenizer(os.path.join(folder, "tokenizer_2"), pad="!")
    scheduler(folder, _class_name="EulerDiscreteScheduler", timestep_spacing="leading")
    text_encoder(folder, "text_encoder", vocabulary, 7)
    text_encoder(folder, "text_encoder_2", vocabulary, 8, projection=6)
    export(seeded(Unet(2 * WIDTH, pooled_width=6, time_ids=6), 9),
           (torch.zeros(2, 4, 4, 4), torch.zeros(1), torch.zeros(2, 77, 2 * WIDTH), torch.zeros(2, 6), torch.zeros(2, 6)),
           os.path.join(folder, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"],
           ["out_sample"], {"sample": {0: "batch", 2: "height", 3: "width"}, "encoder_hidden_states": {0: "batch"},
                            "text_embeds": {0: "batch"}, "time_ids": {0: "batch"}})
    write_json(os.path.join(folder, "unet", "config.json"), {"in_channels": 4, "sample_size": 4})
    vae(folder, 8, 10)
    write_json(os.path.join(folder, "model_index.json"), {"_class_name": "ORTStableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True})
    print("wrote contract pipelines to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
