package dev.kiln.validator.parity;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.lowering.Lowering;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A model as the CPU judge runs it: contrib ops only CUDA implements lowered to standard ONNX from their
 * specifications, fp16 storage emulated in float32, and — for localisation — every float intermediate exposed
 * as an output.
 */
final class CpuForm {
  private CpuForm() {}

  /** What was done to make {@code model} runnable on CPU. */
  record Prepared(Model model, Map<String, Integer> lowered, int roundingPairs) {
    /** Whether the model is still the file it was read from (then ORT can load the file itself). */
    boolean unchanged() {
      return lowered.isEmpty() && roundingPairs == 0;
    }
  }

  static Prepared prepare(Model model) {
    Map<dev.kiln.graph.OpType, Integer> counts = Lowering.forOrtCpu().lower(model);
    Map<String, Integer> lowered = new java.util.LinkedHashMap<>();
    counts.forEach((type, count) -> lowered.put(type.name(), count));
    int pairs = Fp16StorageEmulation.applies(model) ? Fp16StorageEmulation.apply(model) : 0;
    return new Prepared(model, lowered, pairs);
  }

  /** Adds every float node output as a graph output; returns their names in topological order. */
  static List<String> exposeIntermediates(Model model) {
    ShapeInference types = ShapeInference.of(model);
    List<String> names = new ArrayList<>();
    List<Value> exposed = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output == null || output.name().isEmpty()) {
          continue;
        }
        DataType type = types.dataType(output);
        if (type != DataType.FLOAT) {
          continue;
        }
        names.add(output.name());
        if (!output.isGraphOutput()) {
          if (output.dataType() == null) {
            output.setType(DataType.FLOAT, null);
          }
          exposed.add(output);
        }
      }
    }
    exposed.forEach(model.graph()::addOutput);
    return names;
  }

  static byte[] bytes(Model model) {
    return ModelWriter.toBytes(model);
  }
}
