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

  public static final List<String> KINDS = List.of("text_encoder", "text_encoder_2", "unet", "vae_encoder", "vae_decoder", "generic");

  private static final Map<Integer, String> BATCH = Map.of(0, "batch_size");
  private static final Map<Integer, String> SEQUENCE = Map.of(0, "batch_size", 1, "sequence_length");
  private static final Map<Integer, String> IMAGE = Map.of(0, "batch_size", 2, "height", 3, "width");
  private static final Map<Integer, String> LATENT = Map.of(0, "batch_size", 2, "height_latent", 3, "width_latent");

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

  /** Output names for a forward returning {@code count} tensors. */
  List<Io> outputs(int count, List<DataType> types) {
    List<Io> result = new ArrayList<>();
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
