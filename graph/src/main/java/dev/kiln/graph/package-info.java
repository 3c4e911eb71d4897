/**
 * Kiln's ONNX IR: a model in memory that reads and writes real files exactly.
 *
 * <p><b>Shape of the IR.</b> {@link dev.kiln.graph.Model} holds header fields, opset imports, metadata,
 * functions and a {@link dev.kiln.graph.Graph}. A graph lists inputs, initializers, {@link dev.kiln.graph.Node}s in
 * topological order and outputs. Edges are object references: every {@link dev.kiln.graph.Value} has one producer
 * (or is a graph input / initializer) and a list of {@link dev.kiln.graph.Use}s. If/Loop/Scan bodies are graphs held
 * by {@link dev.kiln.graph.Attribute}s; their nodes consume outer values directly, and those captures are uses of the
 * outer value like any other. Names exist for files and messages; nothing in the IR looks values up by name.
 *
 * <p><b>Mutation.</b> Only {@link dev.kiln.graph.Node#setInput}, {@link dev.kiln.graph.Value#replaceAllUsesWith},
 * {@link dev.kiln.graph.Graph#insertBefore}/{@link dev.kiln.graph.Graph#insertAfter}/{@link dev.kiln.graph.Graph#append},
 * {@link dev.kiln.graph.Graph#remove} (refuses a node still in use) and the input/initializer/output methods of
 * {@link dev.kiln.graph.Graph} change the structure, and each keeps the use lists exact. {@link dev.kiln.graph.Verifier}
 * checks the invariants; tests run it after every pass. Passes that add to a graph go through one
 * {@link dev.kiln.graph.GraphEditor}: fresh value and node names in O(1), new nodes and (staged) initializers, and
 * the replacement of a value that keeps the graph's output names and types.
 *
 * <p><b>Tensors.</b> {@link dev.kiln.graph.Tensor} is sealed: {@link dev.kiln.graph.InlineTensor} (a view of the mapped
 * model file), {@link dev.kiln.graph.ExternalTensor} (file, offset, length; mapped lazily in maps of at most 1 GiB,
 * streamed by the writer without mapping), {@link dev.kiln.graph.ComputedTensor} (made by Kiln, bytes on demand).
 * Any of them decodes to {@code float[]}/{@code long[]}/{@code int[]} whatever its storage.
 *
 * <p><b>Files.</b> {@link dev.kiln.graph.ModelReader} treats every file as hostile: protobuf problems, dangling names,
 * duplicate values, cycles, short tensors and external data leaving the model folder are
 * {@link dev.kiln.common.KilnException.BadInput}s naming the file. {@link dev.kiln.graph.ModelWriter} rebuilds each
 * element from the protobuf it was read from, so whatever the IR does not model (unknown fields, doc strings,
 * training info, quantization annotations...) comes back byte-identical; that residue is package-private, kept
 * through the IR's own methods by the reader and read only by the writer, and no protobuf type is part of the
 * IR's public surface (besides {@code ModelReader.readProto} for tools, and the raw ONNX strings of
 * {@link dev.kiln.graph.Tensor#strings}); it writes through temporary files and
 * renames, and the same input always gives the same bytes. {@code src/main/proto/onnx.proto} is Kiln's own
 * statement of the wire format.
 */
package dev.kiln.graph;
