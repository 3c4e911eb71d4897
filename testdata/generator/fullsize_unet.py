#!/usr/bin/python3
"""Writes a full-size SD 1.5 UNet with random weights, for benchmarks (never committed).

    nice -n 5 /usr/bin/python3 testdata/generator/fullsize_unet.py [OUT_DIR]

OUT_DIR defaults to ~/.cache/kiln/bench/sd15-unet/, the one folder every benchmark reads (bench/runner.sh for ORT vs
libtorch, bench/optimize.sh for `kiln optimize`; KILN_BENCH_UNET overrides it in both). Same module code as the committed fixtures, with SD 1.5's real
configuration (block channels 320/640/1280/1280, 8 heads, cross-attention 768, 2 layers per block, GroupNorm(32);
about 860 M parameters). Writes:

  model.pt                    traced TorchScript (~3.4 GB; traced at batch 1, 32x32 latents, runs at any batch/size)
  model.onnx + model.onnx.data   ONNX opset 17, dynamic axes, every weight in ONE external data file at
                              4096-aligned offsets (a 3.4 GB model cannot be one protobuf: the 2 GiB limit)
  test_data_set_0/            one reference input/output at 1x4x32x32 (256x256 images), batch 1
  config.json, summary.json   the UNet config; parameter count, sizes, wall time and peak memory of this run

Peak memory is about 12 GB and the run takes several minutes on 2 cores.
"""

import json
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from kiln_sd import components as parts  # noqa: E402
from kiln_sd.unet import UNet2DConditionModel  # noqa: E402

SD15_UNET = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-5, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "upcast_attention": False, "use_linear_projection": False,
}
ALIGNMENT = 4096


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def gather_external_data(export_dir, model_name, out_dir):
    """torch writes one file per initializer when a model passes 2 GB; rewrite them into a single data file."""
    proto = onnx.load(os.path.join(export_dir, model_name), load_external_data=False)
    data_name = "model.onnx.data"
    offset = 0
    with open(os.path.join(out_dir, data_name), "wb") as data_file:
        for tensor in proto.graph.initializer:
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            entries = {entry.key: entry.value for entry in tensor.external_data}
            with open(os.path.join(export_dir, entries["location"]), "rb") as source:
                source.seek(int(entries.get("offset", 0)))
                length = int(entries["length"]) if "length" in entries else -1
                payload = source.read(length)
            padding = (-offset) % ALIGNMENT
            data_file.write(b"\0" * padding)
            offset += padding
            data_file.write(payload)
            del tensor.external_data[:]
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(payload)))):
                entry = tensor.external_data.add()
                entry.key = key
                entry.value = value
            offset += len(payload)
    with open(os.path.join(out_dir, "model.onnx"), "wb") as handle:
        handle.write(proto.SerializeToString())
    return proto


def main(arguments):
    out_dir = arguments[0] if arguments else os.path.expanduser("~/.cache/kiln/bench/sd15-unet")
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()
    timings = {}
    torch.manual_seed(parts.SEED)
    model = parts.initialize(UNet2DConditionModel(SD15_UNET), parts.SEED + 1000).eval()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    timings["build_s"] = round(time.time() - started, 1)
    print("parameters", parameters, flush=True)

    random = torch.Generator().manual_seed(parts.SEED + 1001)
    inputs = (torch.randn((1, 4, 32, 32), generator=random), torch.tensor([981], dtype=torch.int64),
              torch.randn((1, 77, 768), generator=random))
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "steps"},
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "out_sample": {0: "batch_size", 2: "height", 3: "width"}}

    step = time.time()
    with torch.no_grad():
        (expected,) = model(*inputs)
    timings["forward_s"] = round(time.time() - step, 1)
    set_folder = os.path.join(out_dir, "test_data_set_0")
    os.makedirs(set_folder, exist_ok=True)
    for index, (name, tensor) in enumerate(zip(names, inputs)):
        with open(os.path.join(set_folder, "input_%d.pb" % index), "wb") as handle:
            handle.write(numpy_helper.from_array(tensor.numpy(), name).SerializeToString())
    with open(os.path.join(set_folder, "output_0.pb"), "wb") as handle:
        handle.write(numpy_helper.from_array(expected.numpy(), "out_sample").SerializeToString())

    step = time.time()
    with torch.no_grad():
        traced = torch.jit.trace(model, inputs, check_trace=False)
    torch.jit.save(traced, os.path.join(out_dir, "model.pt"))
    del traced
    timings["torchscript_s"] = round(time.time() - step, 1)
    print("torchscript written", timings, flush=True)

    step = time.time()
    export_dir = tempfile.mkdtemp(prefix="kiln-fullsize-", dir=out_dir)
    try:
        with torch.no_grad():
            torch.onnx.export(model, inputs, os.path.join(export_dir, "model.onnx"), opset_version=17,
                              input_names=names, output_names=["out_sample"], dynamic_axes=axes,
                              do_constant_folding=True)
        proto = gather_external_data(export_dir, "model.onnx", out_dir)
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)
    timings["onnx_s"] = round(time.time() - step, 1)

    sizes = {name: os.path.getsize(os.path.join(out_dir, name)) for name in ("model.pt", "model.onnx",
                                                                             "model.onnx.data")}
    summary = {"config": SD15_UNET, "parameters": parameters, "onnx_nodes": len(proto.graph.node),
               "onnx_initializers": len(proto.graph.initializer), "bytes": sizes, "timings": timings,
               "wall_s": round(time.time() - started, 1), "peak_rss_gb": round(peak_rss_gb(), 2),
               "torch": torch.__version__, "onnx": onnx.__version__,
               "test_data_set_0": {"sample": [1, 4, 32, 32], "out_max_abs": float(expected.abs().max())}}
    with open(os.path.join(out_dir, "config.json"), "w") as handle:
        json.dump(SD15_UNET, handle, indent=2, sort_keys=True)
    with open(os.path.join(out_dir, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
