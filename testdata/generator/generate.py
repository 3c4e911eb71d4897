#!/usr/bin/python3
"""Regenerates every committed Stable Diffusion fixture of Kiln (components and pipeline folders).

    /usr/bin/python3 testdata/generator/generate.py

Needs Debian's python3-torch (1.13), python3-onnx (1.12) and python3-numpy; the exact versions used end up in
testdata/fixtures/manifest.json. The output is byte-identical on every run with the same versions (fixed seed,
one CPU thread, no timestamps). CI never runs this; it uses the committed files. About a minute on 2 cores.

Writes:
  testdata/fixtures/<component>/           model.pt (traced TorchScript), config.json,
                                           opset17/model.onnx, opset14/model.onnx (dynamic axes),
                                           test_data_set_{0,1}/{input,output}_K.pb (ONNX backend-test layout;
                                           opsetNN/test_data_set_K are links to them)
  testdata/fixtures/tokenizer/             the CLIP BPE tokenizer all pipelines share
  testdata/pipelines/{sd15,sd2,sdxl}/      diffusers/Optimum ONNX pipeline layout (model files are links)
  testdata/pipelines/{sd15,sd2,sdxl}-torchscript/   the same layout holding model.pt files
  testdata/fixtures/manifest.json          versions, configs, inventories, op histograms, sha256 of every file

The work runs in a child interpreter started from the repository root that loads the kiln_sd modules under
repository-relative file names: TorchScript's debug tables record the Python source file of every traced call
(the code object's file name), and relative names keep the archives identical in any checkout directory.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    child = """
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
sys.modules["kiln_sd.build"].main()
"""
    sys.exit(subprocess.call([sys.executable, "-c", child], cwd=ROOT))
