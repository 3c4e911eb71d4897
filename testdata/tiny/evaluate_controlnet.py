"""Judges the trained tiny ControlNet: does the generated shape land where the control image puts it?

    /usr/bin/python3 testdata/tiny/evaluate_controlnet.py [--out DIR] [--raw]

4 positions (off scenes.py's grid, none at the centre) x 4 shapes x 3 seeds, DDIM 20 steps, guidance 7.5 (as the
tiny evaluation), control image = the shape's filled mask (medium size, radius 15) at the position, the same
control for both classifier-free-guidance halves, conditioning_scale 1. Prompts name colour, shape and background
but no position. The judge finds the generated shape as judge.py does (largest 4-connected component of the
pixels far from the border's background colour) and its centroid is compared with the control mask's centroid:
a hit is a distance <= 8 px. The same prompts and seeds are also run without the ControlNet (the plain UNet) and
with prompts that name the opposite corner (the control must win). Writes eval_scores.json to --out
(default testdata/pipelines/tiny-sd-controlnet).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import controlnet  # noqa: E402
import judge  # noqa: E402
import sampler  # noqa: E402
import scenes  # noqa: E402

POSITIONS = [(20.0, 24.0), (44.0, 20.0), (22.0, 44.0), (42.0, 40.0)]
RADIUS = scenes.SIZES["medium"]
SEEDS = [0, 1, 2]
HIT_DISTANCE = 8.0
REFERENCE = {"prompt": "a blue triangle on a gray background", "shape": "triangle", "centre": [44.0, 20.0], "seed": 0,
             "conditioning_scale": 1.0}


@torch.no_grad()
def sample(text_encoder, unet, vae, tokenizer, scaling_factor, prompts, seeds, model=None, masks=None,
           conditioning_scale=1.0, steps=20, guidance=7.5, record=None):
    """sampler.sample with diffusers' StableDiffusionControlNetPipeline step: the ControlNet sees the same
    latents, timestep and [uncond, cond] text states as the UNet, the control image for both halves."""
    cumulative = sampler.alphas_cumprod()
    ids = torch.tensor([tokenizer(p) for p in prompts], dtype=torch.int64)
    empty = torch.tensor([tokenizer("")] * len(prompts), dtype=torch.int64)
    cond = text_encoder(ids)[0]
    uncond = text_encoder(empty)[0]
    context = torch.cat([uncond, cond])
    latents = torch.cat([sampler.initial_noise(seed) for seed in seeds])
    control = None
    if model is not None:
        control = controlnet.control_tensor(masks)
        control = torch.cat([control, control])
    scale = torch.tensor(float(conditioning_scale))
    if record is not None:
        record.update({"input_ids": ids, "uncond_input_ids": empty, "cond": cond, "uncond": uncond,
                       "initial_noise": latents.clone(), "controlnet_cond": control, "steps": []})
    ratio = 1000 // steps
    for t in sampler.ddim_timesteps(steps):
        timestep = torch.tensor([t], dtype=torch.int64)
        doubled = torch.cat([latents, latents])
        if model is not None:
            down, mid = model(doubled, timestep, context, control, scale)
            prediction = unet(doubled, timestep, context, down, mid)
        else:
            down, mid = None, None
            prediction = unet(doubled, timestep, context)
        eps_u, eps_c = prediction.chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        a_t = cumulative[t]
        a_prev = cumulative[t - ratio] if t - ratio >= 0 else cumulative[0]
        x0 = (latents - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        latents = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        if record is not None:
            record["steps"].append({"timestep": t, "latents": latents.clone(), "down": down, "mid": mid,
                                    "noise_prediction": prediction})
    return vae.decode(latents / scaling_factor), latents


def shape_centroid(image):
    """Centroid (x, y, pixel centres at +0.5) of the judge's foreground component, or None if there is none."""
    pixels = np.asarray(image).astype(np.float64)
    height, width, _ = pixels.shape
    border = np.zeros((height, width), dtype=bool)
    border[:judge.BORDER, :] = border[-judge.BORDER:, :] = True
    border[:, :judge.BORDER] = border[:, -judge.BORDER:] = True
    background = np.array([judge.lower_median(pixels[:, :, c][border]) for c in range(3)])
    distance = np.sqrt(((pixels - background[None, None, :]) ** 2).sum(axis=2))
    largest = distance.max()
    if largest < judge.MIN_DISTANCE:
        return None
    component = judge.largest_component(distance > max(judge.MIN_DISTANCE, 0.5 * largest))
    if component.sum() < judge.MIN_AREA:
        return None
    ys, xs = np.nonzero(component)
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def opposite_corner(cx, cy):
    return ("bottom" if cy < 32 else "top") + " " + ("right" if cx < 32 else "left")


def cases():
    colours, backgrounds = list(scenes.COLOURS), list(scenes.BACKGROUNDS)
    result = []
    for p, (cx, cy) in enumerate(POSITIONS):
        for s, shape in enumerate(scenes.SHAPES):
            for seed in SEEDS:
                colour = colours[(4 * p + s + seed) % len(colours)]
                background = backgrounds[(p + s + seed) % len(backgrounds)]
                result.append({"position": [cx, cy], "shape": shape, "seed": seed, "colour": colour,
                               "background": background,
                               "prompt": "a %s %s on a %s background" % (colour, shape, background),
                               "conflicting_prompt": "a %s %s in the %s on a %s background" % (
                                   colour, shape, opposite_corner(cx, cy), background)})
    return result


def run(components, model, items, prompt_key, batch=48):
    text_encoder, unet, vae, tokenizer, scaling_factor = components
    masks = np.stack([controlnet.control_mask(i["shape"], i["position"][0], i["position"][1], RADIUS)
                      for i in items])
    records, pictures = [], []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        images, _ = sample(text_encoder, unet, vae, tokenizer, scaling_factor, [i[prompt_key] for i in chunk],
                           [i["seed"] for i in chunk], model, masks[start:start + batch])
        pictures.extend(sampler.to_uint8(images))
    for item, mask, picture in zip(items, masks, pictures):
        target = controlnet.mask_centroid(mask)
        found = shape_centroid(picture)
        verdict = judge.judge(picture)
        distance = None if found is None else float(np.hypot(found[0] - target[0], found[1] - target[1]))
        records.append({"prompt": item[prompt_key], "seed": item["seed"], "shape": item["shape"],
                         "position": item["position"], "control_centroid": [round(v, 2) for v in target],
                         "shape_centroid": None if found is None else [round(v, 2) for v in found],
                         "distance": None if distance is None else round(distance, 2),
                         "hit": distance is not None and distance <= HIT_DISTANCE,
                         "judged_shape": verdict["shape"], "judged_colour": verdict["colour"],
                         "colour_ok": verdict["colour"] == item["colour"], "shape_ok": verdict["shape"] == item["shape"]})
    return records, pictures


def summarise(records):
    distances = [r["distance"] if r["distance"] is not None else float("inf") for r in records]
    finite = [d for d in distances if d != float("inf")]
    table = {}
    for shape in scenes.SHAPES:
        row = {}
        for position in POSITIONS:
            chosen = [r for r in records if r["shape"] == shape and r["position"] == list(position)]
            row["%d,%d" % position] = sum(r["hit"] for r in chosen) / len(chosen)
        table[shape] = row
    return {"count": len(records), "hit_rate": round(sum(r["hit"] for r in records) / len(records), 4),
            "no_shape_found": sum(r["distance"] is None for r in records),
            "distance_percentiles": {str(q): round(float(np.percentile(finite, q)), 2) for q in (0, 10, 25, 50, 75, 90, 100)}
            if finite else {},
            "colour_rate": round(sum(r["colour_ok"] for r in records) / len(records), 4),
            "shape_rate": round(sum(r["shape_ok"] for r in records) / len(records), 4),
            "hit_rate_by_shape_and_position": table}


def contact_sheet(rows, path):
    """Rows of 64x64 pictures side by side, 4 px gaps."""
    cell, gap = 64, 4
    width = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (cell + gap) + gap, width * (cell + gap) + gap, 3), 255, dtype=np.uint8)
    for y, row in enumerate(rows):
        for x, picture in enumerate(row):
            sheet[gap + y * (cell + gap):gap + y * (cell + gap) + cell, gap + x * (cell + gap):gap + x * (cell + gap) + cell] = picture
    Image.fromarray(sheet).save(path, optimize=True)


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


REFERENCE_README = """# Reference run of the tiny ControlNet pipeline (for Java parity)

One ControlNet text-to-image run of `testdata/pipelines/tiny-sd-controlnet`, written by
`testdata/tiny/export_controlnet.py` (sampler: `evaluate_controlnet.sample`), every intermediate as `.npy`
(NumPy 1.0 format, little-endian, C order, float32 unless noted). Replayed in ONNX Runtime by
`exporter/src/test/java/dev/kiln/exporter/TinyControlNetReferenceTest.java`.

| setting | value |
|---|---|
| prompt | `{prompt}` (no position words: the control image places the shape) |
| negative prompt | `""` |
| seed | {seed} |
| control image | `control_image.png`: 64 x 64 RGB, black, the filled mask of a {shape} (radius {radius:g}) centred at ({cx:g}, {cy:g}) in white, anti-aliased edges grey, R = G = B |
| conditioning scale | {scale:g}; the control goes to both classifier-free-guidance halves (diffusers' default, no guess mode) |
| scheduler | DDIM, eta 0, 20 steps, `leading` spacing, `steps_offset` 1, `set_alpha_to_one` false |
| guidance scale | 7.5 |

## Files

| file | shape | what |
|---|---|---|
| `control_image.png` | 64 x 64 RGB | the control image |
| `controlnet_cond.npy` | [1, 3, 64, 64] | `control_image.png` / 255 (no [-1, 1] normalisation, as diffusers' ControlNet image processor) |
| `input_ids.npy`, `uncond_input_ids.npy` | int32 [1, 77] | tokenizer ids of the prompt and of `""` |
| `last_hidden_state.npy`, `uncond_last_hidden_state.npy` | [1, 77, 64] | text encoder outputs |
| `initial_noise.npy` | [1, 4, 8, 8] | `torch.randn([1,4,8,8], generator=torch.Generator("cpu").manual_seed(seed))` |
| `first_step_down_block_res_samples_K.npy` | K = 0..3: [2,32,8,8], [2,32,8,8], [2,32,4,4], [2,64,4,4] | ControlNet outputs at t = 951, batch [uncond, cond] |
| `first_step_mid_block_res_sample.npy` | [2, 64, 4, 4] | |
| `first_step_noise_prediction.npy` | [2, 4, 8, 8] | UNet `out_sample` at t = 951 with those residuals |
| `latents_per_step.npy` | [20, 1, 4, 8, 8] | latents after each DDIM step |
| `final_latents.npy` | [1, 4, 8, 8] | latents after the last step (still scaled) |
| `image.npy`, `image.png` | [1, 3, 64, 64] / 64 x 64 RGB | `vae_decoder(final_latents / scaling_factor)`; PNG = `round(clamp(x / 2 + 0.5, 0, 1) * 255)` |
| `reference.json` | | settings, timesteps, ids, the control's and the generated shape's centroids, the judge's verdict |

## Step (diffusers' StableDiffusionControlNetPipeline)

```
for t in timesteps:                                   # 951, 901, ..., 1
    x = [latents, latents]; states = [uncond, cond]; control = [controlnet_cond, controlnet_cond]
    down_0..3, mid = controlnet(sample=x, timestep=[t], encoder_hidden_states=states,
                                controlnet_cond=control, conditioning_scale=scale)
    eps_u, eps_c = unet(sample=x, timestep=[t], encoder_hidden_states=states,
                        down_block_additional_residuals_K=down_K, mid_block_additional_residual=mid)
    eps = eps_u + 7.5 * (eps_c - eps_u);  then the DDIM update of testdata/pipelines/tiny-sd/reference/README.md
```
"""


@torch.no_grad()
def write_reference(text_encoder, unet, vae, tokenizer, scaling_factor, model, folder):
    """One seeded ControlNet run with every intermediate, for the Java replay (reference/README.md)."""
    import export
    os.makedirs(folder, exist_ok=True)
    r = REFERENCE
    mask = controlnet.control_mask(r["shape"], r["centre"][0], r["centre"][1], RADIUS)
    record = {}
    images, latents = sample(text_encoder, unet, vae, tokenizer, scaling_factor, [r["prompt"]], [r["seed"]], model,
                             mask[None], r["conditioning_scale"], record=record)
    Image.fromarray(controlnet.control_rgb(mask)).save(os.path.join(folder, "control_image.png"), optimize=True)
    save_npy(os.path.join(folder, "controlnet_cond.npy"), record["controlnet_cond"][:1].numpy())
    save_npy(os.path.join(folder, "input_ids.npy"), record["input_ids"].to(torch.int32).numpy())
    save_npy(os.path.join(folder, "uncond_input_ids.npy"), record["uncond_input_ids"].to(torch.int32).numpy())
    save_npy(os.path.join(folder, "last_hidden_state.npy"), record["cond"].numpy())
    save_npy(os.path.join(folder, "uncond_last_hidden_state.npy"), record["uncond"].numpy())
    save_npy(os.path.join(folder, "initial_noise.npy"), record["initial_noise"].numpy())
    first = record["steps"][0]
    for index, tensor in enumerate(first["down"]):
        save_npy(os.path.join(folder, "first_step_down_block_res_samples_%d.npy" % index), tensor.numpy())
    save_npy(os.path.join(folder, "first_step_mid_block_res_sample.npy"), first["mid"].numpy())
    save_npy(os.path.join(folder, "first_step_noise_prediction.npy"), first["noise_prediction"].numpy())
    save_npy(os.path.join(folder, "latents_per_step.npy"), torch.stack([s["latents"] for s in record["steps"]]).numpy())
    save_npy(os.path.join(folder, "final_latents.npy"), latents.numpy())
    save_npy(os.path.join(folder, "image.npy"), images.numpy())
    pixels = sampler.to_uint8(images)[0]
    Image.fromarray(pixels).save(os.path.join(folder, "image.png"), optimize=True)
    verdict = judge.judge(pixels)
    found = shape_centroid(pixels)
    target = controlnet.mask_centroid(mask)
    summary = {"prompt": r["prompt"], "negative_prompt": "", "seed": r["seed"], "steps": 20, "guidance_scale": 7.5,
               "conditioning_scale": r["conditioning_scale"], "height": 64, "width": 64,
               "scheduler": "DDIM, eta 0", "timesteps": sampler.ddim_timesteps(20),
               "scaling_factor": round(scaling_factor, 6),
               "control_image": {"shape": r["shape"], "centre": r["centre"], "radius": RADIUS,
                                 "format": "64x64 RGB, black background, filled mask white, R=G=B; "
                                           "controlnet_cond = pixels / 255, same for both CFG halves"},
               "control_centroid": [round(v, 3) for v in target],
               "shape_centroid": None if found is None else [round(v, 3) for v in found],
               "input_ids": record["input_ids"][0].tolist(), "uncond_input_ids": record["uncond_input_ids"][0].tolist(),
               "judge": {"colour": verdict["colour"], "shape": verdict["shape"], "background": verdict["background"]}}
    export.write_json(os.path.join(folder, "reference.json"), summary)
    with open(os.path.join(folder, "README.md"), "w", newline="\n") as handle:
        handle.write(REFERENCE_README.format(prompt=r["prompt"], seed=r["seed"], shape=r["shape"], cx=r["centre"][0],
                                             cy=r["centre"][1], radius=RADIUS, scale=r["conditioning_scale"]))
    print("reference:", json.dumps(summary["judge"]), "control", summary["control_centroid"], "shape",
          summary["shape_centroid"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(controlnet.PIPELINES, "tiny-sd-controlnet"))
    parser.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA weights")
    parser.add_argument("--checkpoint", default=None, help="a controlnet.pt other than work/controlnet.pt")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    import export_controlnet
    components = controlnet.load_tiny()
    model = export_controlnet.load_trained(components[1], arguments.raw, arguments.checkpoint)
    items = cases()
    controlled, controlled_pictures = run(components, model, items, "prompt")
    plain, plain_pictures = run(components, None, items, "prompt")
    conflicting, conflicting_pictures = run(components, model, items, "conflicting_prompt")
    result = {"sampler": "DDIM eta 0, 20 steps, leading spacing, steps_offset 1, guidance 7.5",
              "control": "filled mask of the shape, radius %g, white on black, conditioning_scale 1" % RADIUS,
              "positions": POSITIONS, "seeds": SEEDS, "hit_distance_px": HIT_DISTANCE,
              "with_control": summarise(controlled), "without_control": summarise(plain),
              "with_control_prompt_names_opposite_corner": summarise(conflicting),
              "records": {"with_control": controlled, "without_control": plain,
                          "with_control_prompt_names_opposite_corner": conflicting}}
    for key in ("with_control", "without_control", "with_control_prompt_names_opposite_corner"):
        s = result[key]
        print("%s: hit rate %.3f, distance percentiles %s, colour %.3f shape %.3f, none %d" % (
            key, s["hit_rate"], s["distance_percentiles"], s["colour_rate"], s["shape_rate"], s["no_shape_found"]))
    print(json.dumps(result["with_control"]["hit_rate_by_shape_and_position"]))
    os.makedirs(arguments.out, exist_ok=True)
    export_controlnet_path = os.path.join(arguments.out, "eval_scores.json")
    with open(export_controlnet_path + ".tmp", "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(export_controlnet_path + ".tmp", export_controlnet_path)
    # contact sheet, seed 0: per position a row of [control, with control, without control, opposite-corner prompt]
    rows = []
    for index, item in enumerate(items):
        if item["seed"] != 0:
            continue
        control = controlnet.control_rgb(controlnet.control_mask(item["shape"], item["position"][0],
                                                                 item["position"][1], RADIUS))
        rows.append([control, controlled_pictures[index], plain_pictures[index], conflicting_pictures[index]])
    contact_sheet(rows, os.path.join(arguments.out, "contact_sheet.png"))


if __name__ == "__main__":
    main()
