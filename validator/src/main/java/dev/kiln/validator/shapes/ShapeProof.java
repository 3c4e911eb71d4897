package dev.kiln.validator.shapes;

import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.DimExpressions;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.Names;
import dev.kiln.validator.shapes.SiteRules.Status;
import dev.kiln.validator.shapes.SiteRules.Verdict;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Shapes and broadcasts over every allowed size, without running the model. Each site (broadcasting op,
 * Reshape, Concat, MatMul/Gemm, Conv) is first tried symbolically with the inputs' sizes as named multiples of
 * their grid: a site that holds there holds for every size. Each remaining site is then decided by exact shape
 * propagation at every requested size; where it fails, the message names the node, its op, the operands'
 * shapes symbolically and at the failing size, and — when a constant baked into a reshape target caused it —
 * that constant, what it equals at the traced size and which sizes it holds for.
 */
public final class ShapeProof {
  private static final Pattern GRID_ATOM = Pattern.compile("([A-Za-z_][A-Za-z_0-9]*):(\\d+)");
  private static final int SEARCH_LIMIT = 80;
  private static final long SCAN_LIMIT = 4096;

  /** The first failing site at one size, or none. */
  public record SizeResult(Size size, boolean passed, String node, String op, String message) {}

  /** What the proof found for one model. */
  public record Result(int sites, int proven, int heldAtSizes, int failing, int undecided, List<SizeResult> sizes,
      Map<String, String> refused, List<String> undecidedSites) {
    public boolean passed() {
      return refused.isEmpty() && sizes.stream().allMatch(SizeResult::passed);
    }
  }

  private final Model model;
  private final InputBinding binding;
  private ShapeInference symbolic;

  private ShapeProof(Model model, InputBinding binding) {
    this.model = model;
    this.binding = binding;
  }

  public static Result run(Model model, InputBinding binding, List<Size> sizes, Map<String, String> refused) {
    return run(model, binding, ShapeInference.of(model, binding.symbolicInputs()), sizes, refused);
  }

  /** As above, reusing the symbolic inference ({@code ShapeInference.of(model, binding.symbolicInputs())}). */
  public static Result run(Model model, InputBinding binding, ShapeInference symbolic, List<Size> sizes,
      Map<String, String> refused) {
    ShapeProof proof = new ShapeProof(model, binding);
    proof.symbolic = symbolic;
    return proof.prove(sizes, refused);
  }

  private Result prove(List<Size> sizes, Map<String, String> refused) {
    List<ShapeInference> exact = new ArrayList<>();
    for (Size size : sizes) {
      exact.add(ShapeInference.of(model, binding.concreteInputs(size)));
    }
    SizeResult[] firstFailure = new SizeResult[sizes.size()];
    int sites = 0;
    int proven = 0;
    int held = 0;
    int failing = 0;
    int undecided = 0;
    List<String> undecidedSites = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      if (!SiteRules.applies(node)) {
        continue;
      }
      sites++;
      Verdict proof = SiteRules.check(node, symbolic);
      if (proof.status() == Status.HOLDS) {
        proven++;
        continue;
      }
      boolean failed = false;
      boolean unsure = false;
      for (int index = 0; index < sizes.size(); index++) {
        if (firstFailure[index] != null) {
          continue;
        }
        Verdict atSize = SiteRules.check(node, exact.get(index));
        if (atSize.status() == Status.FAILS) {
          failed = true;
          firstFailure[index] = new SizeResult(sizes.get(index), false, node.name(), node.opType().name(),
              failureMessage(node, atSize, sizes.get(index), exact.get(index)));
        } else if (atSize.status() == Status.UNDECIDED) {
          unsure = true;
          firstFailure[index] = new SizeResult(sizes.get(index), false, node.name(), node.opType().name(),
              node.opType().name() + " " + Names.quote(node.name()) + ": cannot be decided at " + sizes.get(index)
                  + ": " + atSize.problem() + " (inputs " + operandShapes(node, atSize.operands(), exact.get(index)) + ")");
        }
      }
      if (failed) {
        failing++;
      } else if (unsure) {
        undecided++;
        if (undecidedSites.size() < 20) {
          undecidedSites.add(node.opType().name() + " " + Names.quote(node.name()));
        }
      } else {
        held++;
      }
    }
    List<SizeResult> results = new ArrayList<>();
    for (int index = 0; index < sizes.size(); index++) {
      results.add(firstFailure[index] != null ? firstFailure[index]
          : new SizeResult(sizes.get(index), true, null, null, null));
    }
    return new Result(sites, proven, held, failing, undecided, results, refused, undecidedSites);
  }

  private String failureMessage(Node node, Verdict verdict, Size size, ShapeInference exact) {
    StringBuilder text = new StringBuilder();
    text.append(node.opType().name()).append(' ').append(Names.quote(node.name())).append(": ")
        .append(verdict.problem()).append(": ").append(operandShapes(node, verdict.operands(), symbolic))
        .append("; at ").append(size).append(": ").append(operandShapes(node, verdict.operands(), exact));
    String cause = cause(node, verdict);
    if (cause != null) {
      text.append("; ").append(cause);
    }
    return text.toString();
  }

  private static String operandShapes(Node node, int[] operands, ShapeInference shapes) {
    List<String> parts = new ArrayList<>();
    for (int operand : operands) {
      Value input = node.input(operand);
      if (node.is(Onnx.RESHAPE) && operand == 1) {
        List<Dim> target = shapes.elements(input);
        parts.add("target " + (target == null ? "(unknown)" : DimPrinter.print(Shape.of(target))));
      } else {
        parts.add(DimPrinter.print(shapes.shape(input)));
      }
    }
    return String.join(" and ", parts);
  }

  /**
   * A constant baked into a reshape target that explains the failure: one operand's dim is a constant where
   * the other's depends on the size, and a Reshape upstream of it has that constant in its target.
   */
  private String cause(Node node, Verdict verdict) {
    if (node.is(Onnx.RESHAPE)) {
      return bakedTarget(node, null, null);
    }
    if (verdict.axes().length != 2) {
      return null;
    }
    for (int side = 0; side < 2; side++) {
      Value constantSide = node.input(verdict.operands()[side]);
      Value otherSide = node.input(verdict.operands()[1 - side]);
      Shape constantShape = symbolic.shape(constantSide);
      Shape otherShape = symbolic.shape(otherSide);
      if (constantShape == null || otherShape == null) {
        continue;
      }
      Dim constant = constantShape.dim(verdict.axes()[side]);
      Dim expected = otherShape.dim(verdict.axes()[1 - side]);
      if (constant instanceof Shape.Known known && known.value() > 1 && expected instanceof Shape.Symbolic) {
        Node reshape = findReshapeWith(constantSide, known.value());
        if (reshape != null) {
          return bakedTarget(reshape, known.value(), expected);
        }
      }
    }
    return null;
  }

  private Node findReshapeWith(Value start, long constant) {
    Deque<Value> queue = new ArrayDeque<>();
    Set<Value> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    queue.add(start);
    int visited = 0;
    while (!queue.isEmpty() && visited++ < SEARCH_LIMIT) {
      Value value = queue.poll();
      Node producer = value.producer();
      if (producer == null || !seen.add(value)) {
        continue;
      }
      if (producer.is(Onnx.RESHAPE) || producer.is(Onnx.EXPAND)) {
        List<Dim> target = symbolic.elements(producer.input(1));
        if (target != null && target.contains(Shape.known(constant)) && dependsOnSize(producer.input(0))) {
          return producer;
        }
      }
      for (Value input : producer.inputs()) {
        if (input != null && input.producer() != null && !isShapeComputation(input)) {
          queue.add(input);
        }
      }
    }
    return null;
  }

  /** Small integer tensors are shape arithmetic, not data: the search follows data only. */
  private boolean isShapeComputation(Value value) {
    Shape shape = symbolic.shape(value);
    return symbolic.elements(value) != null && shape != null && shape.rank() <= 1;
  }

  private boolean dependsOnSize(Value value) {
    Shape shape = symbolic.shape(value);
    if (shape == null) {
      return false;
    }
    for (Dim dim : shape.dims()) {
      if (dim instanceof Shape.Symbolic) {
        return true;
      }
    }
    return false;
  }

  /** "Reshape X target [...] has constant 16 = height/2 at the traced size; holds only for latent height 32". */
  private String bakedTarget(Node reshape, Long constant, Dim expected) {
    List<Dim> target = symbolic.elements(reshape.input(1));
    if (target == null) {
      return null;
    }
    StringBuilder text = new StringBuilder();
    text.append(reshape.opType().name()).append(' ').append(Names.quote(reshape.name())).append(" target ")
        .append(DimPrinter.print(Shape.of(target)));
    if (constant == null) {
      List<String> constants = new ArrayList<>();
      for (Dim dim : target) {
        if (dim instanceof Shape.Known known && known.value() > 1) {
          constants.add(Long.toString(known.value()));
        }
      }
      if (constants.isEmpty() || !dependsOnSize(reshape.input(0))) {
        return null;
      }
      return text.append(" has constant ").append(String.join(", ", constants))
          .append(" where the data's size varies (baked at trace time)").toString();
    }
    text.append(" has constant ").append(constant).append(" = ").append(DimPrinter.print(expected))
        .append(" at the traced size");
    String holds = holdsOnlyFor(expected, constant);
    if (holds != null) {
      text.append("; ").append(holds);
    }
    return text.toString();
  }

  /** Solves expression = constant over the one size it depends on, by scanning that size's grid. */
  private String holdsOnlyFor(Dim expression, long constant) {
    Set<String> atoms = DimExpressions.atoms(expression);
    if (atoms.size() != 1) {
      return null;
    }
    String atom = atoms.iterator().next();
    Matcher grid = GRID_ATOM.matcher(atom);
    String role = grid.matches() ? grid.group(1) : atom;
    long step = grid.matches() ? Long.parseLong(grid.group(2)) : 1;
    List<Long> solutions = new ArrayList<>();
    for (long size = step; size <= SCAN_LIMIT; size += step) {
      Long value = DimExpressions.evaluate(expression, Map.of(atom, size / step));
      if (value != null && value == constant) {
        solutions.add(size);
      }
    }
    String name = binding.unitName() + role;
    if (solutions.isEmpty()) {
      return "holds for no " + name + " up to " + SCAN_LIMIT;
    }
    if (solutions.size() > 3) {
      return null;
    }
    List<String> printed = new ArrayList<>();
    solutions.forEach(solution -> printed.add(Long.toString(solution)));
    return "holds only for " + name + " " + String.join(" or ", printed);
  }

  /** For reports: the symbolic shape of each graph output, as the user reads it. */
  public static Map<String, String> outputShapes(Model model, ShapeInference inference) {
    Map<String, String> shapes = new LinkedHashMap<>();
    for (Value output : model.graph().outputs()) {
      shapes.put(output.name(), DimPrinter.print(inference.shape(output)));
    }
    return shapes;
  }
}
