package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One ControlNet session (diffusers' ControlNetModel exported with its I/O names: {@code sample}, {@code timestep},
 * {@code encoder_hidden_states}, {@code controlnet_cond} RGB [0, 1], scalar {@code conditioning_scale} in;
 * {@code down_block_res_samples_K} and {@code mid_block_res_sample} out), checked against the UNet it feeds when
 * opened. Thread-safe: it holds no per-generation state.
 */
public final class ControlNet implements AutoCloseable {
  static final String DOWN_OUTPUT = "down_block_res_samples_";
  static final String MID_OUTPUT = "mid_block_res_sample";
  private static final List<String> REQUIRED = List.of("sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale");

  private final OnnxModel model;
  private final Path file;
  private final List<String> outputs;

  /** Checks {@code model}'s I/O against diffusers' names and against {@code unet}'s residual inputs (count, rank, channels). */
  ControlNet(OnnxModel model, Path file, Unet unet) {
    this.model = model;
    this.file = file;
    for (String required : REQUIRED) {
      if (!model.hasInput(required)) {
        throw new KilnException.BadInput("controlnet model " + file + " has no '" + required + "' input (expected diffusers' ControlNet inputs "
            + REQUIRED + ", got " + model.inputs().keySet() + ")");
      }
    }
    if (model.inputShape("conditioning_scale").length > 1 || (model.inputShape("conditioning_scale").length == 1
        && model.inputShape("conditioning_scale")[0] > 1)) {
      throw new KilnException.BadInput("controlnet model " + file + ": input 'conditioning_scale' is declared "
          + Arrays.toString(model.inputShape("conditioning_scale")) + ", expected a scalar");
    }
    long[] condition = model.inputShape("controlnet_cond");
    if (condition.length != 4 || (condition[1] > 0 && condition[1] != 3)) {
      throw new KilnException.BadInput("controlnet model " + file + ": input 'controlnet_cond' is declared " + Arrays.toString(condition)
          + ", expected [batch, 3, height, width] (Kiln feeds the control image as RGB)");
    }
    int count = 0;
    while (model.outputs().containsKey(DOWN_OUTPUT + count)) {
      count++;
    }
    if (count == 0 || !model.outputs().containsKey(MID_OUTPUT)) {
      throw new KilnException.BadInput("controlnet model " + file + " has no " + DOWN_OUTPUT + "0 .. and " + MID_OUTPUT
          + " outputs (got " + model.outputs().keySet() + ")");
    }
    if (!unet.takesResiduals()) {
      throw new KilnException.BadInput("controlnet " + file + " cannot drive unet " + unet.model().component() + " model: it has no "
          + Unet.DOWN_RESIDUAL + "K / " + Unet.MID_RESIDUAL + " inputs (export the UNet with ControlNet residual inputs)");
    }
    if (count != unet.downResidualCount()) {
      throw new KilnException.BadInput("controlnet model " + file + " gives " + count + " down-block residuals but the unet takes "
          + unet.downResidualCount());
    }
    List<String> names = new ArrayList<>();
    for (int index = 0; index < count; index++) {
      names.add(DOWN_OUTPUT + index);
    }
    names.add(MID_OUTPUT);
    this.outputs = List.copyOf(names);
    List<long[]> expected = unet.residualShapes(1, 1);
    for (int index = 0; index < names.size(); index++) {
      long[] shape = model.outputs().get(names.get(index)).getShape();
      long channels = expected.get(index)[0];
      if (shape.length != 4 || (shape[1] > 0 && shape[1] != channels)) {
        throw new KilnException.BadInput("controlnet model " + file + ": output '" + names.get(index) + "' is declared "
            + Arrays.toString(shape) + " but the unet's matching residual input takes [batch, " + channels + ", height, width]");
      }
    }
  }

  Path file() {
    return file;
  }

  /** The batch the export fixes, or -1 when dynamic. */
  private long declaredBatch() {
    return model.inputShape("sample")[0];
  }

  /**
   * The residuals for {@code sample} rows (latents, already scaled for the scheduler), each row with the same row of
   * {@code hidden} (and SDXL's {@code pooled}/{@code timeIds}) and {@code image}, times {@code scale}; the outputs'
   * shapes are checked against {@code expected} (the UNet's, per row) before the UNet sees them.
   */
  Residuals run(Tensor sample, double timestep, Unet.Conditioning conditioning, int conditioningFrom, Tensor image, float scale,
      List<long[]> expected) {
    int rows = (int) sample.dimension(0);
    long declaredBatch = declaredBatch();
    int chunk = declaredBatch > 0 ? (int) declaredBatch : rows;
    if (rows % chunk != 0) {
      throw new KilnException.BadInput("controlnet model " + file + " was exported for batch " + declaredBatch + " but this generation runs "
          + rows + " rows through it");
    }
    List<List<Tensor>> parts = new ArrayList<>();
    for (int from = 0; from < rows; from += chunk) {
      Map<String, ModelInput> inputs = new HashMap<>();
      inputs.put("sample", ModelInput.of(sample.rows(from, from + chunk)));
      inputs.put("timestep", Unet.timestepInput(model.inputShape("timestep"), timestep, chunk));
      int at = conditioningFrom + from;
      inputs.put("encoder_hidden_states", ModelInput.of(conditioning.hidden().rows(at, at + chunk)));
      if (conditioning.pooled() != null) {
        inputs.put("text_embeds", ModelInput.of(conditioning.pooled().rows(at, at + chunk)));
        inputs.put("time_ids", ModelInput.of(conditioning.timeIds().rows(at, at + chunk)));
      }
      inputs.put("controlnet_cond", ModelInput.of(image.rows(from, from + chunk)));
      long[] scaleShape = model.inputShape("conditioning_scale").length == 0 ? new long[0] : new long[] {1};
      inputs.put("conditioning_scale", new ModelInput(new float[] {scale}, scaleShape));
      Map<String, Tensor> produced = model.run(inputs, outputs);
      List<Tensor> tensors = new ArrayList<>();
      for (int index = 0; index < outputs.size(); index++) {
        Tensor tensor = produced.get(outputs.get(index));
        long[] wanted = expected.get(index);
        long[] want = {chunk, wanted[0], wanted[1], wanted[2]};
        if (!Arrays.equals(tensor.shape(), want)) {
          throw new KilnException.BadInput("controlnet model " + file + ": output '" + outputs.get(index) + "' is "
              + Arrays.toString(tensor.shape()) + " but the unet's matching residual input needs " + Arrays.toString(want));
        }
        tensors.add(tensor);
      }
      parts.add(tensors);
    }
    List<Tensor> joined = new ArrayList<>();
    for (int index = 0; index < outputs.size(); index++) {
      int output = index;
      joined.add(Tensor.concatenate(parts.stream().map(part -> part.get(output)).toList()));
    }
    return new Residuals(List.copyOf(joined.subList(0, joined.size() - 1)), joined.get(joined.size() - 1));
  }

  @Override
  public void close() {
    model.close();
  }
}
