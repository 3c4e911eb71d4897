package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Copies and graph-only serialisations of a model in memory, its large tensors shared rather than copied: tensors
 * are immutable, so a copy whose passes rewrite the graph (a precision candidate, a proof graph) may point at the
 * same weights, and an ONNX Runtime session may read them from where they already are (a map of the data file)
 * instead of from a written copy. A full-size UNet's 3.4 GB of weights then never pass through a scratch file.
 */
public final class SharedTensors {
  private SharedTensors() {}

  /** The external-data location the references name: no file of that name is ever read or written. */
  public static final String LOCATION = "kiln-shared-tensors";
  /** Tensors from this size on are shared by reference; smaller ones are copied inline (cheap, and ORT reads them). */
  public static final long DEFAULT_THRESHOLD = 1L << 16;

  /**
   * A model serialised without the bytes of its large initializers: each is an external-data reference to
   * {@link #LOCATION} (offsets only tell them apart), and {@code external} maps the initializer's name to its tensor.
   * Attribute tensors stay inline.
   */
  public record GraphOnly(byte[] proto, Map<String, Tensor> external) {}

  /** An independent copy of {@code model}'s graph; tensors of at least {@link #DEFAULT_THRESHOLD} bytes are shared. */
  public static Model copy(Model model) {
    ProtoEncoder encoder = new ProtoEncoder(options(DEFAULT_THRESHOLD), LOCATION);
    ModelProto proto = encoder.encodeModel(model);
    Map<Long, Tensor> byOffset = new HashMap<>();
    for (ProtoEncoder.Placement placement : encoder.placements()) {
      byOffset.put(placement.offset(), placement.tensor());
    }
    return new ProtoDecoder(Path.of(LOCATION), reference -> byOffset.get(offsetOf(reference))).decode(proto);
  }

  /** {@code model} as graph-only bytes, initializers of at least {@code threshold} bytes by reference. */
  public static GraphOnly graphOnly(Model model, long threshold) {
    ProtoEncoder encoder = new ProtoEncoder(options(threshold), LOCATION).attributesInline();
    ModelProto proto = encoder.encodeModel(model);
    Map<Long, Tensor> byOffset = new HashMap<>();
    for (ProtoEncoder.Placement placement : encoder.placements()) {
      byOffset.put(placement.offset(), placement.tensor());
    }
    Map<String, Tensor> external = new LinkedHashMap<>();
    for (TensorProto initializer : proto.getGraph().getInitializerList()) {
      if (initializer.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
        external.put(initializer.getName(), byOffset.get(offsetOf(initializer)));
      }
    }
    return new GraphOnly(proto.toByteArray(), external);
  }

  /** Alignment 1: the offsets only name the tensors (and an empty tensor is never shared, so each is unique). */
  private static WriteOptions options(long threshold) {
    return WriteOptions.externalAbove(Math.max(1, threshold)).withAlignment(1);
  }

  private static long offsetOf(TensorProto reference) {
    for (StringStringEntryProto entry : reference.getExternalDataList()) {
      if (entry.getKey().equals("offset")) {
        return Long.parseLong(entry.getValue());
      }
    }
    return 0;
  }
}
