package dev.kiln.validator.ep;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.EpTarget;
import dev.kiln.validator.Names;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * Whether every node has a kernel on the target's execution provider for its domain, opset and element types
 * (ORT's kernel table), and whether the contrib ops meet the input limits their kernels check only at run time.
 * On CUDA and TensorRT a node only the CPU provider runs is noted (it works, with copies), not failed.
 */
public final class EpSupport {
  /** What the check found: errors fail it, notes are reported. */
  public record Result(int nodes, List<String> errors, List<String> notes) {
    public boolean passed() {
      return errors.isEmpty();
    }
  }

  // Facts from ONNX Runtime's CUDA kernels (contrib_ops/cuda/diffusion): sizes other than these fail at run time.
  private static final Set<Long> BIAS_SPLIT_GELU_HIDDEN = Set.of(2560L, 5120L, 10240L);
  private static final Set<Long> BIAS_ADD_CHANNELS = Set.of(320L, 640L, 1280L);

  private EpSupport() {}

  public static Result check(Model model, ShapeInference shapes, EpTarget target) {
    KernelTable table = KernelTable.get();
    List<String> errors = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    int count = 0;
    for (Node node : model.graph().nodes()) {
      count++;
      OpType type = node.opType();
      String domain = type.isDefaultDomain() ? "ai.onnx" : type.domain();
      long opset = model.opsetVersion(type.domain());
      String where = type.name() + " " + Names.quote(node.name());
      if (target == EpTarget.CPU) {
        String problem = support(table, KernelTable.CPU, domain, type.name(), opset, node, shapes);
        if (problem != null && !runsAsFunction(table, type, opset)) {
          errors.add(where + ": " + problem + " on ORT's CPU provider");
        }
      } else {
        String onCuda = support(table, KernelTable.CUDA, domain, type.name(), opset, node, shapes);
        if (onCuda != null && !runsAsFunction(table, type, opset)) {
          String onCpu = support(table, KernelTable.CPU, domain, type.name(), opset, node, shapes);
          if (onCpu != null) {
            errors.add(where + ": " + onCuda + " on ORT's CUDA provider, nor on its CPU provider");
          } else {
            notes.add(where + ": runs on the CPU provider (" + onCuda + " on CUDA)");
          }
        }
      }
      String limit = runTimeLimit(node, shapes, target);
      if (limit != null) {
        errors.add(where + ": " + limit);
      }
    }
    return new Result(count, errors, notes);
  }

  /** ONNX function ops without kernels (GroupNormalization-18) run as their expansion in ORT. */
  private static boolean runsAsFunction(KernelTable table, OpType type, long opset) {
    if (!type.isDefaultDomain()) {
      return false;
    }
    Integer introduced = table.introduced(type.name());
    return introduced != null && introduced <= opset && table.kernels(KernelTable.CPU, "ai.onnx", type.name()).isEmpty()
        && table.kernels(KernelTable.CUDA, "ai.onnx", type.name()).isEmpty();
  }

  /** Null when a kernel takes the node, else why not. */
  private static String support(KernelTable table, String provider, String domain, String op, long opset, Node node,
      ShapeInference shapes) {
    List<KernelTable.Kernel> kernels = table.kernels(provider, domain, op);
    if (kernels.isEmpty()) {
      return "no kernel for " + domain + ":" + op;
    }
    List<KernelTable.Kernel> covering = new ArrayList<>();
    for (KernelTable.Kernel kernel : kernels) {
      if (kernel.covers(opset)) {
        covering.add(kernel);
      }
    }
    if (covering.isEmpty()) {
      return "no kernel for " + domain + ":" + op + " at opset " + opset;
    }
    String mismatch = null;
    for (KernelTable.Kernel kernel : covering) {
      String problem = typeProblem(kernel, node, shapes);
      if (problem == null) {
        return null;
      }
      mismatch = problem;
    }
    return mismatch;
  }

  private static String typeProblem(KernelTable.Kernel kernel, Node node, ShapeInference shapes) {
    for (int index = 0; index < node.inputCount(); index++) {
      if (node.input(index) == null) {
        continue;
      }
      DataType type = shapes.dataType(node.input(index));
      Set<String> allowed = kernel.allowedTypes(index);
      if (type == null || allowed == null || allowed.isEmpty()) {
        continue;
      }
      String name = type.name().toLowerCase(Locale.ROOT);
      if (!allowed.contains(name)) {
        return "no kernel for input " + index + " of type " + name + " (takes " + String.join(", ", new TreeSet<>(allowed)) + ")";
      }
    }
    return null;
  }

  /** Limits the kernels check when they run, not when the session is built. */
  private static String runTimeLimit(Node node, ShapeInference shapes, EpTarget target) {
    Shape input = shapes.shape(node.input(0));
    if (target != EpTarget.CPU && node.is(Microsoft.BIAS_SPLIT_GELU) && input != null && input.rank() > 0) {
      if (input.dim(input.rank() - 1) instanceof Shape.Known hidden && !BIAS_SPLIT_GELU_HIDDEN.contains(hidden.value())) {
        return "BiasSplitGelu's CUDA kernel takes hidden sizes 2560, 5120 or 10240, this one is " + hidden.value();
      }
    }
    if (target != EpTarget.CPU && node.is(Microsoft.BIAS_ADD) && input != null && input.rank() > 0) {
      if (input.dim(input.rank() - 1) instanceof Shape.Known channels && !BIAS_ADD_CHANNELS.contains(channels.value())) {
        return "BiasAdd's CUDA kernel takes 320, 640 or 1280 channels, this one has " + channels.value();
      }
    }
    if (target == EpTarget.CPU && node.is(Microsoft.MULTI_HEAD_ATTENTION)) {
      Shape key = node.inputCount() > 1 ? shapes.shape(node.input(1)) : null;
      if (input != null && input.rank() == 5) {
        return "packed QKV (B, L, N, 3, H) is not implemented by ORT's CPU MultiHeadAttention";
      }
      if (key != null && key.rank() == 5) {
        return "packed KV (B, L, N, 2, H) is not implemented by ORT's CPU MultiHeadAttention";
      }
    }
    return null;
  }
}
