"""Judges the trained tiny pipeline: every colour x shape x background prompt, several seeds, DDIM 20 steps,
guidance 7.5, scored by judge.py; writes the scores (JSON) and a contact sheet (PNG).

    /usr/bin/python3 testdata/tiny/evaluate.py [--out DIR] [--seeds 3] [--raw]
"""

import argparse
import collections
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "generator"))

import config  # noqa: E402
import judge  # noqa: E402
import models  # noqa: E402
import sampler  # noqa: E402
import scenes  # noqa: E402
from kiln_sd.clip_bpe import ClipBpeTokenizer  # noqa: E402

WORK = os.path.join(HERE, "work")


def load(raw=False):
    summary = json.load(open(os.path.join(WORK, "training_summary.json")))
    checkpoint = torch.load(os.path.join(WORK, "unet.pt"))
    text_encoder = models.CLIPTextModel(checkpoint["text_config"])
    text_encoder.load_state_dict(checkpoint["text_encoder_raw" if raw else "text_encoder"])
    unet = models.UNet2DConditionModel(config.UNET)
    unet.load_state_dict(checkpoint["unet_raw" if raw else "unet"])
    vae = models.AutoencoderKL(config.VAE)
    vae.load_state_dict(torch.load(os.path.join(WORK, "vae.pt")))
    for module in (text_encoder, unet, vae):
        module.eval()
    tokenizer = ClipBpeTokenizer(os.path.join(WORK, "tokenizer"))
    return text_encoder, unet, vae, tokenizer, summary["scaling_factor"]


def main_prompts():
    return [(colour, shape, background, "a %s %s on a %s background" % (colour, shape, background))
            for background in scenes.BACKGROUNDS for colour in scenes.COLOURS for shape in scenes.SHAPES]


def variation_prompts():
    """Prompts that also name size and position (colour and shape judged; not part of the headline score)."""
    prompts = []
    for index, (colour, shape) in enumerate((c, s) for c in scenes.COLOURS for s in scenes.SHAPES):
        size = ("small", "large", "small", "")[index % 4]
        where = ("in the top left", "", "in the bottom right", "in the top right")[index % 4]
        background = list(scenes.BACKGROUNDS)[index % 3]
        words = " ".join(w for w in ("a", size, colour, shape, "on a", background, "background", where) if w)
        prompts.append((colour, shape, background, words))
    return prompts


def score(records):
    totals = collections.Counter()
    per_colour = collections.defaultdict(collections.Counter)
    per_shape = collections.defaultdict(collections.Counter)
    colour_confusion = collections.defaultdict(collections.Counter)
    shape_confusion = collections.defaultdict(collections.Counter)
    for record in records:
        colour_ok = record["judged_colour"] == record["colour"]
        shape_ok = record["judged_shape"] == record["shape"]
        background_ok = record["judged_background"] == record["background"]
        for counter in (totals, per_colour[record["colour"]], per_shape[record["shape"]]):
            counter["n"] += 1
            counter["colour"] += colour_ok
            counter["shape"] += shape_ok
            counter["both"] += colour_ok and shape_ok
            counter["background"] += background_ok
        colour_confusion[record["colour"]][str(record["judged_colour"])] += 1
        shape_confusion[record["shape"]][str(record["judged_shape"])] += 1

    def rates(counter):
        return {key: round(counter[key] / counter["n"], 4) for key in ("colour", "shape", "both", "background")}

    return {"count": totals["n"], **rates(totals),
            "per_colour": {k: rates(v) for k, v in per_colour.items()},
            "per_shape": {k: rates(v) for k, v in per_shape.items()},
            "colour_confusion": {k: dict(v) for k, v in colour_confusion.items()},
            "shape_confusion": {k: dict(v) for k, v in shape_confusion.items()}}


def run(prompts, seeds, components, batch=48):
    text_encoder, unet, vae, tokenizer, scaling_factor = components
    jobs = [(p, seed) for p in prompts for seed in seeds]
    records, pictures = [], []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        images, _ = sampler.sample(text_encoder, unet, vae, tokenizer, [p[3] for p, _ in chunk],
                                   [seed for _, seed in chunk], scaling_factor)
        for (prompt, seed), picture in zip(chunk, sampler.to_uint8(images)):
            verdict = judge.judge(picture)
            records.append({"prompt": prompt[3], "seed": seed, "colour": prompt[0], "shape": prompt[1],
                            "background": prompt[2], "judged_colour": verdict["colour"],
                            "judged_shape": verdict["shape"], "judged_background": verdict["background"]})
            pictures.append(picture)
    return records, pictures


def contact_sheet(pictures, records, seeds, path):
    """Rows: colours; columns: shapes x backgrounds; first seed only. A red frame marks a judge miss. Next to the
    PNG, a JSON lists every cell's position, prompt and the Python judge's verdict (the Java judge's test checks
    that both judges agree on every cell)."""
    cells = []
    colours, shapes, backgrounds = list(scenes.COLOURS), list(scenes.SHAPES), list(scenes.BACKGROUNDS)
    cell, gap = 64, 4
    sheet = np.full((len(colours) * (cell + gap) + gap, len(shapes) * len(backgrounds) * (cell + gap) + gap, 3),
                    255, dtype=np.uint8)
    for picture, record in zip(pictures, records):
        if record["seed"] != seeds[0]:
            continue
        row = colours.index(record["colour"])
        column = backgrounds.index(record["background"]) * len(shapes) + shapes.index(record["shape"])
        y, x = gap + row * (cell + gap), gap + column * (cell + gap)
        if record["judged_colour"] != record["colour"] or record["judged_shape"] != record["shape"]:
            sheet[y - 2:y + cell + 2, x - 2:x + cell + 2] = (255, 0, 0)
        sheet[y:y + cell, x:x + cell] = picture
        cells.append(dict(record, x=int(x), y=int(y), size=cell))
    Image.fromarray(sheet).save(path, optimize=True)
    with open(os.path.splitext(path)[0] + ".json", "w") as handle:
        json.dump({"cells": cells}, handle, indent=1, sort_keys=True)
        handle.write("\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=WORK)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help="use the raw weights instead of the EMA weights")
    parser.add_argument("--quick", action="store_true", help="white backgrounds and one seed only")
    arguments = parser.parse_args()
    torch.set_num_threads(2)
    components = load(arguments.raw)
    seeds = list(range(arguments.seeds))
    prompts = main_prompts()
    if arguments.quick:
        prompts = [p for p in prompts if p[2] == "white"]
        seeds = seeds[:1]
    records, pictures = run(prompts, seeds, components)
    result = {"sampler": "DDIM eta 0, 20 steps, leading spacing, steps_offset 1, guidance 7.5",
              "seeds": seeds, "prompt_template": "a {colour} {shape} on a {background} background",
              "main": score(records)}
    if not arguments.quick:
        variation_records, _ = run(variation_prompts(), seeds, components)
        result["variations"] = score(variation_records)
        result["variations"]["prompts"] = [p[3] for p in variation_prompts()]
        contact_sheet(pictures, records, seeds, os.path.join(arguments.out, "contact_sheet.png"))
    main_score = result["main"]
    print("colour %.3f shape %.3f both %.3f background %.3f (n=%d)" % (
        main_score["colour"], main_score["shape"], main_score["both"], main_score["background"],
        main_score["count"]))
    print("per colour", {k: v["colour"] for k, v in main_score["per_colour"].items()})
    print("per shape", {k: v["shape"] for k, v in main_score["per_shape"].items()})
    print("shape confusion", main_score["shape_confusion"])
    if "variations" in result:
        print("variations colour %.3f shape %.3f" % (result["variations"]["colour"], result["variations"]["shape"]))
    os.makedirs(arguments.out, exist_ok=True)
    with open(os.path.join(arguments.out, "eval_scores.json"), "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
        handle.write("\n")


if __name__ == "__main__":
    main()
