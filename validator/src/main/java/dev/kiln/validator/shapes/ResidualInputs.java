package dev.kiln.validator.shapes;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.Use;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.DimExpressions;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.Names;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The ControlNet interface in diffusers' names (tuples flattened with {@code _K}): a ControlNet's
 * {@code down_block_res_samples_K} / {@code mid_block_res_sample} outputs feed a UNet's
 * {@code down_block_additional_residuals_K} / {@code mid_block_additional_residual} inputs, which the UNet adds
 * to its skip samples and mid-block output. What shape each residual must have is read from the UNet itself: the
 * shape of the tensor it is added to.
 */
public final class ResidualInputs {
  public static final String CONTROL_IMAGE = "controlnet_cond";
  public static final String DOWN_OUTPUT = "down_block_res_samples_";
  public static final String MID_OUTPUT = "mid_block_res_sample";
  public static final String DOWN_INPUT = "down_block_additional_residuals_";
  public static final String MID_INPUT = "mid_block_additional_residual";

  private static final Pattern GRID_ATOM = Pattern.compile("([A-Za-z_][A-Za-z_0-9]*):(\\d+)");

  private ResidualInputs() {}

  /** The UNet's residual inputs: the down-block ones by index, then the mid block's. */
  public static List<Value> residualInputs(Model model) {
    List<Value> downs = new ArrayList<>();
    Value mid = null;
    for (Value input : model.graph().inputs()) {
      if (input.isInitializer()) {
        continue;
      }
      if (index(input.name(), DOWN_INPUT) >= 0) {
        downs.add(input);
      } else if (input.name().equals(MID_INPUT)) {
        mid = input;
      }
    }
    downs.sort(Comparator.comparingInt(value -> index(value.name(), DOWN_INPUT)));
    if (mid != null) {
      downs.add(mid);
    }
    return downs;
  }

  /** Whether {@code name} is one of a UNet's ControlNet residual inputs. */
  public static boolean isResidualInput(String name) {
    return index(name, DOWN_INPUT) >= 0 || name.equals(MID_INPUT);
  }

  /** K of {@code prefix + K}, or -1 when {@code name} is not one. */
  public static int index(String name, String prefix) {
    if (!name.startsWith(prefix) || name.length() == prefix.length() || name.length() > prefix.length() + 6) {
      return -1;
    }
    for (int position = prefix.length(); position < name.length(); position++) {
      if (!Character.isDigit(name.charAt(position))) {
        return -1;
      }
    }
    return Integer.parseInt(name.substring(prefix.length()));
  }

  /**
   * The inferred shape of what {@code residual} is added to (the other operand of the Add or Sum that reads it);
   * null when it is read by anything else, or the other operand's shape is unknown.
   */
  public static Shape partnerShape(Value residual, ShapeInference inference) {
    for (Use use : residual.uses()) {
      Node node = use.node();
      if (!node.is(Onnx.ADD) && !node.is(Onnx.SUM)) {
        continue;
      }
      for (int index = 0; index < node.inputCount(); index++) {
        Value other = node.input(index);
        if (index != use.inputIndex() && other != null && other != residual) {
          Shape shape = inference.shape(other);
          if (shape != null && shape.dims().stream().noneMatch(dim -> dim instanceof Shape.Unknown)) {
            return shape;
          }
        }
      }
    }
    return null;
  }

  /** {@code shape}'s dims at {@code size}: each symbolic dim evaluated with its role atoms bound. */
  public static Shape evaluate(Shape shape, Size size, Value input) {
    List<Dim> dims = new ArrayList<>();
    for (Dim dim : shape.dims()) {
      Map<String, Long> atoms = new HashMap<>();
      for (String atom : DimExpressions.atoms(dim)) {
        Matcher grid = GRID_ATOM.matcher(atom);
        String role = grid.matches() ? grid.group(1) : atom;
        long step = grid.matches() ? Long.parseLong(grid.group(2)) : 1;
        Long value = size.values().get(role);
        if (value != null) {
          atoms.put(atom, value / step);
        }
      }
      Long value = DimExpressions.evaluate(dim, atoms);
      if (value == null) {
        throw new KilnException.BadInput("input " + Names.quote(input.name()) + ": its size follows the UNet's skip sample "
            + dim + ", which has no value at " + size.label());
      }
      dims.add(Shape.known(value));
    }
    return Shape.of(dims);
  }
}
