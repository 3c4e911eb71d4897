package dev.kiln.exporter;

import dev.kiln.common.KilnException;
import dev.kiln.graph.DataType;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The diffusers/Optimum ONNX interface of each pipeline component: input and output names, ONNX element types
 * and dynamic dim names — the same as the committed ONNX pipelines, so {@code kiln generate} reads an export as
 * it reads torch.onnx.export's.
 */
public record ComponentSpec(String kind, List<Io> inputs, List<Io> outputs, String repeatedOutput) {
  /** One graph input or output; {@code torchType} differs from {@code onnxType} where Optimum casts (int32 ids). */
  public record Io(String name, DataType onnxType, DataType torchType, Map<Integer, String> dims) {}

  public static final List<String> KINDS = List.of("text_encoder", "text_encoder_2", "unet", "controlnet", "vae_encoder", "vae_decoder", "generic");

  /** A ControlNet's outputs: one per UNet down-block skip sample (diffusers' tuple, flattened), then the mid block's. */
  public static final String DOWN_RESIDUAL_OUTPUT = "down_block_res_samples_";
  public static final String MID_RESIDUAL_OUTPUT = "mid_block_res_sample";
  /** The residual UNet's extra inputs, in the order of the ControlNet's outputs. */
  public static final String DOWN_RESIDUAL_INPUT = "down_block_additional_residuals_";
  public static final String MID_RESIDUAL_INPUT = "mid_block_additional_residual";

  private static final Map<Integer, String> BATCH = Map.of(0, "batch_size");
  private static final Map<Integer, String> SEQUENCE = Map.of(0, "batch_size", 1, "sequence_length");
  private static final Map<Integer, String> IMAGE = Map.of(0, "batch_size", 2, "height", 3, "width");
  private static final Map<Integer, String> LATENT = Map.of(0, "batch_size", 2, "height_latent", 3, "width_latent");
  /** The ControlNet's control image: the pipeline's image size, 8x the latent's. */
  private static final Map<Integer, String> CONTROL_IMAGE = Map.of(0, "batch_size", 2, "image_height", 3, "image_width");

  public static ComponentSpec of(String kind) {
    Io ids = new Io("input_ids", DataType.INT32, DataType.INT64, SEQUENCE);
    return switch (kind) {
      case "text_encoder" -> new ComponentSpec(kind, List.of(ids), List.of(new Io("last_hidden_state", DataType.FLOAT, DataType.FLOAT, SEQUENCE),
          new Io("pooler_output", DataType.FLOAT, DataType.FLOAT, BATCH)), "hidden_states.");
      case "text_encoder_2" -> new ComponentSpec(kind, List.of(ids), List.of(new Io("text_embeds", DataType.FLOAT, DataType.FLOAT, BATCH),
          new Io("last_hidden_state", DataType.FLOAT, DataType.FLOAT, SEQUENCE)), "hidden_states.");
      case "unet" -> new ComponentSpec(kind, List.of(new Io("sample", DataType.FLOAT, DataType.FLOAT, IMAGE),
          new Io("timestep", DataType.INT64, DataType.INT64, Map.of(0, "steps")),
          new Io("encoder_hidden_states", DataType.FLOAT, DataType.FLOAT, SEQUENCE), new Io("text_embeds", DataType.FLOAT, DataType.FLOAT, BATCH),
          new Io("time_ids", DataType.FLOAT, DataType.FLOAT, BATCH)), List.of(new Io("out_sample", DataType.FLOAT, DataType.FLOAT, IMAGE)), null);
      // The trailing mid-block output follows the repeated down-block outputs (see outputs()).
      case "controlnet" -> new ComponentSpec(kind, List.of(new Io("sample", DataType.FLOAT, DataType.FLOAT, IMAGE),
          new Io("timestep", DataType.INT64, DataType.INT64, Map.of(0, "steps")),
          new Io("encoder_hidden_states", DataType.FLOAT, DataType.FLOAT, SEQUENCE),
          new Io("controlnet_cond", DataType.FLOAT, DataType.FLOAT, CONTROL_IMAGE),
          new Io("conditioning_scale", DataType.FLOAT, DataType.FLOAT, Map.of())),
          List.of(new Io(MID_RESIDUAL_OUTPUT, DataType.FLOAT, DataType.FLOAT, BATCH)), DOWN_RESIDUAL_OUTPUT);
      case "vae_encoder" -> new ComponentSpec(kind, List.of(new Io("sample", DataType.FLOAT, DataType.FLOAT, IMAGE)),
          List.of(new Io("latent_parameters", DataType.FLOAT, DataType.FLOAT, LATENT)), null);
      case "vae_decoder" -> new ComponentSpec(kind, List.of(new Io("latent_sample", DataType.FLOAT, DataType.FLOAT, LATENT)),
          List.of(new Io("sample", DataType.FLOAT, DataType.FLOAT, IMAGE)), null);
      case "generic" -> new ComponentSpec(kind, List.of(), List.of(), "output_");
      default -> throw new KilnException.BadInput("unknown component kind '" + kind + "' (expected one of " + String.join(", ", KINDS) + ")");
    };
  }

  /** The kind a folder name suggests (the layouts of diffusers' and Kiln's fixtures); generic when none fits. */
  public static String guess(String folderName) {
    String name = folderName.toLowerCase(Locale.ROOT);
    // Before "unet": a ControlNet folder; but a UNet taking ControlNet residuals ("unet_controlnet") is a UNet.
    if (name.contains("controlnet") && !name.contains("unet")) {
      return "controlnet";
    }
    if ((name.contains("text") || name.contains("clip")) && name.endsWith("_2")) {
      return "text_encoder_2";
    }
    if (name.contains("text") || name.contains("clip")) {
      return "text_encoder";
    }
    if (name.contains("unet")) {
      return "unet";
    }
    if (name.contains("decoder")) {
      return "vae_decoder";
    }
    if (name.contains("encoder")) {
      return "vae_encoder";
    }
    return "generic";
  }

  /** Input {@code index} of {@code count}, falling back to the traced parameter name past the known ones. */
  Io input(int index, String parameterName) {
    if (index < inputs.size()) {
      return inputs.get(index);
    }
    return new Io(parameterName, DataType.FLOAT, DataType.FLOAT, Map.of());
  }

  /**
   * The inputs for the traced forward's parameter names (without self). A UNet whose forward takes more than its
   * own inputs (sample, timestep, encoder_hidden_states, SDXL's text_embeds and time_ids, recognised by name) is
   * a UNet with ControlNet residual inputs: the rest are the down-block residuals in order, then the mid block's.
   */
  List<Io> inputs(List<String> parameterNames) {
    List<Io> result = new ArrayList<>();
    int own = 3;
    if (kind.equals("unet")) {
      while (own < Math.min(5, parameterNames.size()) && parameterNames.get(own).startsWith(inputs.get(own).name())) {
        own++;
      }
    }
    boolean residuals = kind.equals("unet") && parameterNames.size() > own && (own == 5 || parameterNames.size() > 5
        || !parameterNames.get(own).startsWith(inputs.get(own).name()));
    if (!residuals) {
      for (int index = 0; index < parameterNames.size(); index++) {
        result.add(input(index, parameterNames.get(index)));
      }
      return result;
    }
    if (parameterNames.size() - own < 2) {
      throw new KilnException.BadInput("a UNet with ControlNet residual inputs needs at least one down-block and the mid-block "
          + "residual after its own inputs; its forward takes " + parameterNames);
    }
    result.addAll(inputs.subList(0, own));
    int downs = parameterNames.size() - own - 1;
    for (int index = 0; index < downs; index++) {
      result.add(new Io(DOWN_RESIDUAL_INPUT + index, DataType.FLOAT, DataType.FLOAT, residualDims(DOWN_RESIDUAL_INPUT + index)));
    }
    result.add(new Io(MID_RESIDUAL_INPUT, DataType.FLOAT, DataType.FLOAT, residualDims(MID_RESIDUAL_INPUT)));
    return result;
  }

  /** Each residual's spatial size is its own (the skip samples halve per stage): named after the input. */
  private static Map<Integer, String> residualDims(String name) {
    return Map.of(0, "batch_size", 2, name + "_height", 3, name + "_width");
  }

  /** Output names for a forward returning {@code count} tensors. */
  List<Io> outputs(int count, List<DataType> types) {
    List<Io> result = new ArrayList<>();
    if (kind.equals("controlnet")) {
      // diffusers' (down_block_res_samples, mid_block_res_sample), flattened: the mid block's comes last.
      for (int index = 0; index < count; index++) {
        result.add(index == count - 1 ? outputs.get(0)
            : new Io(DOWN_RESIDUAL_OUTPUT + index, types.get(index), types.get(index), BATCH));
      }
      return result;
    }
    for (int index = 0; index < count; index++) {
      if (index < outputs.size()) {
        result.add(outputs.get(index));
      } else {
        int repeated = index - outputs.size();
        String prefix = repeatedOutput == null ? "output_" : repeatedOutput;
        Map<Integer, String> dims = kind.startsWith("text_encoder") ? SEQUENCE : Map.of();
        result.add(new Io(prefix + repeated, types.get(index), types.get(index), dims));
      }
    }
    return result;
  }
}
