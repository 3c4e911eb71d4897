"""Writes the TorchScript archives the exporter's refusal tests read (torch 1.13, deterministic).

Run: /usr/bin/python3 exporter/src/test/resources/torchscript/generate.py
  scripted_if.pt   torch.jit.script of a module with an if: scripted control flow, refused with its line
  scripted_for.pt  torch.jit.script of a module with a for loop
  traced_fft.pt    torch.jit.trace of a module calling torch.fft.fft2: an aten op with no lowering
  baked_reshape.pt torch.jit.trace of int(x.size(2)) in a reshape: a size baked into a constant (traced at 1x4x8x6)
"""
import os
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


class Branch(torch.nn.Module):
    def forward(self, x):
        if bool(x.sum() > 0):
            return x * 2
        return x


class Loop(torch.nn.Module):
    def forward(self, x):
        for _ in range(3):
            x = x + 1
        return x


class Fourier(torch.nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).real


torch.manual_seed(0)
torch.jit.script(Branch()).save(os.path.join(HERE, "scripted_if.pt"))
torch.jit.script(Loop()).save(os.path.join(HERE, "scripted_for.pt"))
torch.jit.trace(Fourier(), torch.randn(1, 4, 8, 8)).save(os.path.join(HERE, "traced_fft.pt"))


class BakedReshape(torch.nn.Module):
    """The seed's broken reshape: int() turns the traced height into a constant the export cannot resize."""

    def forward(self, sample):
        height = int(sample.size(2))
        return sample.reshape(sample.size(0), sample.size(1), height * sample.size(3)).mean(-1)


torch.jit.trace(BakedReshape(), torch.randn(1, 4, 8, 6)).save(os.path.join(HERE, "baked_reshape.pt"))
