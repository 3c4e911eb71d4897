package dev.kiln.exporter.lowering;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds sizes the trace turned into constants ({@code int(x.size(2))} records the traced height as a number): an
 * integer constant used as a size — an element of a shape list, or a factor with a traced size — that equals a
 * dynamic input dim at the shape the module was traced at. Such a graph only runs at that size; torch.onnx.export
 * would bake it silently, the exporter says where.
 */
public final class BakedConstants {
  /** A dynamic input dim at the traced shape: {@code sample dim 2 = 8}. */
  public record TracedDim(String input, int axis, long size) {}

  private final List<TracedDim> tracedDims;
  private final Set<String> warnings = new LinkedHashSet<>();
  private String location = "";
  private String tracedShapes = "";

  public BakedConstants(List<TracedDim> tracedDims, Map<String, long[]> shapes) {
    this.tracedDims = tracedDims;
    List<String> described = new ArrayList<>();
    for (Map.Entry<String, long[]> entry : shapes.entrySet()) {
      StringBuilder text = new StringBuilder(entry.getKey()).append(' ');
      for (int axis = 0; axis < entry.getValue().length; axis++) {
        text.append(axis == 0 ? "" : "x").append(entry.getValue()[axis]);
      }
      described.add(text.toString());
    }
    this.tracedShapes = String.join(", ", described);
  }

  public static BakedConstants none() {
    return new BakedConstants(List.of(), Map.of());
  }

  void at(String location) {
    this.location = location;
  }

  /** An integer constant used as a size at the current statement. */
  void sizeConstant(long value) {
    if (value < 2) {
      return;
    }
    for (TracedDim dim : tracedDims) {
      if (dim.size() == value) {
        warnings.add("baked constant " + value + " at " + location + ": equals input '" + dim.input() + "' dim " + dim.axis()
            + " at the traced shape (" + tracedShapes + "); the exported graph is only correct at that size");
        return;
      }
    }
  }

  public List<String> warnings() {
    return List.copyOf(warnings);
  }
}
