package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import dev.kiln.runner.InvalidRequest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The UNet session and everything about feeding it: the guidance branches batched as [negative; prompt] and
 * split back (in chunks of a static export batch), the timestep in the dtype and shape the export declares,
 * SDXL's micro-conditioning, and LCM's guidance embedding. Thread-safe: it holds no per-generation state.
 */
public final class Unet implements AutoCloseable {
  private final OnnxModel model;
  private final String output;
  /** The residual inputs' per-row shapes at factor-1 latents ([channels, downsampling, downsampling]), mid last; empty without them. */
  private final List<long[]> residualLayout;

  /** Everything one generation feeds besides the latents and the timestep. */
  record Conditioning(Tensor hidden, Tensor pooled, Tensor timeIds) {}

  Unet(OnnxModel model, PipelineFolder folder) {
    this.model = model;
    this.output = model.outputs().containsKey("out_sample") ? "out_sample" : model.outputs().keySet().iterator().next();
    for (String required : List.of("sample", "timestep", "encoder_hidden_states")) {
      if (!model.hasInput(required)) {
        throw new KilnException.Unsupported("unet model " + folder.model("unet") + " has no '" + required + "' input (inputs: " + model.inputs().keySet() + ")");
      }
    }
    long channels = model.inputShape("sample")[1];
    if (channels > 0 && channels != folder.latentChannels()) {
      throw new KilnException.Unsupported("unet sample input has " + channels + " channels but the VAE has " + folder.latentChannels()
          + " latent channels (inpainting UNets are not supported)");
    }
    if (folder.xl() && (!model.hasInput("text_embeds") || !model.hasInput("time_ids"))) {
      throw new KilnException.Unsupported("SDXL unet " + folder.model("unet") + " lacks text_embeds/time_ids inputs");
    }
    this.residualLayout = residualLayout(folder);
  }

  static final String DOWN_RESIDUAL = "down_block_additional_residuals_";
  static final String MID_RESIDUAL = "mid_block_additional_residual";

  /**
   * The shapes diffusers' UNet adds residuals to, from its config: conv_in's output, then per down block one per
   * layer and (but for the last block) one after its downsampler, and the mid block's output. Checked against the
   * inputs the export declares: their number, their rank and every static channel count.
   */
  private List<long[]> residualLayout(PipelineFolder folder) {
    int declared = 0;
    while (model.hasInput(DOWN_RESIDUAL + declared)) {
      declared++;
    }
    boolean mid = model.hasInput(MID_RESIDUAL);
    long stray = model.inputs().keySet().stream().filter(name -> name.startsWith(DOWN_RESIDUAL)).count() - declared;
    if (declared == 0 && !mid && stray == 0) {
      return List.of();
    }
    String file = folder.model("unet").toString();
    if (declared == 0 || !mid || stray != 0) {
      throw new KilnException.BadInput("unet model " + file + " has incomplete ControlNet residual inputs: expected " + DOWN_RESIDUAL
          + "0 .. _{N-1} and " + MID_RESIDUAL + ", got " + model.inputs().keySet());
    }
    int[] channels = folder.unetBlockChannels();
    int[] layers = folder.unetLayersPerBlock();
    if (channels == null) {
      throw new KilnException.BadInput("unet config " + dev.kiln.common.PipelineLayout.config(folder.root(), "unet") + " states no block_out_channels, which the ControlNet"
          + " residual shapes of " + file + " are derived from");
    }
    List<long[]> layout = new ArrayList<>();
    layout.add(new long[] {channels[0], 1, 1});
    for (int block = 0; block < channels.length; block++) {
      for (int layer = 0; layer < layers[block]; layer++) {
        layout.add(new long[] {channels[block], 1L << block, 1L << block});
      }
      if (block < channels.length - 1) {
        layout.add(new long[] {channels[block], 1L << (block + 1), 1L << (block + 1)});
      }
    }
    layout.add(new long[] {channels[channels.length - 1], 1L << (channels.length - 1), 1L << (channels.length - 1)});
    if (layout.size() - 1 != declared) {
      throw new KilnException.BadInput("unet model " + file + " declares " + declared + " down-block residual inputs but its config ("
          + Arrays.toString(channels) + " channels, " + Arrays.toString(layers) + " layers per block) has " + (layout.size() - 1)
          + " skip connections");
    }
    for (int index = 0; index < layout.size(); index++) {
      String name = index < declared ? DOWN_RESIDUAL + index : MID_RESIDUAL;
      long[] shape = model.inputShape(name);
      if (shape.length != 4 || (shape[1] > 0 && shape[1] != layout.get(index)[0])) {
        throw new KilnException.BadInput("unet model " + file + ": input '" + name + "' is declared " + Arrays.toString(shape)
            + " but its config gives that skip connection " + layout.get(index)[0] + " channels ([batch, " + layout.get(index)[0]
            + ", height, width])");
      }
    }
    return List.copyOf(layout);
  }

  /** True when the export takes ControlNet residuals (diffusers' down_block_additional_residuals / mid_block_additional_residual). */
  boolean takesResiduals() {
    return !residualLayout.isEmpty();
  }

  /** How many down-block residuals the UNet takes (the mid one not counted); 0 without residual inputs. */
  int downResidualCount() {
    return Math.max(0, residualLayout.size() - 1);
  }

  /** The per-row residual shapes [channels, height, width] for latents of this size, down_0 .. down_{N-1}, then mid. */
  List<long[]> residualShapes(long latentHeight, long latentWidth) {
    return residualLayout.stream().map(entry -> new long[] {entry[0], latentHeight / entry[1], latentWidth / entry[2]}).toList();
  }

  OnnxModel model() {
    return model;
  }

  /** True for LCM-distilled UNets, which take the guidance scale as an embedding ({@code timestep_cond}). */
  boolean guidanceEmbedded() {
    return model.hasInput("timestep_cond");
  }

  /** The batch the export fixes, or -1 when dynamic. */
  long declaredBatch() {
    return model.inputShape("sample")[0];
  }

  /** The prompts' embeddings plus, for SDXL, the time ids in the same [negative; prompt] row order. */
  Conditioning condition(PromptEncoder.Embeddings embeddings, int width, int height, int batch, boolean guided) {
    Tensor timeIds = null;
    if (embeddings.pooled() != null) {
      timeIds = timeIds(width, height, false).repeat(batch);
      if (guided) {
        timeIds = Tensor.concatenate(List.of(timeIds(width, height, true).repeat(batch), timeIds));
      }
    }
    return new Conditioning(embeddings.hidden(), embeddings.pooled(), timeIds);
  }

  /**
   * SDXL's micro-conditioning: (original size, crop top-left, target size) = (H, W, 0, 0, H, W); a refiner
   * (5 values) takes an aesthetic score instead of the target size: 6.0 for the prompt, 2.5 for the negative.
   */
  private Tensor timeIds(int width, int height, boolean negative) {
    long declared = model.inputShape("time_ids")[model.inputShape("time_ids").length - 1];
    float[] values = declared == 5
        ? new float[] {height, width, 0, 0, negative ? 2.5f : 6.0f}
        : new float[] {height, width, 0, 0, height, width};
    return new Tensor(values, new long[] {1, values.length});
  }

  /** The (guided) noise prediction for {@code input} at {@code timestep}. */
  float[] predict(Tensor input, double timestep, Conditioning conditioning, boolean guided, double guidance, StepListener listener, int step) {
    return predict(input, timestep, conditioning, null, guided, guidance, listener, step);
  }

  /**
   * The (guided) noise prediction with ControlNet {@code residuals} for every model row ([negative; prompt] when
   * guided); null feeds zeros to a UNet that takes residuals, which is exactly the UNet without control.
   */
  float[] predict(Tensor input, double timestep, Conditioning conditioning, Residuals residuals, boolean guided, double guidance,
      StepListener listener, int step) {
    int batch = (int) input.dimension(0);
    Tensor modelInput = guided ? Tensor.concatenate(List.of(input, input)) : input;
    int rows = (int) modelInput.dimension(0);
    if (takesResiduals() && residuals == null) {
      residuals = Residuals.zeros(residualShapes(input.dimension(2), input.dimension(3)), rows);
    }
    long declaredBatch = declaredBatch();
    int chunk = declaredBatch > 0 ? (int) declaredBatch : rows;
    if (rows % chunk != 0) {
      throw new InvalidRequest("batch", "cannot run: the unet was exported for batch " + declaredBatch + " but this generation runs " + rows
          + " rows (batch " + batch + (guided ? " x 2 for guidance" : "") + ")");
    }
    List<Tensor> outputs = new ArrayList<>();
    for (int from = 0; from < rows; from += chunk) {
      Map<String, ModelInput> inputs = new HashMap<>();
      inputs.put("sample", ModelInput.of(modelInput.rows(from, from + chunk)));
      inputs.put("timestep", timestepInput(model.inputShape("timestep"), timestep, chunk));
      inputs.put("encoder_hidden_states", ModelInput.of(conditioning.hidden().rows(from, from + chunk)));
      if (conditioning.pooled() != null) {
        inputs.put("text_embeds", ModelInput.of(conditioning.pooled().rows(from, from + chunk)));
        inputs.put("time_ids", ModelInput.of(conditioning.timeIds().rows(from, from + chunk)));
      }
      if (guidanceEmbedded()) {
        inputs.put("timestep_cond", ModelInput.of(guidanceEmbedding(guidance, chunk)));
      }
      if (residuals != null) {
        List<Tensor> all = residuals.rows(from, from + chunk).all();
        for (int index = 0; index < all.size(); index++) {
          inputs.put(index < all.size() - 1 ? DOWN_RESIDUAL + index : MID_RESIDUAL, ModelInput.of(all.get(index)));
        }
      }
      listener.unetInputs(step, inputs);
      outputs.add(model.run(inputs, List.of(output)).get(output));
    }
    Tensor prediction = Tensor.concatenate(outputs);
    if (!guided) {
      return prediction.data();
    }
    float[] all = prediction.data();
    int half = all.length / 2;
    float[] guidedPrediction = new float[half];
    for (int index = 0; index < half; index++) {
      float unconditional = all[index];
      float conditional = all[half + index];
      guidedPrediction[index] = (float) (unconditional + guidance * (conditional - unconditional));
    }
    return guidedPrediction;
  }

  /** The timestep in the shape the export declares: a scalar, [1] or [batch]; the element type is converted later. */
  static ModelInput timestepInput(long[] declared, double timestep, int rows) {
    if (declared.length == 0) {
      return ModelInput.doubles(new double[] {timestep});
    }
    int count = declared[0] > 0 ? (int) declared[0] : rows;
    double[] values = new double[count];
    Arrays.fill(values, timestep);
    return ModelInput.doubles(values, count);
  }

  /** LCM-distilled UNets take the guidance scale as a sinusoidal embedding (w - 1) * 1000, sin then cos. */
  private Tensor guidanceEmbedding(double guidance, int rows) {
    long[] declared = model.inputShape("timestep_cond");
    int dimension = (int) declared[declared.length - 1];
    if (dimension <= 0) {
      throw new KilnException.Unsupported("unet timestep_cond has a dynamic embedding size");
    }
    int half = dimension / 2;
    double w = (guidance - 1) * 1000.0;
    float[] row = new float[dimension];
    double rate = Math.log(10000.0) / (half - 1);
    for (int index = 0; index < half; index++) {
      double angle = w * Math.exp(-rate * index);
      row[index] = (float) Math.sin(angle);
      row[half + index] = (float) Math.cos(angle);
    }
    return new Tensor(row, new long[] {1, dimension}).repeat(rows);
  }

  @Override
  public void close() {
    model.close();
  }
}
