"""The overflow-prone VAE decoder: SDXL's VAE produces fp32 activations beyond fp16's 65504 in its up blocks
while its image output stays in range, which is why fp16 conversion of it yields NaN/black images. We make the
same situation on purpose: one ResNet's conv2 in the decoder's second up block is scaled up, so the residual
stream from there on is huge; the following GroupNorms are scale-invariant, so everything stays well-defined
until conv_norm_out normalizes it away and the image is sane again."""

import torch

FP16_MAX = 65504.0
HOT_MODULE = "decoder.up_blocks.1.resnets.0.conv2"
SCALE = 30000.0


def make_overflow_prone(model):
    hot = dict(model.named_modules())[HOT_MODULE]
    with torch.no_grad():
        hot.weight.mul_(SCALE)
        hot.bias.mul_(SCALE)
    return model


def _scope(module_name):
    """`decoder.up_blocks.1.resnets.0` → `/decoder/up_blocks.1/resnets.0/`, the ONNX node-name prefix that
    torch.onnx.export gives nodes created inside that module."""
    parts = module_name.split(".")
    merged = []
    for part in parts:
        if part.isdigit() and merged:
            merged[-1] += "." + part
        else:
            merged.append(part)
    return "/" + "/".join(merged) + "/"


def report(model, input_sets, proto):
    """Per module whose output exceeds the fp16 range on some test set: the ONNX node that produces the
    module's output (the last node of the module's scope), and the largest |value| per test set."""
    maxima = {}
    hooks = []
    for name, module in model.named_modules():
        if not name:
            continue

        def record(_module, _inputs, output, name=name):
            if isinstance(output, torch.Tensor):
                maxima.setdefault(name, []).append(float(output.detach().abs().max()))
        hooks.append(module.register_forward_hook(record))
    per_set_output = []
    try:
        for inputs in input_sets:
            with torch.no_grad():
                (sample,) = model(*inputs)
            per_set_output.append(float(sample.abs().max()))
    finally:
        for hook in hooks:
            hook.remove()

    node_names = [node.name for node in proto.graph.node]
    overflowing = []
    seen = set()
    for name, values in maxima.items():
        # a module called once per set records one value per set; SiLU modules are shared by several calls
        if len(values) != len(input_sets) or max(values) <= FP16_MAX:
            continue
        prefix = _scope(name)
        in_scope = [node for node in node_names if node.startswith(prefix)]
        if not in_scope or in_scope[-1] in seen:
            continue
        seen.add(in_scope[-1])
        overflowing.append({"module": name, "node": in_scope[-1], "max_abs_per_test_set": values,
                            "times_fp16_max": round(max(values) / FP16_MAX, 2)})
    overflowing.sort(key=lambda item: node_names.index(item["node"]))
    return {"fp16_max": FP16_MAX, "scaled_module": HOT_MODULE, "scale": SCALE,
            "output_max_abs_per_test_set": per_set_output, "overflowing_module_outputs": overflowing,
            "note": "nodes listed produce a module's output; nodes inside those modules (e.g. the Add before a "
                    "ResNet's Div, the Reshape feeding InstanceNormalization) carry the same magnitudes"}
