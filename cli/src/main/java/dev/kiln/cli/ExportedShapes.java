package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.AtomicFiles;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A TorchScript archive does not say how many channels its inputs have, so the export leaves those dims unknown
 * ({@code FLOAT[batch_size,?,height,width]}) and nothing can be fed to it at a chosen size. The component configs
 * say it (the same configs the runner reads): this fills exactly those unknown dims, at the protobuf level so
 * weights and external data stay untouched. A dim that is known or named is never changed.
 */
final class ExportedShapes {
  private ExportedShapes() {}

  /** SDXL's added conditioning, derived: the pooled text embedding is text_encoder_2's projection, the rest time ids. */
  static final String TEXT_EMBEDS = "kiln:text_embeds";
  static final String TIME_IDS = "kiln:time_ids";

  /** component -> input -> (dim index -> config key); -1 is the last dim. */
  private static final Map<String, Map<String, Map<Integer, String>>> FROM_CONFIG = Map.of(
      "unet", Map.of("sample", Map.of(1, "in_channels"), "encoder_hidden_states", Map.of(2, "cross_attention_dim"),
          "text_embeds", Map.of(1, TEXT_EMBEDS), "time_ids", Map.of(1, TIME_IDS)),
      "vae_decoder", Map.of("sample", Map.of(1, "latent_channels"), "latent_sample", Map.of(1, "latent_channels")),
      "vae_encoder", Map.of("sample", Map.of(1, "in_channels")));

  /**
   * projection_class_embeddings_input_dim = text_embeds + time_ids x addition_time_embed_dim (diffusers' SDXL UNet), with
   * text_embeds = text_encoder_2's projection_dim; nothing is added when a number is missing or does not divide.
   */
  static JsonNode withAddedConditioning(Path pipeline, JsonNode unet) {
    Path second = pipeline.resolve("text_encoder_2").resolve("config.json");
    if (!unet.isObject() || !Files.isRegularFile(second)) {
      return unet;
    }
    JsonNode encoder;
    try {
      encoder = Json.mapper().readTree(second.toFile());
    } catch (IOException e) {
      throw new KilnException.BadInput(second + ": " + Json.describe(e));
    }
    long projection = encoder.path("projection_dim").asLong(0);
    long total = unet.path("projection_class_embeddings_input_dim").asLong(0);
    long timeEmbedding = unet.path("addition_time_embed_dim").asLong(0);
    com.fasterxml.jackson.databind.node.ObjectNode derived = ((com.fasterxml.jackson.databind.node.ObjectNode) unet).deepCopy();
    if (projection > 0) {
      derived.put(TEXT_EMBEDS, projection);
      if (timeEmbedding > 0 && total > projection && (total - projection) % timeEmbedding == 0) {
        derived.put(TIME_IDS, (total - projection) / timeEmbedding);
      }
    }
    return derived;
  }

  /** Fills the unknown dims of every component of an exported pipeline folder; returns how many dims were filled. */
  static int complete(Path pipeline) {
    int filled = 0;
    for (Map.Entry<String, Map<String, Map<Integer, String>>> component : FROM_CONFIG.entrySet()) {
      Path model = pipeline.resolve(component.getKey()).resolve("model.onnx");
      Path config = pipeline.resolve(component.getKey()).resolve("config.json");
      if (!Files.isRegularFile(model) || !Files.isRegularFile(config)) {
        continue;
      }
      JsonNode settings;
      try {
        settings = Json.mapper().readTree(config.toFile());
      } catch (IOException e) {
        throw new KilnException.BadInput(config + ": " + Json.describe(e));
      }
      if (component.getKey().equals("unet")) {
        settings = withAddedConditioning(pipeline, settings);
      }
      ModelProto proto = ModelReader.readProto(model);
      ModelProto.Builder builder = proto.toBuilder();
      int before = filled;
      for (int index = 0; index < builder.getGraph().getInputCount(); index++) {
        ValueInfoProto input = builder.getGraph().getInput(index);
        Map<Integer, String> dims = component.getValue().get(input.getName());
        if (dims == null || !input.getType().hasTensorType() || !input.getType().getTensorType().hasShape()) {
          continue;
        }
        TensorShapeProto.Builder shape = input.getType().getTensorType().getShape().toBuilder();
        for (Map.Entry<Integer, String> dim : dims.entrySet()) {
          int position = dim.getKey() < 0 ? shape.getDimCount() + dim.getKey() : dim.getKey();
          JsonNode value = settings.get(dim.getValue());
          if (position < 0 || position >= shape.getDimCount() || value == null || !value.canConvertToLong() || value.asLong() <= 0) {
            continue;
          }
          TensorShapeProto.Dimension current = shape.getDim(position);
          if (!current.hasDimValue() && (!current.hasDimParam() || current.getDimParam().isEmpty())) {
            shape.setDim(position, TensorShapeProto.Dimension.newBuilder().setDimValue(value.asLong()));
            filled++;
          }
        }
        builder.getGraphBuilder().getInputBuilder(index).getTypeBuilder().getTensorTypeBuilder().setShape(shape);
      }
      if (filled > before) {
        AtomicFiles.write(model, builder.build().toByteArray());
      }
    }
    return filled;
  }
}
