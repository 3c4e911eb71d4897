"""Seed inputs for the runner's fuzz targets (runner/src/test/resources/dev/kiln/runner/*/*FuzzTestInputs/).

Run from the repository root:  /usr/bin/python3 runner/src/test/python/fuzz_seeds.py
Seeds are the committed pipelines' own files (scheduler configs, component configs, tokenizers), a set of
prompts covering Unicode's hard cases, and small images of every PNG colour type and bit depth (plus the tiny
pipeline's reference image, a BMP and a GIF, since the init-image reader takes what ImageIO reads).
Multi-file targets take one input whose sections are separated by NUL bytes (see FuzzFolder). Byte-identical
on rerun.
"""
import json
import os
import shutil
import struct
import zlib

RESOURCES = "runner/src/test/resources/dev/kiln/runner"
PIPELINES = "testdata/pipelines"


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)


def scheduler_seeds():
    folder = os.path.join(RESOURCES, "scheduler/SchedulerConfigFuzzTestInputs/config")
    for pipeline in ("sd15", "sd2", "sdxl", "tiny-sd"):
        write(folder, pipeline, read(os.path.join(PIPELINES, pipeline, "scheduler/scheduler_config.json")))
    base = json.loads(read(os.path.join(PIPELINES, "sd15/scheduler/scheduler_config.json")))
    for name, changes in [
        ("euler-karras", {"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": True}),
        ("lcm-trailing", {"_class_name": "LCMScheduler", "timestep_spacing": "trailing", "original_inference_steps": 50}),
        ("v-prediction-linspace", {"prediction_type": "v_prediction", "timestep_spacing": "linspace", "beta_schedule": "linear"}),
        ("clip-sample", {"clip_sample": True, "clip_sample_range": 1.5, "set_alpha_to_one": True}),
        ("few-timesteps", {"num_train_timesteps": 3, "steps_offset": 2}),
        # The hostile values of issue 9's report, so the regression run replays them.
        ("steps-offset-5000", {"steps_offset": 5000}),
        ("steps-offset-negative", {"steps_offset": -50}),
        ("train-timesteps-2e9", {"num_train_timesteps": 2e9}),
        ("betas-reversed", {"beta_start": 0.012, "beta_end": 0.00085}),
        ("betas-negative", {"beta_start": -0.5, "beta_end": 1.5}),
        ("strings-for-numbers", {"beta_start": "abc", "num_train_timesteps": "many"}),
        ("lcm-original-steps-past-training", {"_class_name": "LCMScheduler", "original_inference_steps": 5000}),
    ]:
        write(folder, name, json.dumps(dict(base, **changes), indent=1, sort_keys=True).encode())


def pipeline_seeds():
    folder = os.path.join(RESOURCES, "pipeline/PipelineFolderFuzzTestInputs/configs")
    for pipeline in ("sd15", "sd2", "sdxl", "tiny-sd"):
        parts = [read(os.path.join(PIPELINES, pipeline, part)) for part in
                 ("model_index.json", "unet/config.json", "vae_decoder/config.json", "scheduler/scheduler_config.json")]
        write(folder, pipeline, b"\0".join(parts))
    index, unet, vae, scheduler = [read(os.path.join(PIPELINES, "sd15", part)) for part in
                                   ("model_index.json", "unet/config.json", "vae_decoder/config.json", "scheduler/scheduler_config.json")]
    for name, unet_changes, vae_changes in [
        ("unet-sample-size-1e6", {"sample_size": 1e6}, {}),
        ("vae-32-blocks", {}, {"block_out_channels": [128] * 32}),
        ("vae-scaling-nan", {}, {"scaling_factor": "NaN"}),
        ("latent-channels-zero", {"in_channels": 0}, {"latent_channels": 0}),
    ]:
        changed_unet = json.dumps(dict(json.loads(unet), **unet_changes), indent=1, sort_keys=True).encode()
        changed_vae = json.dumps(dict(json.loads(vae), **vae_changes), indent=1, sort_keys=True).encode()
        write(folder, name, b"\0".join([index, changed_unet, changed_vae, scheduler]))


PROMPTS = {
    "ascii": "a red circle on a white background",
    "weights-and-punctuation": "(masterpiece:1.2), a cat's hat, 4k!!! -- [blue] {sky}",
    "accents-nfd": "cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "accents-nfc": "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e \u00c5ngstr\u00f6m",
    "cjk": "\u5bcc\u58eb\u5c71\u3068\u685c \u65e5\u672c\u753b",
    "emoji-astral": "a \U0001F431 wearing \U0001F3A9 \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EF\U0001F1F5",
    "rtl-and-marks": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u0915\u094d\u0937",
    "whitespace": "\ta\u00a0red\u3000circle\u2028on\r\nwhite\u200b ",
    "case-folding": "\u0130stanbul STRASSE \u1e9e \u03a3\u039f\u03a6\u0399\u0391 \uff21\uff22\uff23",
    "specials": "<|startoftext|>a<|endoftext|> <|endoftext|>",
    "digits": "1234567890 \u0661\u0662\u0663 \u2460\u2461 \u00bd",
    "long": " ".join(["a small yellow square in the top left"] * 12),
    "empty": "",
}


def tokenizer_seeds():
    folder = os.path.join(RESOURCES, "tokenizer/ClipTokenizerFuzzTestInputs/folder")
    for name, path in (("clip", "testdata/fixtures/tokenizer"), ("tiny-sd", os.path.join(PIPELINES, "tiny-sd/tokenizer")),
                       ("sdxl-second", os.path.join(PIPELINES, "sdxl/tokenizer_2"))):
        parts = [read(os.path.join(path, part)) for part in ("vocab.json", "merges.txt", "tokenizer_config.json")]
        write(folder, name, b"\0".join(parts + [PROMPTS["emoji-astral"].encode()]))
    folder = os.path.join(RESOURCES, "tokenizer/ClipTokenizerFuzzTestInputs/prompt")
    for name, text in PROMPTS.items():
        write(folder, name, text.encode("utf-8"))
    # UTF-16 code units the target also decodes: a lone high and a lone low surrogate around text.
    write(folder, "lone-surrogates", b"a\x00\x3d\xd8b\x00\x00\xdcc\x00")


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def png(width, height, bit_depth, colour_type, rows, interlace=0, extra=b""):
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    raw = b"".join(b"\0" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def adam7_rgb8(width, height):
    """An interlaced RGB image: each Adam7 pass's rows, filtered with filter 0, in one zlib stream."""
    pixel = lambda x, y: bytes(((x * 31) & 0xff, (y * 29) & 0xff, ((x + y) * 13) & 0xff))
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        columns = range(x0, width, dx)
        if not columns:
            continue
        for y in range(y0, height, dy):
            raw += b"\0" + b"".join(pixel(x, y) for x in columns)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def image_seeds():
    folder = os.path.join(RESOURCES, "image/InitImageFuzzTestInputs/png")
    write(folder, "tiny-sd-reference.png", read(os.path.join(PIPELINES, "tiny-sd/reference/image.png")))
    gradient = [bytes((x * 32 + y * 4) & 0xff for x in range(8)) for y in range(8)]
    write(folder, "gray8.png", png(8, 8, 8, 0, gradient))
    write(folder, "gray1.png", png(8, 2, 1, 0, [b"\xa5", b"\x5a"]))
    write(folder, "gray4.png", png(4, 2, 4, 0, [b"\x01\x23", b"\x45\x67"]))
    write(folder, "gray16.png", png(2, 2, 16, 0, [b"\x00\x00\xff\xff", b"\x80\x00\x12\x34"]))
    colours = [[(x * 60, y * 60, 128) for x in range(4)] for y in range(4)]
    write(folder, "rgb8.png", png(4, 4, 8, 2, [bytes(value for pixel in row for value in pixel) for row in colours]))
    write(folder, "rgb16.png", png(2, 1, 16, 2, [bytes(range(12))]))
    palette = chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])) + chunk(b"tRNS", bytes([255, 128]))
    write(folder, "palette2.png", png(4, 2, 2, 3, [b"\x1b", b"\xe4"], extra=palette))
    write(folder, "gray-alpha8.png", png(2, 2, 8, 4, [b"\x10\xff\x20\x80", b"\x30\x00\x40\x40"]))
    write(folder, "rgba8.png", png(2, 1, 8, 6, [b"\xff\x00\x00\x80\x00\xff\x00\xff"]))
    write(folder, "interlaced-rgb8.png", adam7_rgb8(8, 8))
    gamma = chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"tEXt", b"parameters\0a red circle")
    write(folder, "ancillary-chunks.png", png(1, 1, 8, 2, [b"\x01\x02\x03"], extra=gamma))
    bmp_pixels = b"\x00\x00\xff" + b"\x00" + b"\xff\x00\x00" + b"\x00"
    bmp = b"BM" + struct.pack("<IHHI", 14 + 40 + len(bmp_pixels), 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 1, 2, 1, 24, 0, len(bmp_pixels), 2835, 2835, 0, 0) + bmp_pixels
    write(folder, "rgb24.bmp", bmp)
    gif = (b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00" + b"\xff\x00\x00\x00\x00\x00"
           + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b")
    write(folder, "red.gif", gif)
    # Headers that claim huge or impossible sizes over a tiny payload: decoders must be stopped before allocating.
    write(folder, "claims-100000x100000.png", png(100000, 100000, 8, 2, [b"\x01\x02\x03"]))
    write(folder, "claims-20000x20000.png", png(20000, 20000, 8, 2, [b"\x01\x02\x03"]))
    write(folder, "claims-2147483647-wide.png", png(2147483647, 1, 8, 0, [b"\x01"]))
    write(folder, "zero-width.png", png(0, 1, 8, 0, [b""]))


def main():
    for target in ("scheduler/SchedulerConfigFuzzTestInputs", "pipeline/PipelineFolderFuzzTestInputs",
                   "tokenizer/ClipTokenizerFuzzTestInputs", "image/InitImageFuzzTestInputs"):
        shutil.rmtree(os.path.join(RESOURCES, target), ignore_errors=True)
    scheduler_seeds()
    pipeline_seeds()
    tokenizer_seeds()
    image_seeds()


if __name__ == "__main__":
    main()
