#!/usr/bin/python3
"""Writes testdata/broken/sdxl_unet_baked_reshape: an SDXL-style UNet that carries the bug class of a real
Optimum SDXL export — each Transformer2D block reshapes its tokens back to an image with the spatial height
baked in as the constant of the trace (`reshape(batch, int(height), -1, channels)`), so the graph is correct only
at the traced latent size (32 x 32) and its residual Add fails at every other height.

    /usr/bin/python3 testdata/generator/baked_reshape_unet.py

Same stack and determinism as generate.py (Debian torch 1.13 / onnx 1.12, fixed seed, one thread); the
fixture's own model is not part of the manifest. The validator's static proof tests read it. CI never runs this.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = """
import sys, types
package = types.ModuleType("kiln_sd")
package.__path__ = ["testdata/generator/kiln_sd"]
sys.modules["kiln_sd"] = package
for name in ("clip_bpe", "blocks", "clip", "unet", "vae", "components", "exporting", "overflow", "build"):
    path = "testdata/generator/kiln_sd/" + name + ".py"
    module = types.ModuleType("kiln_sd." + name)
    module.__file__ = path
    sys.modules[module.__name__] = module
    with open(path, encoding="utf-8") as source:
        exec(compile(source.read(), path, "exec"), module.__dict__)
    setattr(package, name, module)

import os
import torch
from kiln_sd import blocks, build, components, exporting

torch.set_num_threads(1)


def baked_forward(self, hidden_states, encoder_hidden_states):
    batch, _, height, width = hidden_states.shape
    residual = hidden_states
    hidden_states = self.norm(hidden_states)
    inner_dim = hidden_states.shape[1]
    hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch, height * width, inner_dim)
    hidden_states = self.proj_in(hidden_states)
    for block in self.transformer_blocks:
        hidden_states = block(hidden_states, context=encoder_hidden_states)
    hidden_states = self.proj_out(hidden_states)
    # The bug: int() turns the traced height into a constant of the graph; -1 keeps the reshape itself legal.
    hidden_states = hidden_states.reshape(batch, int(height), -1, inner_dim).permute(0, 3, 1, 2).contiguous()
    return hidden_states + residual


blocks.Transformer2DModel.forward = baked_forward
config = dict(components.UNET_SDXL, layers_per_block=1)
model = components.build_unet(config, components.SEED + 70)
added = components.SDXL_CLIP_TEXT_2["projection_dim"]
inputs = build.unet_inputs(components.SEED + 170, 1, 32, 32, 77, config["cross_attention_dim"], [981],
                           (added, [[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0]]))
names = ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]
axes = {key: build.UNET_AXES[key] for key in names + ["out_sample"]}
data, proto = exporting.export_onnx(model, inputs, 17, names, ["out_sample"], axes)
folder = os.path.join(build.TESTDATA, "broken", "sdxl_unet_baked_reshape")
exporting.write_bytes(os.path.join(folder, "model.onnx"), data)
exporting.write_bytes(os.path.join(folder, "config.json"), build.json_bytes(dict(config, traced_latent_size=[32, 32])))
print("wrote", folder, len(data), "bytes")
"""

if __name__ == "__main__":
    sys.exit(subprocess.call([sys.executable, "-W", "ignore", "-c", CHILD], cwd=ROOT))
