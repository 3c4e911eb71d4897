package dev.kiln.validator.shapes;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.ComponentKind;
import dev.kiln.validator.Names;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Which input dims are the batch, the spatial height and width, and the token sequence, and what they are at
 * each size to check. Symbolic spatial dims are bound as a multiple of the size grid ("8*height:8" for a UNet
 * whose latents are multiples of 8), so that a stride-2 convolution halves them exactly in the proof.
 */
public final class InputBinding {
  public static final String BATCH = "batch";
  public static final String HEIGHT = "height";
  public static final String WIDTH = "width";
  public static final String SEQUENCE = "sequence";
  private static final long DEFAULT_SEQUENCE = 77;

  private final Model model;
  private final ComponentKind kind;
  private final int scale;
  private final Map<String, String> roles = new LinkedHashMap<>();
  private final Map<String, Long> fixed = new LinkedHashMap<>();
  /** Spatial dims that are a multiple of their role (a ControlNet's control image: 8x the latent). */
  private final Map<String, Long> factors = new LinkedHashMap<>();
  private final List<Value> inputs = new ArrayList<>();
  /** A residual UNet's ControlNet residual inputs, bound to the shape of the skip sample each one is added to. */
  private final Map<Value, Shape> residuals = new IdentityHashMap<>();

  /**
   * @param imageUnits whether sizes are the pipeline's image pixels (a folder) rather than the model's own
   */
  public InputBinding(Model model, ComponentKind kind, boolean imageUnits) {
    this.model = model;
    this.kind = kind;
    this.scale = imageUnits ? kind.imageScale() : 1;
    for (Value input : model.graph().inputs()) {
      if (!input.isInitializer()) {
        inputs.add(input);
      }
    }
    Value image = null;
    for (Value input : inputs) {
      if (input.shape() != null && input.shape().rank() == 4 && kind != ComponentKind.TEXT_ENCODER) {
        image = input;
        break;
      }
    }
    if (image != null) {
      bindAxis(image, 0, BATCH);
      bindAxis(image, 2, HEIGHT);
      bindAxis(image, 3, WIDTH);
    }
    for (Value input : inputs) {
      // The control image is the pipeline's image: 8x the latent the sample input is.
      if (kind == ComponentKind.CONTROLNET && input.name().equals(ResidualInputs.CONTROL_IMAGE) && input != image
          && input.shape() != null && input.shape().rank() == 4) {
        bindAxis(input, 0, BATCH);
        bindScaledAxis(input, 2, HEIGHT, 8);
        bindScaledAxis(input, 3, WIDTH, 8);
      }
    }
    for (Value input : inputs) {
      Shape shape = input.shape();
      if (shape == null) {
        continue;
      }
      for (int axis = 0; axis < shape.rank(); axis++) {
        if (shape.dim(axis) instanceof Shape.Symbolic symbolic && !roles.containsKey(symbolic.name())) {
          String name = symbolic.name().toLowerCase(Locale.ROOT);
          if (name.contains("batch") || (axis == 0 && input.name().equals("timestep"))) {
            roles.put(symbolic.name(), BATCH);
          } else if (name.contains("seq")) {
            roles.put(symbolic.name(), SEQUENCE);
          } else if (kind == ComponentKind.TEXT_ENCODER && input.name().equals("input_ids")) {
            roles.put(symbolic.name(), axis == 0 ? BATCH : SEQUENCE);
          }
        }
      }
    }
    if (kind == ComponentKind.UNET) {
      bindResiduals();
    }
  }

  private void bindScaledAxis(Value input, int axis, String role, long factor) {
    if (input.shape().dim(axis) instanceof Shape.Symbolic symbolic && !roles.containsKey(symbolic.name())) {
      roles.put(symbolic.name(), role);
      factors.put(symbolic.name(), factor);
    }
  }

  /**
   * Binds each ControlNet residual input of a UNet to the shape of the skip sample it is added to, inferred from
   * the sample input over every size; call once the roles are known. An input whose partner cannot be found keeps
   * its declared dims (free symbols, which then need --shapes).
   */
  private void bindResiduals() {
    List<Value> found = ResidualInputs.residualInputs(model);
    if (found.isEmpty()) {
      return;
    }
    Map<Value, Shape> base = symbolicInputs();
    ShapeInference inference = ShapeInference.of(model, base);
    for (Value input : found) {
      Shape partner = ResidualInputs.partnerShape(input, inference);
      if (partner != null && partner.rank() == 4) {
        residuals.put(input, partner);
      }
    }
  }

  /** The residual inputs this binding derived from the UNet's own skip samples (empty for other models). */
  public Map<Value, Shape> residualShapes() {
    return residuals;
  }

  private void bindAxis(Value input, int axis, String role) {
    Dim dim = input.shape().dim(axis);
    if (dim instanceof Shape.Symbolic symbolic) {
      roles.putIfAbsent(symbolic.name(), role);
    } else if (dim instanceof Shape.Known known) {
      fixed.put(role, known.value());
    }
  }

  public ComponentKind kind() {
    return kind;
  }

  /** The grid a spatial role moves on in the proof (its sizes are multiples of this). */
  public int multiple(String role) {
    return (role.equals(HEIGHT) || role.equals(WIDTH)) ? kind.spatialMultiple() : 1;
  }

  /** The input shapes of the proof over all sizes: every bound dim named after its role. */
  public Map<Value, Shape> symbolicInputs() {
    Map<Value, Shape> shapes = new IdentityHashMap<>();
    for (Value input : inputs) {
      Shape shape = input.shape();
      if (shape == null) {
        continue;
      }
      if (residuals.containsKey(input)) {
        shapes.put(input, residuals.get(input));
        continue;
      }
      List<Dim> dims = new ArrayList<>();
      for (Dim dim : shape.dims()) {
        if (dim instanceof Shape.Symbolic symbolic && roles.containsKey(symbolic.name())) {
          dims.add(roleSymbol(roles.get(symbolic.name()), factors.getOrDefault(symbolic.name(), 1L)));
        } else {
          dims.add(dim);
        }
      }
      shapes.put(input, Shape.of(dims));
    }
    return shapes;
  }

  private Dim roleSymbol(String role, long factor) {
    long multiple = multiple(role);
    long scaled = multiple * factor;
    return Shape.symbolic(multiple > 1 ? scaled + "*" + role + ":" + multiple : factor > 1 ? factor + "*" + role : role);
  }

  /** The input shapes at one size; a symbol with no size is bad input. */
  public Map<Value, Shape> concreteInputs(Size size) {
    Map<Value, Shape> shapes = new IdentityHashMap<>();
    for (Value input : inputs) {
      Shape shape = input.shape();
      if (shape == null) {
        continue;
      }
      if (residuals.containsKey(input)) {
        shapes.put(input, ResidualInputs.evaluate(residuals.get(input), size, input));
        continue;
      }
      List<Dim> dims = new ArrayList<>();
      for (Dim dim : shape.dims()) {
        if (dim instanceof Shape.Symbolic symbolic) {
          String key = roles.getOrDefault(symbolic.name(), symbolic.name());
          Long value = size.values().get(key);
          if (value != null) {
            value = value * factors.getOrDefault(symbolic.name(), 1L);
          }
          if (value == null) {
            throw new KilnException.BadInput(source() + ": input " + Names.quote(input.name()) + " has dim "
                + Names.quote(symbolic.name()) + " with no size; give it with --shapes \"" + symbolic.name() + "=N\"");
          }
          dims.add(Shape.known(value));
        } else {
          dims.add(dim);
        }
      }
      shapes.put(input, Shape.of(dims));
    }
    return shapes;
  }

  /** Dims of the inputs that are neither a role nor fixed: each needs a value in {@code --shapes}. */
  private List<String> freeSymbols() {
    List<String> free = new ArrayList<>();
    for (Value input : inputs) {
      if (input.shape() == null || residuals.containsKey(input)) {
        continue;
      }
      for (Dim dim : input.shape().dims()) {
        if (dim instanceof Shape.Symbolic symbolic && !roles.containsKey(symbolic.name())
            && !free.contains(symbolic.name())) {
          free.add(symbolic.name());
        }
      }
    }
    return free;
  }

  /**
   * The sizes to check: every combination of the spec's values (a missing width follows the height and the
   * other way round), or three default sizes, in the model's units. A spatial size the model cannot take (not
   * a whole latent, or a fixed input of another size) is returned in {@code refused} with the reason.
   */
  public List<Size> sizes(SizeSpec spec, Map<String, String> refused) {
    List<Map<String, Long>> combinations = new ArrayList<>();
    boolean spatial = roles.containsValue(HEIGHT) || fixed.containsKey(HEIGHT);
    if (!spec.has(HEIGHT) && !spec.has(WIDTH) && spatial) {
      long[][] defaults = {{1, 512, 512}, {2, 768, 512}, {1, 512, 768}};
      for (long[] row : defaults) {
        Map<String, Long> values = new LinkedHashMap<>();
        values.put(BATCH, spec.has(BATCH) ? spec.get(BATCH).get(0) : row[0]);
        long unit = scale == 1 && kind.imageScale() == 8 ? 8 : 1;
        values.put(HEIGHT, row[1] / unit);
        values.put(WIDTH, row[2] / unit);
        combinations.add(values);
      }
    } else {
      boolean batched = roles.containsValue(BATCH);
      List<Long> batches = spec.has(BATCH) ? spec.get(BATCH) : (spatial || !batched ? List.of(1L) : List.of(1L, 2L, 3L));
      List<Long> heights = !spatial ? List.of(0L) : spec.has(HEIGHT) ? spec.get(HEIGHT) : spec.get(WIDTH);
      List<Long> widths = spatial && spec.has(WIDTH) ? spec.get(WIDTH) : null;
      for (long batch : batches) {
        for (long height : heights) {
          for (long width : widths == null ? List.of(height) : widths) {
            Map<String, Long> values = new LinkedHashMap<>();
            if (batched || spec.has(BATCH)) {
              values.put(BATCH, batch);
            }
            if (spatial) {
              values.put(HEIGHT, height);
              values.put(WIDTH, width);
            }
            combinations.add(values);
          }
        }
      }
    }
    List<Size> sizes = new ArrayList<>();
    List<String> free = freeSymbols();
    for (Map<String, Long> user : combinations) {
      Map<String, Long> values = new LinkedHashMap<>(user);
      String label = user.isEmpty() ? "declared shapes" : Size.describe(user);
      String problem = null;
      for (String role : List.of(HEIGHT, WIDTH)) {
        Long value = values.get(role);
        if (value == null) {
          continue;
        }
        if (value % scale != 0) {
          problem = role + " " + value + " is not a multiple of " + scale + " (the latent is 1/" + scale + " of the image)";
          break;
        }
        long modelSize = value / scale;
        values.put(role, modelSize);
        if (fixed.containsKey(role) && fixed.get(role) != modelSize) {
          problem = "the model's input is fixed at " + role + " " + fixed.get(role) * scale + ", not " + value;
          break;
        }
        if (modelSize % multiple(role) != 0) {
          problem = unitName() + role + " " + modelSize + " is not a multiple of " + multiple(role);
          break;
        }
      }
      if (kind != ComponentKind.OTHER || roles.containsValue(SEQUENCE)) {
        values.putIfAbsent(SEQUENCE, spec.has(SEQUENCE) ? spec.get(SEQUENCE).get(0) : DEFAULT_SEQUENCE);
      }
      for (String symbol : free) {
        if (spec.has(symbol)) {
          values.put(symbol, spec.get(symbol).get(0));
        }
      }
      if (scale != 1 && values.containsKey(HEIGHT)) {
        label = label + " (" + unitName() + values.get(HEIGHT) + "x" + values.get(WIDTH) + ")";
      }
      if (problem != null) {
        refused.put(label, problem);
      } else {
        sizes.add(new Size(values, label));
      }
    }
    return sizes;
  }

  /** "latent " for the models whose spatial input is a latent. */
  public String unitName() {
    return kind.imageScale() == 8 ? "latent " : "";
  }

  private String source() {
    return model.source() == null ? "model" : model.source().toString();
  }
}
