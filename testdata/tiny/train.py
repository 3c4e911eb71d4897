"""Trains Kiln's tiny text-to-image pipeline from scratch on procedural scenes, on CPU.

    /usr/bin/python3 testdata/tiny/train.py            # all phases: data, tokenizer, VAE, latents, UNet
    /usr/bin/python3 testdata/tiny/train.py --phase unet   # resume from the saved VAE

Phases (checkpoints and logs under testdata/tiny/work/, which git ignores):
 1. dataset: DATASET_SIZE seeded scenes with CAPTIONS_PER_IMAGE paraphrased captions each;
 2. tokenizer: CLIP-format BPE over the caption vocabulary (testdata/generator/kiln_sd/clip_bpe.py);
 3. VAE: AutoencoderKL, foreground-weighted L1+MSE plus a small KL term; judged on held-out reconstructions;
 4. latents: the whole dataset encoded once (posterior mean and std), scaling factor = 1/std(latents);
 5. UNet + text encoder jointly: epsilon prediction, SD's scaled_linear betas, 10 % empty captions for
    classifier-free guidance, min-SNR-5 loss weights (faster convergence, same epsilon objective), EMA weights.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "generator"))

import config  # noqa: E402
import judge  # noqa: E402
import models  # noqa: E402
import scenes  # noqa: E402
from kiln_sd.clip_bpe import build_tokenizer  # noqa: E402

WORK = os.path.join(HERE, "work")


def log(message, handle=None):
    line = time.strftime("%H:%M:%S ") + message
    print(line, flush=True)
    if handle is not None:
        handle.write(line + "\n")
        handle.flush()


def alphas_cumprod():
    s = config.SCHEDULER
    betas = torch.linspace(s["beta_start"] ** 0.5, s["beta_end"] ** 0.5, s["num_train_timesteps"],
                           dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def cosine_rate(step, steps, start, end, warmup=0):
    if step < warmup:
        return start * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))


def to_tensor(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(tensor):
    return ((tensor.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def build_data():
    images, masks, captions, attributes = scenes.make_dataset(config.DATASET_SIZE + config.HOLDOUT_SIZE,
                                                              config.SEED)
    rng = np.random.default_rng(config.SEED + 1)
    caption_sets = [[captions[i]] + [scenes.caption_for(attributes[i], rng)
                                     for _ in range(config.CAPTIONS_PER_IMAGE - 1)]
                    for i in range(len(captions))]
    return images, masks, caption_sets, attributes


def train_vae(images, masks, log_file):
    torch.manual_seed(config.SEED + 2)
    settings = config.VAE_TRAINING
    vae = models.AutoencoderKL(config.VAE)
    log("vae parameters %d (encoder %d, decoder %d)" % (
        models.parameter_count(vae), models.parameter_count(vae.encoder), models.parameter_count(vae.decoder)),
        log_file)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=settings["learning_rate"], weight_decay=0.0)
    generator = np.random.default_rng(config.SEED + 3)
    count = config.DATASET_SIZE
    started = time.time()
    curve = []
    running = 0.0
    for step in range(settings["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = cosine_rate(step, settings["steps"], settings["learning_rate"],
                                      settings["final_learning_rate"], warmup=50)
        index = generator.integers(0, count, size=settings["batch"])
        x = to_tensor(images[index])
        # pixels on and next to the shape weigh more: the background dominates the plain mean otherwise
        weight = torch.from_numpy(masks[index]).float()[:, None] / 255.0
        weight = F.max_pool2d(weight, 3, stride=1, padding=1)
        weight = 1.0 + settings["foreground_weight"] * weight
        moments = vae.encode_parameters(x)
        mean, log_variance = moments.chunk(2, dim=1)
        log_variance = log_variance.clamp(-30.0, 20.0)
        z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        reconstruction = vae.decode(z)
        error = reconstruction - x
        reconstruction_loss = ((weight * (error.abs() + error.pow(2))).mean() / weight.mean())
        kl = 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).mean()
        loss = reconstruction_loss + settings["kl_weight"] * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += reconstruction_loss.item()
        if (step + 1) % 100 == 0:
            elapsed = time.time() - started
            curve.append({"step": step + 1, "reconstruction": running / 100, "kl": kl.item(),
                          "seconds": round(elapsed, 1)})
            log("vae step %d recon %.5f kl %.3f  %.0fs elapsed, %.0fs to go" % (
                step + 1, running / 100, kl.item(), elapsed, elapsed / (step + 1) * (settings["steps"] - step - 1)),
                log_file)
            running = 0.0
    return vae, curve, time.time() - started


@torch.no_grad()
def judge_reconstructions(vae, images, attributes, log_file):
    x = to_tensor(images)
    mean = vae.encode_parameters(x).chunk(2, dim=1)[0]
    reconstructions = to_uint8(vae.decode(mean))
    colour = shape = background = 0
    for image, truth in zip(reconstructions, attributes):
        verdict = judge.judge(image)
        colour += verdict["colour"] == truth["colour"]
        shape += verdict["shape"] == truth["shape"]
        background += verdict["background"] == truth["background"]
    count = len(attributes)
    original_shape = sum(judge.judge(image)["shape"] == truth["shape"] for image, truth in zip(images, attributes))
    psnr = 10 * math.log10(4.0 / F.mse_loss(to_tensor(reconstructions), x).item())
    scores = {"colour": colour / count, "shape": shape / count, "background": background / count,
              "shape_on_originals": original_shape / count, "psnr_db": psnr, "count": count}
    log("vae reconstructions: " + json.dumps(scores), log_file)
    return scores


@torch.no_grad()
def encode_latents(vae, images):
    means, stds = [], []
    for start in range(0, len(images), 500):
        moments = vae.encode_parameters(to_tensor(images[start:start + 500]))
        mean, log_variance = moments.chunk(2, dim=1)
        means.append(mean)
        stds.append(torch.exp(0.5 * log_variance.clamp(-30.0, 20.0)))
    return torch.cat(means), torch.cat(stds)


class Ema:
    def __init__(self, modules, decay):
        self.decay = decay
        self.shadows = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]
        self.modules = modules

    @torch.no_grad()
    def update(self, step):
        decay = min(self.decay, (1 + step) / (10 + step))
        for module, shadow in zip(self.modules, self.shadows):
            for key, value in module.state_dict().items():
                if value.dtype.is_floating_point:
                    shadow[key].mul_(decay).add_(value.detach(), alpha=1 - decay)
                else:
                    shadow[key].copy_(value)


def train_unet(latent_means, latent_stds, scaling_factor, token_ids, log_file, steps=None, resume=False):
    """resume: continue from work/unet.pt (raw weights, EMA carried on) with CONTINUE_TRAINING's schedule."""
    torch.manual_seed(config.SEED + (6 if resume else 4))
    settings = dict(config.UNET_TRAINING)
    if resume:
        settings.update(config.CONTINUE_TRAINING)
    if steps:
        settings["steps"] = steps
    text_config = dict(config.TEXT_ENCODER, vocab_size=int(token_ids.max()) + 1)
    text_encoder = models.CLIPTextModel(text_config)
    unet = models.UNet2DConditionModel(config.UNET)
    if resume:
        checkpoint = torch.load(os.path.join(WORK, "unet.pt"))
        unet.load_state_dict(checkpoint["unet_raw"])
        text_encoder.load_state_dict(checkpoint["text_encoder_raw"])
    log("unet parameters %d, text encoder parameters %d" % (
        models.parameter_count(unet), models.parameter_count(text_encoder)), log_file)
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=settings["learning_rate"], weight_decay=0.01)
    ema = Ema([unet, text_encoder], settings["ema_decay"])
    if resume:
        ema.shadows = [checkpoint["unet"], checkpoint["text_encoder"]]
    cumulative = alphas_cumprod().float()
    snr = cumulative / (1 - cumulative)
    loss_weight = torch.clamp(snr, max=settings["min_snr_gamma"]) / snr
    empty_ids = token_ids[-1]  # the last row is the empty prompt
    generator = np.random.default_rng(config.SEED + (7 if resume else 5))
    count, captions_per_image = token_ids.shape[0] - 1, config.CAPTIONS_PER_IMAGE
    images_count = count // captions_per_image
    started = time.time()
    curve = []
    running = 0.0
    for step in range(settings["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = cosine_rate(step, settings["steps"], settings["learning_rate"],
                                      settings["final_learning_rate"], warmup=settings["warmup_steps"])
        index = torch.from_numpy(generator.integers(0, images_count, size=settings["batch"]))
        which = torch.from_numpy(generator.integers(0, captions_per_image, size=settings["batch"]))
        ids = token_ids[index * captions_per_image + which]
        dropped = torch.from_numpy(generator.random(settings["batch"]) < settings["caption_dropout"])
        ids = torch.where(dropped[:, None], empty_ids[None, :], ids)
        x0 = (latent_means[index] + latent_stds[index] * torch.randn_like(latent_means[index])) * scaling_factor
        t = torch.randint(0, 1000, (settings["batch"],))
        noise = torch.randn_like(x0)
        a = cumulative[t][:, None, None, None]
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        context = text_encoder(ids)[0]
        prediction = unet(noisy, t, context)
        per_sample = (prediction - noise).pow(2).mean(dim=(1, 2, 3))
        loss = (per_sample * loss_weight[t]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        ema.update(step + (10000 if resume else 0))  # a resumed EMA is already warm
        running += per_sample.mean().item()
        if (step + 1) % 50 == 0:
            elapsed = time.time() - started
            curve.append({"step": step + 1, "epsilon_mse": running / 50, "seconds": round(elapsed, 1)})
            log("unet step %d eps-mse %.4f  %.0fs elapsed, %.0fs to go" % (
                step + 1, running / 50, elapsed, elapsed / (step + 1) * (settings["steps"] - step - 1)), log_file)
            running = 0.0
        if (step + 1) % 400 == 0 or step + 1 == settings["steps"]:
            save_unet(unet, text_encoder, ema, text_config, os.path.join(WORK, "unet.pt"))
    return unet, text_encoder, ema, text_config, curve, time.time() - started


def save_unet(unet, text_encoder, ema, text_config, path):
    torch.save({"unet": ema.shadows[0], "text_encoder": ema.shadows[1], "unet_raw": unet.state_dict(),
                "text_encoder_raw": text_encoder.state_dict(), "text_config": text_config}, path + ".tmp")
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=["all", "unet", "continue"], default="all",
                        help="unet: retrain UNet + text encoder on the saved VAE; continue: train the saved UNet on")
    parser.add_argument("--unet-steps", type=int, default=None)
    arguments = parser.parse_args()
    # One thread: on this shared 2-core machine two OpenMP threads collapse under load (measured 7.9 s per
    # VAE step with 2 threads vs 0.5 s with 1 while Maven builds ran; unloaded 2 threads give ~0.27 s).
    torch.set_num_threads(1)
    os.makedirs(WORK, exist_ok=True)
    log_file = open(os.path.join(WORK, "train.log"), "a")
    vae_summary_path = os.path.join(WORK, "vae_summary.json")
    summary_path = os.path.join(WORK, "training_summary.json")
    if arguments.phase == "continue":
        summary = json.load(open(summary_path))
    elif arguments.phase == "unet":
        summary = json.load(open(vae_summary_path))
    else:
        summary = {}

    started = time.time()
    images, masks, caption_sets, attributes = build_data()
    log("dataset: %d images in %.0fs" % (len(images), time.time() - started), log_file)
    tokenizer_dir = os.path.join(WORK, "tokenizer")
    tokenizer = build_tokenizer(scenes.caption_vocabulary(), tokenizer_dir)
    train_images, train_masks = images[:config.DATASET_SIZE], masks[:config.DATASET_SIZE]
    hold_images, hold_attributes = images[config.DATASET_SIZE:], attributes[config.DATASET_SIZE:]

    if arguments.phase == "all":
        vae, vae_curve, vae_seconds = train_vae(train_images, train_masks, log_file)
        torch.save(vae.state_dict(), os.path.join(WORK, "vae.pt"))
        vae_scores = judge_reconstructions(vae, hold_images, hold_attributes, log_file)
        summary.update({"vae_seconds": vae_seconds, "vae_curve": vae_curve, "vae_reconstruction": vae_scores})
        with open(vae_summary_path, "w") as handle:
            json.dump(summary, handle, indent=1)
    else:
        vae = models.AutoencoderKL(config.VAE)
        vae.load_state_dict(torch.load(os.path.join(WORK, "vae.pt")))
    vae.eval()

    encode_started = time.time()
    latent_means, latent_stds = encode_latents(vae, train_images)
    scaling_factor = float(1.0 / latent_means.std())
    log("latents %s encoded in %.0fs, std %.4f -> scaling factor %.5f" % (
        tuple(latent_means.shape), time.time() - encode_started, latent_means.std().item(), scaling_factor),
        log_file)
    token_ids = torch.tensor([tokenizer(caption) for captions in caption_sets[:config.DATASET_SIZE]
                              for caption in captions] + [tokenizer("")], dtype=torch.int64)
    if arguments.phase != "continue":
        summary.update({"latent_seconds": time.time() - encode_started, "scaling_factor": scaling_factor})
    elif abs(summary["scaling_factor"] - scaling_factor) > 1e-6:
        raise SystemExit("re-encoded latents differ from the saved run's (scaling factor %.6f vs %.6f)" % (
            scaling_factor, summary["scaling_factor"]))

    unet, text_encoder, ema, text_config, unet_curve, unet_seconds = train_unet(
        latent_means, latent_stds, scaling_factor, token_ids, log_file, arguments.unet_steps,
        resume=arguments.phase == "continue")
    if arguments.phase == "continue":
        summary.setdefault("continued", []).append({"seconds": unet_seconds, "curve": unet_curve,
                                                    "setup_seconds": time.time() - started - unet_seconds})
    else:
        summary.update({"unet_seconds": unet_seconds, "unet_curve": unet_curve})
    summary.update({"text_config": text_config,
                    "parameters": {
                        "text_encoder": models.parameter_count(text_encoder),
                        "unet": models.parameter_count(unet),
                        "vae_encoder": models.parameter_count(vae.encoder) + models.parameter_count(vae.quant_conv),
                        "vae_decoder": models.parameter_count(vae.decoder)
                        + models.parameter_count(vae.post_quant_conv)},
                    })
    if arguments.phase == "all":
        summary["total_seconds"] = time.time() - started
    elif arguments.phase == "unet":
        summary["total_seconds"] = time.time() - started + summary.get("vae_seconds", 0)
    else:
        summary["total_seconds"] = summary.get("total_seconds", 0) + time.time() - started
    with open(summary_path + ".tmp", "w") as handle:
        json.dump(summary, handle, indent=1)
    os.replace(summary_path + ".tmp", summary_path)
    log("done in %.0fs" % (time.time() - started), log_file)


if __name__ == "__main__":
    main()
