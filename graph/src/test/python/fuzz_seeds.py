"""Seeds for OnnxReaderFuzzTest (graph/src/test/resources/dev/kiln/graph/OnnxReaderFuzzTestInputs/).

Run from the repository root:  /usr/bin/python3 graph/src/test/python/fuzz_seeds.py
Writes small models (a few hundred bytes each, so the fuzzer mutates them quickly): ONNX conformance models
with subgraphs, sequences and every attribute kind (from Debian's libonnx-testdata), models holding each
tensor storage Kiln reads (raw, typed fields, strings, fp16, sparse, external data with offsets), and models
whose external data break the rules. The data files they name are laid out by the fuzz test itself
(weights.bin, model.onnx.data and sub/inner.bin hold six floats; escape.bin links outside the folder).
Byte-identical on rerun.
"""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = "graph/src/test/resources/dev/kiln/graph/OnnxReaderFuzzTestInputs"
CONFORMANCE = "/usr/share/libonnx-testdata/data/node"
CONFORMANCE_MODELS = [
    "test_if", "test_loop11", "test_scan9_sum", "test_constant", "test_sequence_insert_at_back",
    "test_strnormalizer_export_monday_casesensintive_lower", "test_cast_FLOAT_to_FLOAT16", "test_constant_pad",
    "test_gemm_default_single_elem_vector_bias", "test_layer_normalization_2d_axis0", "test_bitshift_right_uint16",
    "test_reshape_extended_dims", "test_castlike_FLOAT_to_BFLOAT16", "test_einsum_batch_diagonal",
]


def add_model(weight, name="carrier"):
    dims = list(weight.dims)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", weight.name], ["y"])], name,
        [helper.make_tensor_value_info("x", weight.data_type, dims)],
        [helper.make_tensor_value_info("y", weight.data_type, dims)],
        initializer=[weight])
    model = helper.make_model(graph, producer_name="kiln-fuzz-seed", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def external(location, offset=None, length=None, dims=(2, 3), data_type=TensorProto.FLOAT):
    tensor = TensorProto(name="w", data_type=data_type, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
    return tensor


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    models = os.path.join(ROOT, "model")
    for name in CONFORMANCE_MODELS:
        with open(os.path.join(CONFORMANCE, name, "model.onnx"), "rb") as handle:
            write(models, "conformance-" + name[len("test_"):], handle.read())
    six = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    write(models, "inline-raw", add_model(numpy_helper.from_array(six, "w")).SerializeToString())
    typed = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], six.flatten().tolist(), raw=False)
    write(models, "inline-float-data", add_model(typed).SerializeToString())
    longs = helper.make_tensor("w", TensorProto.INT64, [2, 3], [1, -2, 3, -4, 5, 1 << 40])
    write(models, "inline-int64-data", add_model(longs).SerializeToString())
    half = numpy_helper.from_array(six.astype(np.float16), "w")
    write(models, "inline-float16", add_model(half).SerializeToString())
    strings = helper.make_tensor("w", TensorProto.STRING, [2], [b"kiln", b"\xff\xfe"])
    write(models, "inline-string", add_model(strings).SerializeToString())
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("values", TensorProto.FLOAT, [2], [1.5, -2.5]),
        helper.make_tensor("indices", TensorProto.INT64, [2], [1, 4]), [2, 3])
    constant = helper.make_node("Constant", [], ["c"], sparse_value=sparse)
    graph = helper.make_graph([constant, helper.make_node("Add", ["x", "c"], ["y"])], "sparse",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    sparse_model = helper.make_model(graph, producer_name="kiln-fuzz-seed", opset_imports=[helper.make_opsetid("", 17)])
    sparse_model.ir_version = 8
    write(models, "sparse-constant", sparse_model.SerializeToString())
    for name, tensor in [
        ("external-whole-file", external("weights.bin")),
        ("external-offset-length", external("model.onnx.data", 0, 24)),
        ("external-subfolder", external("sub/inner.bin", 4, 20, dims=(5,))),
        ("external-inside-link", external("inside-link.bin", 0, 24)),
        ("external-escape-link", external("escape.bin", 0, 24)),
        ("external-escape-dir-link", external("escape-dir/secret.bin", 0, 24)),
        ("external-parent", external("../outside/secret.bin", 0, 24)),
        ("external-absolute", external("/etc/hostname")),
        ("external-loop", external("loop.bin")),
        ("external-directory", external("folder.bin")),
        ("external-empty", external("empty.bin", 0, 0, dims=(0,))),
        ("external-past-end", external("weights.bin", 20, 24)),
        ("external-int8", external("weights.bin", 0, 6, dims=(6,), data_type=TensorProto.INT8)),
        ("external-string", external("weights.bin", 0, 24, data_type=TensorProto.STRING)),
    ]:
        write(models, name, add_model(tensor).SerializeToString())
    rules = os.path.join(ROOT, "externalData")
    for name, text in [
        ("whole-file", "location=weights.bin"),
        ("offset-length", "location=model.onnx.data\noffset=0\nlength=24"),
        ("subfolder", "location=sub/inner.bin\noffset=4\nlength=20\ndims=5"),
        ("fp16", "location=weights.bin\noffset=0\nlength=24\ntype=10\ndims=12"),
        ("int4", "location=weights.bin\nlength=3\ntype=22\ndims=6"),
        ("checksum", "location=weights.bin\nchecksum=abc\nbasepath=/"),
        ("escape-link", "location=escape.bin"),
        ("escape-dir", "location=escape-dir/secret.bin"),
        ("parent", "location=sub/../../outside/secret.bin"),
        ("backslash", "location=..\\outside\\secret.bin"),
        ("absolute", "location=/etc/hostname"),
        ("drive", "location=C:weights.bin"),
        ("negative", "location=weights.bin\noffset=-4"),
        ("huge", "location=weights.bin\noffset=9223372036854775807\nlength=9223372036854775807"),
        ("overflow-dims", "location=weights.bin\ndims=4611686018427387904,4"),
        ("no-location", "offset=0\nlength=24"),
        ("nul", "location=weights.bin\u0000x"),
    ]:
        write(rules, name, text.encode("utf-8"))


if __name__ == "__main__":
    main()
