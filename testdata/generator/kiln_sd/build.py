"""Everything generate.py does (see there). Run through generate.py, which starts this with repository-relative
paths so that the source locations TorchScript records in its debug tables do not depend on the checkout."""

import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch

from kiln_sd import blocks
from kiln_sd import components as parts
from kiln_sd import exporting
from kiln_sd import overflow
from kiln_sd.clip_bpe import build_tokenizer

GENERATOR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TESTDATA = os.path.dirname(GENERATOR)
FIXTURES = os.path.join(TESTDATA, "fixtures")
PIPELINES = os.path.join(TESTDATA, "pipelines")
PIPELINE_NAMES = ("sd15", "sd2", "sdxl")

CAPTIONS = [
    "a photograph of an astronaut riding a horse on the moon",
    "a red circle and a blue square on a white background",
    "an oil painting of a small house by the sea at sunset",
    "a cat sitting on a wooden table next to a cup of coffee",
    "a green tree in a field under a cloudy sky",
    "portrait of a woman with long black hair, digital art",
    "a city street at night with neon lights and rain",
    "a bowl of fruit: apples, oranges and yellow bananas",
    "mountains covered in snow, high quality, 4k",
    "a dog running on the beach with a ball",
]
PROMPTS = ["a photograph of an astronaut riding a horse on the moon",
           "a cat sitting on a wooden table", "oil painting of mountains covered in snow at sunset"]

TEXT_AXES = {"input_ids": {0: "batch_size", 1: "sequence_length"}}


def text_axes(output_names):
    axes = dict(TEXT_AXES)
    for name in output_names:
        axes[name] = {0: "batch_size"} if name in ("pooler_output", "text_embeds") else {0: "batch_size",
                                                                                        1: "sequence_length"}
    return axes


UNET_AXES = {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "steps"},
             "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
             "text_embeds": {0: "batch_size"}, "time_ids": {0: "batch_size"},
             "out_sample": {0: "batch_size", 2: "height", 3: "width"}}
VAE_DECODER_AXES = {"latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
                    "sample": {0: "batch_size", 2: "height", 3: "width"}}
VAE_ENCODER_AXES = {"sample": {0: "batch_size", 2: "height", 3: "width"},
                    "latent_parameters": {0: "batch_size", 2: "height_latent", 3: "width_latent"}}


def generator_for(seed):
    return torch.Generator().manual_seed(seed)


def token_batch(tokenizer, prompts, length, pad_id):
    rows = []
    for prompt in prompts:
        ids = tokenizer.encode(prompt)
        if len(ids) > length:
            ids = ids[:length - 1] + [tokenizer.end_id]
        rows.append(ids + [pad_id] * (length - len(ids)))
    return (torch.tensor(rows, dtype=torch.int32),)


def unet_inputs(seed, batch, height, width, sequence, context_dim, timesteps, added=None):
    random = generator_for(seed)
    inputs = [torch.randn((batch, 4, height, width), generator=random),
              torch.tensor(timesteps, dtype=torch.int64),
              torch.randn((batch, sequence, context_dim), generator=random)]
    if added is not None:
        text_embeds_dim, time_ids = added
        inputs.append(torch.randn((batch, text_embeds_dim), generator=random))
        inputs.append(torch.tensor(time_ids, dtype=torch.float32))
    return tuple(inputs)


def component_specs(tokenizer):
    """Every component with its model, I/O names (as Optimum exports them) and two input sets that differ in
    batch and spatial/sequence shape."""
    vocab_size = len(tokenizer.vocabulary)
    seed = parts.SEED
    specs = []

    def text(name, family, config, offset, pad_id):
        model = parts.build_text(config, seed + offset, vocab_size)
        layers = config["num_hidden_layers"]
        hidden = ["hidden_states." + str(index) for index in range(layers + 1)]
        first = ["text_embeds", "last_hidden_state"] if "projection" in config["architectures"][0].lower() \
            else ["last_hidden_state", "pooler_output"]
        outputs = first + hidden
        specs.append(dict(name=name, family=family, kind="text_encoder", model=model, input_names=["input_ids"],
                          output_names=outputs, dynamic_axes=text_axes(outputs), config=model.config,
                          sets=[token_batch(tokenizer, PROMPTS[:1], 77, pad_id),
                                token_batch(tokenizer, PROMPTS[1:], 16, pad_id)]))

    def unet(name, family, config, offset, added=None, sdpa=False):
        model = parts.build_unet(config, seed + offset)
        if sdpa:
            blocks.use_sdpa(model)
        context = config["cross_attention_dim"]
        names = ["sample", "timestep", "encoder_hidden_states"] + (["text_embeds", "time_ids"] if added else [])
        added0 = (added, [[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0]]) if added else None
        added1 = (added, [[768.0, 1024.0, 0.0, 0.0, 768.0, 1024.0],
                          [1024.0, 768.0, 32.0, 16.0, 1024.0, 768.0]]) if added else None
        specs.append(dict(name=name, family=family, kind="unet", model=model, input_names=names,
                          output_names=["out_sample"], **(SDPA_EXPORT if sdpa else {}),
                          dynamic_axes={key: UNET_AXES[key] for key in names + ["out_sample"]}, config=config,
                          sets=[unet_inputs(seed + offset + 100, 1, 32, 32, 77, context, [981], added0),
                                unet_inputs(seed + offset + 101, 2, 48, 64, 154, context, [500, 21], added1)]))

    end_id = tokenizer.end_id
    text("clip_text", "sd15", parts.CLIP_TEXT, 1, end_id)
    unet("unet", "sd15", parts.UNET_SD15, 2)

    vae_seed = seed + 3
    decoder = parts.build_vae("decoder", vae_seed)
    decoder_sets = [(torch.randn((1, 4, 16, 16), generator=generator_for(vae_seed + 100)),),
                    (torch.randn((2, 4, 12, 20), generator=generator_for(vae_seed + 101)),)]
    specs.append(dict(name="vae_decoder", family="sd15", kind="vae_decoder", model=decoder,
                      input_names=["latent_sample"], output_names=["sample"], dynamic_axes=VAE_DECODER_AXES,
                      config=parts.VAE, sets=decoder_sets))
    encoder = parts.build_vae("encoder", vae_seed)
    encoder_sets = [(torch.rand((1, 3, 128, 128), generator=generator_for(vae_seed + 102)) * 2 - 1,),
                    (torch.rand((2, 3, 96, 160), generator=generator_for(vae_seed + 103)) * 2 - 1,)]
    specs.append(dict(name="vae_encoder", family="sd15", kind="vae_encoder", model=encoder,
                      input_names=["sample"], output_names=["latent_parameters"], dynamic_axes=VAE_ENCODER_AXES,
                      config=parts.VAE, sets=encoder_sets))
    hot = overflow.make_overflow_prone(parts.build_vae("decoder", vae_seed))
    specs.append(dict(name="vae_decoder_overflow", family="sdxl-like", kind="vae_decoder", model=hot,
                      input_names=["latent_sample"], output_names=["sample"], dynamic_axes=VAE_DECODER_AXES,
                      config=dict(parts.VAE, force_upcast=True), sets=decoder_sets))

    text("sd2_clip_text", "sd2", parts.SD2_CLIP_TEXT, 4, end_id)
    unet("sd2_unet", "sd2", parts.UNET_SD2, 5)
    # SDXL's first text encoder is SD 1.x's CLIP ViT-L, so the sdxl pipeline reuses clip_text.
    text("sdxl_clip_text_2", "sdxl", parts.SDXL_CLIP_TEXT_2, 6, tokenizer.vocabulary["!"])
    unet("sdxl_unet", "sdxl", parts.UNET_SDXL, 7, added=parts.SDXL_CLIP_TEXT_2["projection_dim"])

    unet("unet_sdpa", "sd15", parts.UNET_SD15_SDPA, 8, sdpa=True)
    unet("sd2_unet_sdpa", "sd2", parts.UNET_SD2_SDPA, 9, sdpa=True)
    unet("sdxl_unet_sdpa", "sdxl", parts.UNET_SDXL_SDPA, 10, added=parts.SDXL_CLIP_TEXT_2["projection_dim"],
         sdpa=True)
    sdpa_vae_seed = seed + 11
    sdpa_decoder = blocks.use_sdpa(parts.build_vae("decoder", sdpa_vae_seed, parts.VAE_SDPA))
    specs.append(dict(name="vae_decoder_sdpa", family="sd15", kind="vae_decoder", model=sdpa_decoder,
                      input_names=["latent_sample"], output_names=["sample"], dynamic_axes=VAE_DECODER_AXES,
                      config=parts.VAE_SDPA, sets=decoder_sets, **SDPA_EXPORT))
    return specs + controlnet_specs(seed)


SDPA_EXPORT = {"attention": "sdpa", "opsets": (14,), "torchscript": False}
"""How the torch-2 form fixtures are written: opset 14 only (the opset torch 2 registers scaled_dot_product_attention
at, and Optimum's default for Stable Diffusion), no TorchScript (a torch-2 trace would hold
aten::scaled_dot_product_attention, which torch 1.13 cannot write; the math-spelled trace would pretend otherwise)."""


def json_bytes(value):
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_component(spec):
    folder = os.path.join(FIXTURES, spec["name"])
    model = spec["model"]
    first_inputs = spec["sets"][0]
    torchscript = spec.get("torchscript", True)
    entry = {"family": spec["family"], "kind": spec["kind"], "class": type(model).__name__,
             "attention": spec.get("attention", "torch1"),
             "config": spec["config"], "parameters": exporting.parameter_count(model),
             "modules": exporting.module_inventory(model), "inputs": spec["input_names"],
             "outputs": spec["output_names"],
             "dynamic_axes": {name: {str(axis): label for axis, label in axes.items()}
                              for name, axes in spec["dynamic_axes"].items()},
             "files": {"config": rel(os.path.join(folder, "config.json"))},
             "onnx": {}, "test_data_sets": []}
    exporting.write_bytes(os.path.join(folder, "config.json"), json_bytes(spec["config"]))
    if torchscript:
        entry["files"]["torchscript"] = rel(os.path.join(folder, "model.pt"))
        exporting.write_bytes(os.path.join(folder, "model.pt"), exporting.trace(model, first_inputs))

    for index, inputs in enumerate(spec["sets"]):
        outputs = exporting.run(model, inputs)
        if len(outputs) != len(spec["output_names"]):
            raise RuntimeError("%s: %d outputs, %d names" % (spec["name"], len(outputs), len(spec["output_names"])))
        set_folder = os.path.join(folder, "test_data_set_" + str(index))
        description = {"folder": rel(set_folder), "inputs": [], "outputs": []}
        for position, (name, tensor) in enumerate(zip(spec["input_names"], inputs)):
            array = tensor.numpy()
            exporting.write_bytes(os.path.join(set_folder, "input_%d.pb" % position),
                                  exporting.tensor_bytes(array, name))
            description["inputs"].append(dict(exporting.describe(array), name=name))
        for position, (name, tensor) in enumerate(zip(spec["output_names"], outputs)):
            array = tensor.numpy()
            exporting.write_bytes(os.path.join(set_folder, "output_%d.pb" % position),
                                  exporting.tensor_bytes(array, name))
            description["outputs"].append(dict(exporting.describe(array), name=name,
                                               max_abs=float(np.abs(array).max())))
        entry["test_data_sets"].append(description)

    for opset in spec.get("opsets", exporting.OPSETS):
        data, proto = exporting.export_onnx(model, first_inputs, opset, spec["input_names"], spec["output_names"],
                                            spec["dynamic_axes"])
        opset_folder = os.path.join(folder, "opset%d" % opset)
        path = os.path.join(opset_folder, "model.onnx")
        exporting.write_bytes(path, data)
        for index in range(len(spec["sets"])):
            link(os.path.join(opset_folder, "test_data_set_%d" % index), os.path.join(folder, "test_data_set_%d" % index))
        entry["onnx"][str(opset)] = {"path": rel(path), "nodes": len(proto.graph.node),
                                     "initializers": len(proto.graph.initializer),
                                     "op_histogram": exporting.op_histogram(proto)}
        if spec["name"] == "vae_decoder_overflow" and opset == 17:
            entry["overflow"] = overflow.report(model, spec["sets"], proto)
    return entry


def rel(path):
    return os.path.relpath(path, TESTDATA).replace(os.sep, "/")


def link(link_path, target):
    """A relative symlink (git stores it as a link, so pipeline folders cost no duplicate bytes)."""
    os.makedirs(os.path.dirname(link_path), exist_ok=True)
    if os.path.lexists(link_path):
        os.remove(link_path)
    os.symlink(os.path.relpath(target, os.path.dirname(link_path)), link_path)


SCHEDULERS = {
    "sd15": {"_class_name": "PNDMScheduler", "_diffusers_version": "0.12.1", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
             "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
             "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None},
    "sd2": {"_class_name": "DDIMScheduler", "_diffusers_version": "0.12.1", "beta_end": 0.012,
            "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
            "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
            "steps_offset": 1, "trained_betas": None},
    "sdxl": {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "interpolation_type": "linear",
             "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
             "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False},
}

PIPELINE_COMPONENTS = {
    "sd15": {"text_encoder": "clip_text", "unet": "unet", "vae_decoder": "vae_decoder",
             "vae_encoder": "vae_encoder"},
    "sd2": {"text_encoder": "sd2_clip_text", "unet": "sd2_unet", "vae_decoder": "vae_decoder",
            "vae_encoder": "vae_encoder"},
    "sdxl": {"text_encoder": "clip_text", "text_encoder_2": "sdxl_clip_text_2", "unet": "sdxl_unet",
             "vae_decoder": "vae_decoder", "vae_encoder": "vae_encoder"},
}


def model_index(name, torchscript):
    runtime = ["torch", "jit.ScriptModule"] if torchscript else ["onnxruntime", "OnnxRuntimeModel"]
    index = {"_class_name": {"sd15": "OnnxStableDiffusionPipeline", "sd2": "OnnxStableDiffusionPipeline",
                             "sdxl": "ORTStableDiffusionXLPipeline"}[name],
             "_diffusers_version": SCHEDULERS[name]["_diffusers_version"],
             "scheduler": ["diffusers", SCHEDULERS[name]["_class_name"]],
             "tokenizer": ["transformers", "CLIPTokenizer"]}
    if torchscript:
        index["_class_name"] = "StableDiffusionXLPipeline" if name == "sdxl" else "StableDiffusionPipeline"
        index["_kiln_format"] = "torchscript"
    for folder in PIPELINE_COMPONENTS[name]:
        index[folder] = list(runtime)
    if name == "sdxl":
        index["tokenizer_2"] = ["transformers", "CLIPTokenizer"]
        index["force_zeros_for_empty_prompt"] = True
    else:
        index["requires_safety_checker"] = False
        index["safety_checker"] = [None, None]
        index["feature_extractor"] = [None, None]
    return index


def write_pipelines(tokenizer_folder):
    entries = {}
    for name in PIPELINE_NAMES:
        for torchscript in (False, True):
            folder = os.path.join(PIPELINES, name + ("-torchscript" if torchscript else ""))
            exporting.write_bytes(os.path.join(folder, "model_index.json"), json_bytes(model_index(name, torchscript)))
            exporting.write_bytes(os.path.join(folder, "scheduler", "scheduler_config.json"),
                                  json_bytes(SCHEDULERS[name]))
            tokenizers = ["tokenizer", "tokenizer_2"] if name == "sdxl" else ["tokenizer"]
            for tokenizer_name in tokenizers:
                for file_name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
                    source = os.path.join(tokenizer_folder, file_name)
                    if tokenizer_name == "tokenizer_2" and file_name in ("tokenizer_config.json",
                                                                         "special_tokens_map.json"):
                        write_pad_bang(source, os.path.join(folder, tokenizer_name, file_name))
                    else:
                        link(os.path.join(folder, tokenizer_name, file_name), source)
            for sub, component in PIPELINE_COMPONENTS[name].items():
                source = os.path.join(FIXTURES, component)
                model_file = "model.pt" if torchscript else "model.onnx"
                target = os.path.join(source, model_file) if torchscript else os.path.join(source, "opset17",
                                                                                            "model.onnx")
                link(os.path.join(folder, sub, model_file), target)
                if name == "sdxl" and sub.startswith("vae"):
                    # SDXL's VAE has the same architecture; its config differs (latent scale, fp32 upcast).
                    exporting.write_bytes(os.path.join(folder, sub, "config.json"), json_bytes(
                        dict(parts.VAE, scaling_factor=0.13025, force_upcast=True)))
                else:
                    link(os.path.join(folder, sub, "config.json"), os.path.join(source, "config.json"))
            entries[os.path.basename(folder)] = {"folder": rel(folder), "components": PIPELINE_COMPONENTS[name],
                                                 "format": "torchscript" if torchscript else "onnx"}
    return entries


def write_pad_bang(source, destination):
    """SDXL's second tokenizer pads with "!" (id 0 in a CLIP vocabulary) instead of <|endoftext|>."""
    with open(source, encoding="utf-8") as handle:
        value = json.load(handle)
    value["pad_token"] = "!"
    exporting.write_bytes(destination, json_bytes(value))


def file_table():
    table = {}
    roots = [FIXTURES] + [os.path.join(PIPELINES, name + suffix) for name in PIPELINE_NAMES
                          for suffix in ("", "-torchscript")]
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories.sort()
            for entry in sorted(subdirectories + files):
                path = os.path.join(directory, entry)
                if os.path.islink(path):
                    table[rel(path)] = {"link": os.readlink(path)}
                elif os.path.isfile(path) and rel(path) != "fixtures/manifest.json":
                    with open(path, "rb") as handle:
                        data = handle.read()
                    table[rel(path)] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return dict(sorted(table.items()))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(parts.SEED)
    for stale in [FIXTURES] + [os.path.join(PIPELINES, name + suffix) for name in PIPELINE_NAMES
                               for suffix in ("", "-torchscript")]:
        if os.path.isdir(stale) and not only_some():
            shutil.rmtree(stale)
    tokenizer_folder = os.path.join(FIXTURES, "tokenizer")
    tokenizer = build_tokenizer(CAPTIONS, tokenizer_folder)

    components = {}
    for spec in selected(component_specs(tokenizer)):
        print("writing", spec["name"], flush=True)
        components[spec["name"]] = write_component(spec)
    components = with_the_others(components)
    pipelines = write_pipelines(tokenizer_folder)
    manifest = {
        "command": "/usr/bin/python3 testdata/generator/generate.py",
        "seed": parts.SEED,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "onnx": onnx.__version__,
                     "numpy": np.__version__},
        "paths_relative_to": "testdata/",
        "tokenizer": {"folder": rel(tokenizer_folder), "vocab_size": len(tokenizer.vocabulary),
                      "bos_id": tokenizer.start_id, "eos_id": tokenizer.end_id, "captions": CAPTIONS},
        "test_prompts": PROMPTS,
        "components": components,
        "pipelines": pipelines,
        "files": file_table(),
    }
    exporting.write_bytes(os.path.join(FIXTURES, "manifest.json"), json_bytes(manifest))
    print("wrote", len(manifest["files"]), "files")


def controlnet_specs(seed):
    """The random-weight SD 1.5 ControlNet and the UNet that takes its residuals (the unet fixture's weights: same
    config, same seed), at opset 17 only (each is a separate few-MB binary). Small spatial sizes keep the control
    images and residuals in the test data sets small."""
    # Imported here and defined at the end of the file: TorchScript's debug tables record the line of every
    # frame of a trace, so code added above main() would change every other fixture's model.pt.
    from kiln_sd import controlnet
    specs = []
    config = parts.CONTROLNET_SD15
    count = controlnet.residual_count(config)
    residual_names = ["down_block_res_samples_%d" % index for index in range(count)] + ["mid_block_res_sample"]
    controlnet_axes = {key: UNET_AXES[key] for key in ("sample", "timestep", "encoder_hidden_states")}
    controlnet_axes["controlnet_cond"] = {0: "batch_size", 2: "image_height", 3: "image_width"}
    # Each output's spatial dims named after it: left unnamed, torch 1.13 names every output's dims after the first
    # one's, declaring all residuals the same size (an fp16 graph that keeps those shapes then fails in ORT).
    for name in residual_names:
        controlnet_axes[name] = {0: "batch_size", 2: name + "_height", 3: name + "_width"}

    def controlnet_inputs(offset, batch, height, width, timesteps, scale):
        sample, timestep, context = unet_inputs(seed + offset, batch, height, width, 77,
                                                config["cross_attention_dim"], timesteps)
        condition = torch.rand((batch, 3, 8 * height, 8 * width), generator=generator_for(seed + offset + 1))
        return sample, timestep, context, condition, torch.tensor(scale, dtype=torch.float32)

    specs.append(dict(name="controlnet", family="sd15", kind="controlnet", model=parts.build_controlnet(config, seed + 12),
                      input_names=["sample", "timestep", "encoder_hidden_states", "controlnet_cond",
                                   "conditioning_scale"],
                      output_names=residual_names, dynamic_axes=controlnet_axes, config=config, opsets=(17,),
                      sets=[controlnet_inputs(112, 1, 16, 16, [981], 1.0),
                            controlnet_inputs(113, 2, 8, 24, [500, 21], 0.75)]))

    unet_config = parts.UNET_SD15
    input_names = ["sample", "timestep", "encoder_hidden_states"] + [
        "down_block_additional_residuals_%d" % index for index in range(count)] + ["mid_block_additional_residual"]
    unet_axes = {key: UNET_AXES[key] for key in ("sample", "timestep", "encoder_hidden_states", "out_sample")}
    for name in input_names[3:]:
        unet_axes[name] = {0: "batch_size", 2: name + "_height", 3: name + "_width"}

    def unet_residual_inputs(offset, batch, height, width, timesteps):
        base = unet_inputs(seed + offset, batch, height, width, 77, unet_config["cross_attention_dim"], timesteps)
        random = generator_for(seed + offset + 1)
        downs, mid = controlnet.residual_shapes(unet_config, batch, height, width)
        return base + tuple(torch.randn(shape, generator=random) * 0.5 for shape in downs + [mid])

    specs.append(dict(name="unet_controlnet", family="sd15", kind="unet",
                      model=parts.build_unet_with_residuals(unet_config, seed + 2), input_names=input_names,
                      output_names=["out_sample"], dynamic_axes=unet_axes, config=unet_config, opsets=(17,),
                      sets=[unet_residual_inputs(114, 1, 16, 16, [981]),
                            unet_residual_inputs(115, 2, 8, 24, [500, 21])]))
    return specs


# KILN_ONLY=name,name regenerates only those components into the committed tree (the others and their manifest
# entries are kept as they are) — for adding a fixture on a busy machine. The edits above that call these keep every
# line of main() and write_component() where it was: TorchScript's debug tables record those lines, so the
# selected components come out byte-identical to a full run's.
def only_some():
    return bool(os.environ.get("KILN_ONLY"))


def selected(specs):
    names = [name for name in os.environ.get("KILN_ONLY", "").split(",") if name]
    unknown = sorted(set(names) - {spec["name"] for spec in specs})
    if unknown:
        raise SystemExit("KILN_ONLY names no component: %s" % ", ".join(unknown))
    return [spec for spec in specs if not names or spec["name"] in names]


def with_the_others(components):
    if not only_some():
        return components
    with open(os.path.join(FIXTURES, "manifest.json"), encoding="utf-8") as handle:
        merged = json.load(handle)["components"]
    merged.update(components)
    return merged
