package dev.kiln.optimizer.inputs;

import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * What the optimizer must be able to check before it rewrites a model. Refused (exit 2, one line naming the
 * model, the node and what was expected): no opset import, a default-domain opset newer than Kiln knows, a node
 * in a domain the model does not import, a graph input without a type, and — for the operators the rules and
 * shape inference read ({@link OpContracts}) — the wrong number of inputs or outputs or an attribute of the wrong
 * kind. Passed through untouched with a warning that names them: nodes in domains Kiln has no schemas for
 * (custom ops, model-local functions) and default-domain operators Kiln does not know; no rule matches them.
 */
public final class InputCheck {
  /** The newest ai.onnx opset whose operator semantics the rules and shape inference are written for. */
  public static final long NEWEST_ONNX_OPSET = 21;
  /** com.microsoft has only ever had version 1. */
  public static final long NEWEST_MICROSOFT_OPSET = 1;

  private static final Set<OpType> KNOWN = knownOps();

  private InputCheck() {}

  /** Throws for what cannot be checked; returns one warning per kind of node that passes through unchecked. */
  public static List<String> check(Model model, String label) {
    if (model.opsetImports().isEmpty()) {
      throw new KilnException.BadInput(label + ": the model imports no opset, so its operator versions are unknown "
          + "(expected opset_import with the ai.onnx domain)");
    }
    long onnx = model.opsetVersion(OpType.DEFAULT_DOMAIN);
    if (onnx > NEWEST_ONNX_OPSET) {
      throw new KilnException.Unsupported(label + ": ai.onnx opset " + onnx + " is newer than Kiln knows (up to "
          + NEWEST_ONNX_OPSET + "); operators may have changed meaning, so it is not optimized");
    }
    long microsoft = model.opsetVersion(OpType.MICROSOFT_DOMAIN);
    if (microsoft > NEWEST_MICROSOFT_OPSET) {
      throw new KilnException.Unsupported(label + ": com.microsoft opset " + microsoft + " is newer than Kiln knows (up to "
          + NEWEST_MICROSOFT_OPSET + ")");
    }
    for (Value input : model.graph().inputs()) {
      if (input.initializer() == null && input.dataType() == null && input.nonTensorKind() == null) {
        throw new KilnException.BadInput(label + ": graph input " + quoted(input.name()) + " has no type (expected a tensor "
            + "element type, as every exporter writes)");
      }
    }
    Set<String> functionDomains = new HashSet<>();
    functionDomains.addAll(model.functionDomains());
    Map<String, Map<String, Integer>> unchecked = new TreeMap<>();
    checkGraph(model.graph(), model, label, functionDomains, unchecked);
    List<String> warnings = new ArrayList<>();
    unchecked.forEach((domain, ops) -> {
      int count = ops.values().stream().mapToInt(Integer::intValue).sum();
      warnings.add(String.format(Locale.ROOT, "%s: %d node%s %s (%s) passed through unchanged: Kiln has no schema for them, so no "
          + "rule rewrites them and their output shapes are not inferred", label, count, count == 1 ? "" : "s",
          domain.isEmpty() ? "of ai.onnx operators Kiln does not know" : "in domain " + quoted(domain), String.join(", ", ops.keySet())));
    });
    return warnings;
  }

  private static void checkGraph(Graph graph, Model model, String label, Set<String> functionDomains,
      Map<String, Map<String, Integer>> unchecked) {
    for (Node node : graph.nodes()) {
      OpType type = node.opType();
      String domain = type.domain();
      boolean standard = domain.isEmpty() || domain.equals(OpType.MICROSOFT_DOMAIN);
      if (!domain.isEmpty() && model.opsetVersion(domain) == 0 && !functionDomains.contains(domain)) {
        throw new KilnException.BadInput(label + ": node " + quoted(node.name()) + " (" + quoted(type.key()) + ") is in domain "
            + quoted(domain) + ", which the model does not import (expected an opset_import entry for it)");
      }
      OpContracts.Contract contract = OpContracts.of(type);
      if (contract != null) {
        checkContract(node, contract, label);
      } else if (!standard || !KNOWN.contains(type)) {
        unchecked.computeIfAbsent(standard ? "" : domain, key -> new TreeMap<>()).merge(quoted(type.name()), 1, Integer::sum);
      }
      for (Graph subgraph : node.subgraphs()) {
        checkGraph(subgraph, model, label, functionDomains, unchecked);
      }
    }
  }

  private static void checkContract(Node node, OpContracts.Contract contract, String label) {
    String where = label + ": node " + quoted(node.name()) + " (" + node.opType().key() + ")";
    int inputs = node.inputCount();
    if (inputs < contract.minInputs() || inputs > contract.maxInputs()) {
      throw new KilnException.BadInput(where + " has " + inputs + " inputs; expected " + range(contract.minInputs(), contract.maxInputs()));
    }
    for (int index = 0; index < contract.minInputs(); index++) {
      if (node.input(index) == null) {
        throw new KilnException.BadInput(where + " leaves out required input " + index);
      }
    }
    int outputs = node.outputCount();
    if (outputs < contract.minOutputs() || outputs > contract.maxOutputs()) {
      throw new KilnException.BadInput(where + " has " + outputs + " outputs; expected " + range(contract.minOutputs(), contract.maxOutputs()));
    }
    for (Attribute attribute : node.attributes()) {
      Set<Attribute.Kind> kinds = contract.attributes().get(attribute.name());
      if (kinds != null && (attribute.refAttrName() == null || attribute.refAttrName().isEmpty()) && !kinds.contains(attribute.kind())) {
        throw new KilnException.BadInput(where + " attribute " + quoted(attribute.name()) + " is " + attribute.kind() + "; expected "
            + (kinds.size() == 1 ? kinds.iterator().next() : kinds));
      }
    }
  }

  private static String range(int min, int max) {
    if (min == max) {
      return Integer.toString(min);
    }
    return max == OpContracts.MANY ? "at least " + min : min + " to " + max;
  }

  /** A name from the model, quoted and escaped so it cannot break the line or drive a terminal. */
  static String quoted(String text) {
    return Printable.quoted(text);
  }

  /** Every operator constant of {@link Onnx} and {@link Microsoft}: the operators Kiln has a name for. */
  private static Set<OpType> knownOps() {
    Set<OpType> known = new HashSet<>();
    for (Class<?> holder : List.of(Onnx.class, Microsoft.class)) {
      for (Field field : holder.getFields()) {
        if (Modifier.isStatic(field.getModifiers()) && field.getType() == OpType.class) {
          try {
            known.add((OpType) field.get(null));
          } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
          }
        }
      }
    }
    return Set.copyOf(known);
  }
}
