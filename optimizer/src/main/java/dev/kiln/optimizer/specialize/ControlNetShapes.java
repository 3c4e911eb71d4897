package dev.kiln.optimizer.specialize;

import dev.kiln.graph.Model;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.shapes.ResidualInputs;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The ControlNet interface's inputs come with dims of their own names: a ControlNet's {@code controlnet_cond}
 * ([B, 3, 8h, 8w]) and a UNet's {@code down_block_additional_residuals_K} / {@code mid_block_additional_residual}
 * (each the shape of the skip sample it is added to). Shape inference then cannot tell that conv_in's output plus
 * the control embedding, or a skip sample plus its residual, has the sample's shape, every shape read downstream
 * (the attention head splits, SkipLayerNormalization's equal-shape check) stops being provably the sample's, and
 * the fusions after it fail. The contract fixes those shapes (the validator proves it for a pair), so the optimizer
 * declares them while its rules run and puts the inputs' own declared shapes back afterwards.
 */
public final class ControlNetShapes {
  /** The control image is the pipeline's image: 8x the latent (three stride-2 stages in the conditioning embedding). */
  private static final long CONTROL_SCALE = 8;

  private ControlNetShapes() {}

  /** Declares the interface inputs' shapes in terms of the sample's dims; returns the declared shapes to restore. */
  public static Map<Value, Shape> bind(Model model) {
    Map<Value, Shape> originals = new IdentityHashMap<>();
    Value sample = null;
    Value control = null;
    for (Value input : model.graph().inputs()) {
      if (input.name().equals("sample") && !input.isInitializer()) {
        sample = input;
      } else if (input.name().equals(ResidualInputs.CONTROL_IMAGE) && !input.isInitializer()) {
        control = input;
      }
    }
    if (sample != null && control != null) {
      bindControlImage(sample, control, originals);
    }
    List<Value> residuals = ResidualInputs.residualInputs(model);
    if (!residuals.isEmpty()) {
      ShapeInference inference = ShapeInference.of(model);
      for (Value residual : residuals) {
        Shape partner = ResidualInputs.partnerShape(residual, inference);
        if (partner != null && residual.shape() != null && partner.rank() == residual.shape().rank()) {
          originals.put(residual, residual.shape());
          residual.setType(residual.dataType(), partner);
        }
      }
    }
    return originals;
  }

  /** [B, C, 8h, 8w] for a [B, 4, h, w] sample, where the sample's dims are symbolic (static ones need nothing). */
  private static void bindControlImage(Value sample, Value control, Map<Value, Shape> originals) {
    Shape latent = sample.shape();
    Shape image = control.shape();
    if (latent == null || image == null || latent.rank() != 4 || image.rank() != 4) {
      return;
    }
    List<Shape.Dim> dims = new ArrayList<>(image.dims());
    boolean changed = false;
    if (latent.dim(0) instanceof Shape.Symbolic && !(image.dim(0) instanceof Shape.Known)) {
      dims.set(0, latent.dim(0));
      changed = true;
    }
    for (int axis = 2; axis < 4; axis++) {
      if (latent.dim(axis) instanceof Shape.Symbolic symbolic && !(image.dim(axis) instanceof Shape.Known)) {
        dims.set(axis, Shape.symbolic(CONTROL_SCALE + "*" + symbolic.name()));
        changed = true;
      }
    }
    if (changed) {
      originals.put(control, image);
      control.setType(control.dataType(), Shape.of(dims));
    }
  }

  /** Puts back what {@link #bind} replaced: the model's inputs keep the names and dims they came with. */
  public static void restore(Map<Value, Shape> originals) {
    originals.forEach((value, shape) -> value.setType(value.dataType(), shape));
  }
}
