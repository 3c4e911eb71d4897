"""Reference text-to-image sampler for the tiny pipeline: DDIM (eta 0), SD 1.x conventions.

The exact math (also written out in testdata/pipelines/tiny-sd/reference/README.md for the Java runner):
  cond   = text_encoder(tokenizer(prompt)).last_hidden_state       ids padded to 77 with <|endoftext|>
  uncond = text_encoder(tokenizer("")).last_hidden_state
  alphas_cumprod[i] = prod_{j<=i} (1 - beta_j),  beta = linspace(sqrt(0.00085), sqrt(0.012), 1000) ** 2
  timesteps = [(steps - 1 - k) * (1000 // steps) + 1 for k in range(steps)]    ("leading", steps_offset 1)
  latents = torch.randn([1, 4, 8, 8], generator=torch.Generator("cpu").manual_seed(seed))   (init sigma 1)
  for t in timesteps:
      eps_u, eps_c = unet(cat[latents, latents], t, cat[uncond, cond]).chunk(2)
      eps = eps_u + guidance * (eps_c - eps_u)
      a_t = alphas_cumprod[t];  a_prev = alphas_cumprod[t - 1000 // steps] if t - 1000 // steps >= 0
                                           else alphas_cumprod[0]             (set_alpha_to_one = false)
      x0 = (latents - sqrt(1 - a_t) * eps) / sqrt(a_t)
      latents = sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps
  image = vae_decoder(latents / scaling_factor);  pixels = round(clamp(image / 2 + 0.5, 0, 1) * 255)
"""

import torch

import config


def alphas_cumprod():
    s = config.SCHEDULER
    betas = torch.linspace(s["beta_start"] ** 0.5, s["beta_end"] ** 0.5, s["num_train_timesteps"],
                           dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


def ddim_timesteps(steps, train_steps=1000, offset=1):
    ratio = train_steps // steps
    return [(steps - 1 - k) * ratio + offset for k in range(steps)]


def initial_noise(seed, batch=1):
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn([batch, 4, 8, 8], generator=generator)


@torch.no_grad()
def sample(text_encoder, unet, vae, tokenizer, prompts, seeds, scaling_factor, steps=20, guidance=7.5,
           record=None):
    """Returns decoded images [N,3,64,64] in [-1,1] and final latents. Each (prompt, seed) pair gets its own
    seeded [1,4,8,8] noise, so results do not depend on how prompts are batched."""
    cumulative = alphas_cumprod()
    ids = torch.tensor([tokenizer(p) for p in prompts], dtype=torch.int64)
    empty = torch.tensor([tokenizer("")] * len(prompts), dtype=torch.int64)
    cond = text_encoder(ids)[0]
    uncond = text_encoder(empty)[0]
    context = torch.cat([uncond, cond])
    latents = torch.cat([initial_noise(seed) for seed in seeds])
    if record is not None:
        record["input_ids"] = ids
        record["uncond_input_ids"] = empty
        record["initial_noise"] = latents.clone()
        record["steps"] = []
    ratio = 1000 // steps
    for t in ddim_timesteps(steps):
        timestep = torch.tensor([t], dtype=torch.int64)
        eps_u, eps_c = unet(torch.cat([latents, latents]), timestep, context).chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        a_t = cumulative[t]
        a_prev = cumulative[t - ratio] if t - ratio >= 0 else cumulative[0]
        x0 = (latents - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        latents = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        if record is not None:
            record["steps"].append({"timestep": t, "latents": latents.clone()})
    images = vae.decode(latents / scaling_factor)
    return images, latents


def to_uint8(images):
    """[N,3,H,W] in [-1,1] -> uint8 [N,H,W,3], as diffusers' postprocess rounds."""
    return ((images / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
