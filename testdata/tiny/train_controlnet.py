"""Trains the tiny ControlNet on top of the committed tiny-sd pipeline, on CPU, one thread, seeded.

    /usr/bin/python3 testdata/tiny/train_controlnet.py            # dataset, latents, ControlNet (work/)
    /usr/bin/python3 testdata/tiny/train_controlnet.py --measure 20   # time 20 steps and stop

The text encoder, UNet and VAE are the committed tiny-sd weights (tiny-sd-torchscript), frozen. Only the
ControlNet trains: initialised from the UNet's encoder (ControlNetModel.from_unet), epsilon objective with the
frozen UNet taking the ControlNet's residuals, SD's scaled_linear betas, min-SNR-5 weights, 30 % empty captions
(so the control image works under classifier-free guidance's unconditional half too), EMA weights.

Data: CONTROLNET_TRAINING["images"] scenes of scenes.py's palette and shapes with the centre sampled
continuously over the frame (not scenes.py's 5 grid positions), each with its control image (the filled mask,
controlnet.py) and honest captions that name the position only a quarter of the time it has a name, so the
control image, not the caption, decides where the shape goes. Checkpoints and logs under testdata/tiny/work/.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import controlnet  # noqa: E402
import models  # noqa: E402
from train import Ema, alphas_cumprod, cosine_rate, encode_latents, log, to_tensor  # noqa: E402,F401

WORK = controlnet.WORK
DATA_PATH = os.path.join(WORK, "controlnet_data.npz")
CHECKPOINT = os.path.join(WORK, "controlnet.pt")


def build_data(settings, tokenizer, vae, log_file):
    started = time.time()
    images, masks, captions = controlnet.make_dataset(settings["images"], settings["captions_per_image"],
                                                      controlnet.CONTROLNET_SEED, settings)
    log("controlnet dataset: %d images in %.0fs" % (len(images), time.time() - started), log_file)
    started = time.time()
    means, stds = encode_latents(vae, images)
    log("latents encoded in %.0fs" % (time.time() - started), log_file)
    flat = [caption for image_captions in captions for caption in image_captions] + [""]
    unique = sorted(set(flat))
    position = {c: i for i, c in enumerate(unique)}
    caption_index = np.array([position[c] for c in flat], dtype=np.int64)
    ids = np.array([tokenizer(c) for c in unique], dtype=np.int64)
    return {"masks": masks, "latent_means": means.numpy(), "latent_stds": stds.numpy(), "caption_ids": ids,
            "caption_index": caption_index, "captions": np.array(flat)}


def train(data, text_encoder, unet, scaling_factor, settings, log_file, measure=None):
    torch.manual_seed(controlnet.CONTROLNET_SEED + 1)
    model = models.ControlNetModel.from_unet(unet, controlnet.CONDITIONING_CHANNELS)
    model.train()
    log("controlnet parameters %d (conditioning embedding %d); unet %d frozen" % (
        models.parameter_count(model), models.parameter_count(model.controlnet_cond_embedding),
        models.parameter_count(unet)), log_file)
    with torch.no_grad():
        contexts = torch.cat([text_encoder(torch.from_numpy(data["caption_ids"][i:i + 256]))[0]
                              for i in range(0, len(data["caption_ids"]), 256)])
    log("%d distinct captions encoded" % len(contexts), log_file)
    masks = data["masks"]
    means = torch.from_numpy(data["latent_means"])
    stds = torch.from_numpy(data["latent_stds"])
    caption_index = torch.from_numpy(data["caption_index"])
    empty_context_index = caption_index[-1]
    per_image = settings["captions_per_image"]
    count = len(masks)
    parameters = list(model.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=settings["learning_rate"], weight_decay=0.01)
    ema = Ema([model], settings["ema_decay"])
    cumulative = alphas_cumprod().float()
    snr = cumulative / (1 - cumulative)
    loss_weight = torch.clamp(snr, max=settings["min_snr_gamma"]) / snr
    generator = np.random.default_rng(controlnet.CONTROLNET_SEED + 2)
    scale = torch.tensor(1.0)
    steps = measure or settings["steps"]
    batch = settings["batch"]
    started = time.time()
    curve = []
    running = 0.0
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_rate(step, settings["steps"], settings["learning_rate"],
                                      settings["final_learning_rate"], warmup=settings["warmup_steps"])
        index = generator.integers(0, count, size=batch)
        which = generator.integers(0, per_image, size=batch)
        dropped = torch.from_numpy(generator.random(batch) < settings["caption_dropout"])
        index_tensor = torch.from_numpy(index)
        context_rows = torch.where(dropped, empty_context_index, caption_index[index_tensor * per_image
                                                                             + torch.from_numpy(which)])
        context = contexts[context_rows]
        cond = controlnet.control_tensor(masks[index])
        x0 = (means[index_tensor] + stds[index_tensor] * torch.randn_like(means[index_tensor])) * scaling_factor
        t = torch.randint(0, 1000, (batch,))
        noise = torch.randn_like(x0)
        a = cumulative[t][:, None, None, None]
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        down, mid = model(noisy, t, context, cond, scale)
        prediction = unet(noisy, t, context, down, mid)
        per_sample = (prediction - noise).pow(2).mean(dim=(1, 2, 3))
        loss = (per_sample * loss_weight[t]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        ema.update(step)
        running += per_sample.mean().item()
        if measure:
            log("step %d %.2fs" % (step + 1, time.time() - started), log_file)
            continue
        if (step + 1) % 50 == 0:
            elapsed = time.time() - started
            curve.append({"step": step + 1, "epsilon_mse": running / 50, "seconds": round(elapsed, 1)})
            log("controlnet step %d eps-mse %.4f  %.0fs elapsed, %.0fs to go" % (
                step + 1, running / 50, elapsed, elapsed / (step + 1) * (steps - step - 1)), log_file)
            running = 0.0
        if (step + 1) % 400 == 0 or step + 1 == steps:
            torch.save({"controlnet": ema.shadows[0], "controlnet_raw": model.state_dict(),
                        "conditioning_embedding_out_channels": controlnet.CONDITIONING_CHANNELS,
                        "step": step + 1}, CHECKPOINT + ".tmp")
            os.replace(CHECKPOINT + ".tmp", CHECKPOINT)
    return model, curve, time.time() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--measure", type=int, default=None, help="time this many steps and print a hash of the weights; save no checkpoint")
    arguments = parser.parse_args()
    # One thread, as train.py: deterministic and robust to the shared machine's load.
    torch.set_num_threads(1)
    os.makedirs(WORK, exist_ok=True)
    log_file = open(os.path.join(WORK, "controlnet_train.log"), "a")
    settings = controlnet.CONTROLNET_TRAINING
    started = time.time()
    text_encoder, unet, vae, tokenizer, scaling_factor = controlnet.load_tiny()
    if os.path.exists(DATA_PATH):
        data = dict(np.load(DATA_PATH))
        log("loaded %s" % DATA_PATH, log_file)
    else:
        data = build_data(settings, tokenizer, vae, log_file)
        np.savez(DATA_PATH + ".tmp.npz", **data)
        os.replace(DATA_PATH + ".tmp.npz", DATA_PATH)
    data_seconds = time.time() - started
    model, curve, seconds = train(data, text_encoder, unet, scaling_factor, settings, log_file, arguments.measure)
    if arguments.measure:
        # a fingerprint of the weights after the measured steps: two runs must print the same (reproducibility)
        digest = hashlib.sha256()
        for key, value in sorted(model.state_dict().items()):
            digest.update(key.encode() + value.numpy().tobytes())
        log("weights after %d steps: sha256 %s" % (arguments.measure, digest.hexdigest()), log_file)
        return
    summary = {"settings": settings, "conditioning_embedding_out_channels": controlnet.CONDITIONING_CHANNELS,
               "parameters": {"controlnet": models.parameter_count(model),
                              "conditioning_embedding": models.parameter_count(model.controlnet_cond_embedding)},
               "data_seconds": round(data_seconds, 1), "train_seconds": round(seconds, 1),
               "total_seconds": round(time.time() - started, 1), "curve": curve}
    path = os.path.join(WORK, "controlnet_summary.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(summary, handle, indent=1)
    os.replace(path + ".tmp", path)
    log("done in %.0fs" % (time.time() - started), log_file)


if __name__ == "__main__":
    main()
