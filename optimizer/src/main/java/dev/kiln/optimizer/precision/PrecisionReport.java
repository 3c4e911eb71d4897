package dev.kiln.optimizer.precision;

import dev.kiln.graph.Graph;
import dev.kiln.graph.Node;
import dev.kiln.optimizer.quantize.Int8Report;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a precision conversion did: how many nodes compute in float16 and float32, each float32 node with its reason
 * (and, for the mixed search, the measured range), values clamped per initializer, Casts added and removed, bytes
 * saved, notes (inputs left alone), and for mixed precision the parity per output and the ORT sessions used; for
 * int8 the quantizer's own report ({@code int8}, null otherwise).
 */
public record PrecisionReport(String precision, int float16Nodes, int float32Nodes, Map<String, KeptNode> float32,
    Map<String, Long> clampedValues, int castsInserted, int castsRemoved, long bytesSaved, List<String> notes,
    Map<String, Double> parity, int sessions, Integer threshold512Count, Int8Report int8) {

  /** A node kept float32: why, and the largest |value| it reads or writes on the calibration inputs (null if unmeasured). */
  public record KeptNode(String op, String reason, Double maxAbs) {}

  static PrecisionReport of(Graph graph, int half, Map<Node, String> float32, Map<String, Long> clamped, int inserted,
      int removed, long bytesSaved, List<String> notes) {
    Map<String, KeptNode> kept = new LinkedHashMap<>();
    float32.forEach((node, reason) -> kept.put(node.name(), new KeptNode(node.opType().key(), reason, null)));
    return new PrecisionReport("fp16", half, float32.size(), kept, Map.copyOf(clamped), inserted, removed, bytesSaved,
        List.copyOf(notes), Map.of(), 0, null, null);
  }

  /** The precision report of an int8 quantization: float nodes, bytes saved and parity from the quantizer's report. */
  static PrecisionReport ofInt8(Int8Report report) {
    return new PrecisionReport("int8", 0, report.floatNodes(), Map.of(), Map.of(), 0, 0,
        report.bytesBefore() - report.bytesAfter(), report.notes(), report.parity(), 0, null, report);
  }

  PrecisionReport withNotes(List<String> notes) {
    return new PrecisionReport(precision, float16Nodes, float32Nodes, float32, clampedValues, castsInserted, castsRemoved,
        bytesSaved, List.copyOf(notes), parity, sessions, threshold512Count, int8);
  }

  PrecisionReport withSearch(String precision, Map<String, KeptNode> float32, Map<String, Double> parity, int sessions,
      Integer threshold512Count) {
    return new PrecisionReport(precision, float16Nodes, float32Nodes, float32, clampedValues, castsInserted, castsRemoved,
        bytesSaved, notes, parity, sessions, threshold512Count, int8);
  }
}
