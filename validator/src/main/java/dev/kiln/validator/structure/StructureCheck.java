package dev.kiln.validator.structure;

import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.validator.Names;
import dev.kiln.validator.ep.KernelTable;
import java.util.ArrayList;
import java.util.List;

/**
 * What must hold before anything else is worth checking: the verifier (topological order, one producer, no
 * dangling uses), opset-domain consistency (every domain imported; a default-domain op exists at the imported
 * opset — LayerNormalization below 17 does not, whatever ORT accepts), and external data of the declared size.
 * (Missing or escaping external files are refused when the model is read; the validator reports that as this
 * check failing.)
 */
public final class StructureCheck {
  /** ONNX Runtime runs default-domain opsets from 7 on. */
  private static final long OLDEST_ORT_OPSET = 7;

  private StructureCheck() {}

  public static List<String> check(Model model) {
    List<String> problems = new ArrayList<>(Verifier.check(model));
    KernelTable table = KernelTable.get();
    long defaultOpset = model.opsetVersion("");
    if (defaultOpset > 0 && defaultOpset < OLDEST_ORT_OPSET) {
      problems.add("the default domain is imported at opset " + defaultOpset + "; ONNX Runtime needs " + OLDEST_ORT_OPSET + " or later");
    }
    for (Node node : model.graph().nodes()) {
      OpType type = node.opType();
      if (!model.opsetImports().containsKey(type.domain())) {
        problems.add(type.name() + " " + Names.quote(node.name()) + ": domain "
            + Names.quote(type.isDefaultDomain() ? "ai.onnx" : type.domain()) + " is not imported");
        continue;
      }
      if (type.isDefaultDomain()) {
        Integer introduced = table.introduced(type.name());
        if (introduced == null) {
          problems.add(type.name() + " " + Names.quote(node.name()) + ": not an ONNX operator (default domain)");
        } else if (introduced > defaultOpset) {
          problems.add(type.name() + " " + Names.quote(node.name()) + ": does not exist in ai.onnx at the imported opset "
              + defaultOpset + " (introduced in opset " + introduced + ")");
        }
      }
    }
    for (Value value : model.graph().initializers()) {
      Tensor tensor = value.initializer();
      if (tensor instanceof ExternalTensor external) {
        long needed = (long) Math.ceil(external.elementCount() * (double) external.dataType().bitWidth() / 8);
        if (external.dataType().bitWidth() > 0 && external.length() != needed) {
          problems.add("initializer " + Names.quote(value.name()) + ": external data holds " + external.length()
              + " bytes, its " + external.dataType().name().toLowerCase(java.util.Locale.ROOT) + " shape needs " + needed);
        }
      }
    }
    return problems;
  }
}
