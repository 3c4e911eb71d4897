"""Writing one component: traced TorchScript, ONNX at each opset, ONNX-layout test data sets, and the facts
about it that the manifest records (module inventory, op histograms)."""

import collections
import io
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from kiln_sd.blocks import (AttentionBlock, BasicTransformerBlock, CrossAttention, Downsample2D, GEGLU,
                            ResnetBlock2D, Transformer2DModel, Upsample2D)
from kiln_sd.clip import CLIPAttention, CLIPEncoderLayer, CLIPMLP

OPSETS = (17, 14)


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def parameter_count(model):
    return sum(parameter.numel() for parameter in model.parameters())


def module_inventory(model):
    """Counts of the modules whose exported patterns Kiln fuses; optimizer tests derive expected counts from it.

    GroupNorm is split by whether a SiLU follows it (ResnetBlock2D norm1/norm2 and conv_norm_out do; the
    Transformer2D input norm and the VAE attention norm do not), since the fused op takes `activation`.
    """
    counts = collections.Counter()
    silu_norms = set()
    for name, module in model.named_modules():
        if isinstance(module, ResnetBlock2D):
            counts["ResnetBlock2D"] += 1
            silu_norms.update([id(module.norm1), id(module.norm2)])
            if module.conv_shortcut is not None:
                counts["ResnetBlock2D.conv_shortcut"] += 1
            if module.time_emb_proj is not None:
                counts["ResnetBlock2D.time_emb_proj"] += 1
        elif name.endswith("conv_norm_out"):
            silu_norms.add(id(module))
    for name, module in model.named_modules():
        if isinstance(module, nn.GroupNorm):
            counts["GroupNorm"] += 1
            counts["GroupNorm+SiLU" if id(module) in silu_norms else "GroupNorm(no activation)"] += 1
        elif isinstance(module, nn.LayerNorm):
            counts["LayerNorm"] += 1
        elif isinstance(module, nn.Conv2d):
            counts["Conv2d"] += 1
            if module.kernel_size == (1, 1):
                counts["Conv2d(1x1)"] += 1
        elif isinstance(module, nn.Linear):
            counts["Linear"] += 1
        elif isinstance(module, nn.Embedding):
            counts["Embedding"] += 1
        elif isinstance(module, CrossAttention):
            kind = "self" if name.endswith("attn1") else "cross"
            counts["Attention"] += 1
            counts["Attention(" + kind + ")"] += 1
        elif isinstance(module, AttentionBlock):
            counts["Attention"] += 1
            counts["Attention(self, single head, VAE)"] += 1
        elif isinstance(module, CLIPAttention):
            counts["Attention"] += 1
            counts["Attention(self, causal, CLIP)"] += 1
        elif isinstance(module, GEGLU):
            counts["GEGLU"] += 1
        elif isinstance(module, BasicTransformerBlock):
            counts["BasicTransformerBlock"] += 1
        elif isinstance(module, Transformer2DModel):
            counts["Transformer2DModel"] += 1
        elif isinstance(module, Downsample2D):
            counts["Downsample2D"] += 1
        elif isinstance(module, Upsample2D):
            counts["Upsample2D"] += 1
        elif isinstance(module, CLIPEncoderLayer):
            counts["CLIPEncoderLayer"] += 1
        elif isinstance(module, CLIPMLP):
            counts["CLIPMLP(" + module.hidden_act + ")"] += 1
    return dict(sorted(counts.items()))


def trace(model, example_inputs):
    with torch.no_grad():
        traced = torch.jit.trace(model, example_inputs, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue()


def export_onnx(model, example_inputs, opset, input_names, output_names, dynamic_axes):
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, example_inputs, buffer, opset_version=opset, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    data = buffer.getvalue()
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    return data, proto


def op_histogram(proto):
    counts = collections.Counter(
        (node.domain + "." if node.domain else "") + node.op_type for node in proto.graph.node)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def run(model, inputs):
    with torch.no_grad():
        outputs = model(*inputs)
    return outputs if isinstance(outputs, tuple) else (outputs,)


def tensor_bytes(array, name):
    return numpy_helper.from_array(np.ascontiguousarray(array).reshape(array.shape), name).SerializeToString()


def describe(array):
    return {"shape": list(array.shape), "dtype": str(array.dtype)}
