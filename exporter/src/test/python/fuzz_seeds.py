"""Seed inputs for TorchScriptFuzzTest: a traced two-layer module saved by torch.jit (a small .pt archive) and its
data.pkl. Run with Debian's torch: /usr/bin/python3 exporter/src/test/python/fuzz_seeds.py (byte-identical reruns)."""
import io
import os
import zipfile

import torch

torch.manual_seed(0)
here = os.path.dirname(os.path.abspath(__file__))
inputs = os.path.join(here, "..", "resources", "dev", "kiln", "exporter", "TorchScriptFuzzTestInputs")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)

    def forward(self, x):
        return torch.nn.functional.gelu(self.norm(self.proj(x))).reshape(x.shape[0], -1)


traced = torch.jit.trace(Tiny().eval(), torch.randn(2, 4))
buffer = io.BytesIO()
torch.jit.save(traced, buffer)
archive = buffer.getvalue()
with open(os.path.join(inputs, "archive", "traced-linear-layernorm-gelu.pt"), "wb") as out:
    out.write(archive)
with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
    name = next(entry for entry in zipped.namelist() if entry.endswith("/data.pkl"))
    with open(os.path.join(inputs, "pickle", "traced-module-data.pkl"), "wb") as out:
        out.write(zipped.read(name))
