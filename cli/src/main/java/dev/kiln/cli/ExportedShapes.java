package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.AtomicFiles;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import dev.kiln.validator.shapes.ResidualInputs;
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
  /** A ControlNet's control image channels: conditioning_channels, 3 (RGB) when the config leaves diffusers' default. */
  static final String CONDITIONING_CHANNELS = "kiln:conditioning_channels";
  /** A residual UNet's ControlNet inputs: config key "kiln:" + input name, their channels derived from the blocks. */
  static final String RESIDUAL = "kiln:";

  /** component -> input -> (dim index -> config key); -1 is the last dim. */
  private static final Map<String, Map<String, Map<Integer, String>>> FROM_CONFIG = Map.of(
      "unet", Map.of("sample", Map.of(1, "in_channels"), "encoder_hidden_states", Map.of(2, "cross_attention_dim"),
          "text_embeds", Map.of(1, TEXT_EMBEDS), "time_ids", Map.of(1, TIME_IDS)),
      "controlnet", Map.of("sample", Map.of(1, "in_channels"), "encoder_hidden_states", Map.of(2, "cross_attention_dim"),
          "controlnet_cond", Map.of(1, CONDITIONING_CHANNELS)),
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

  /**
   * The channels of each ControlNet residual a UNet takes, as diffusers' UNet collects its skip samples: conv_in's
   * output (block_out_channels[0]), then per down block layers_per_block resnet outputs and, except after the last
   * block, the downsampler's, each with that block's channels; the mid block's has the last block's. Nothing is
   * added when block_out_channels or layers_per_block is missing or per-block.
   */
  static JsonNode withResidualChannels(JsonNode config) {
    JsonNode blocks = config.path("block_out_channels");
    JsonNode layers = config.path("layers_per_block");
    if (!config.isObject() || !blocks.isArray() || blocks.isEmpty() || !layers.canConvertToInt() || layers.asInt() <= 0) {
      return config;
    }
    com.fasterxml.jackson.databind.node.ObjectNode derived = ((com.fasterxml.jackson.databind.node.ObjectNode) config).deepCopy();
    int index = 0;
    derived.put(RESIDUAL + ResidualInputs.DOWN_INPUT + index++, blocks.get(0).asLong());
    for (int block = 0; block < blocks.size(); block++) {
      int count = layers.asInt() + (block < blocks.size() - 1 ? 1 : 0);
      for (int layer = 0; layer < count; layer++) {
        derived.put(RESIDUAL + ResidualInputs.DOWN_INPUT + index++, blocks.get(block).asLong());
      }
    }
    derived.put(RESIDUAL + ResidualInputs.MID_INPUT, blocks.get(blocks.size() - 1).asLong());
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
        settings = withResidualChannels(withAddedConditioning(pipeline, settings));
      }
      if (component.getKey().equals("controlnet") && settings.isObject()) {
        settings = ((com.fasterxml.jackson.databind.node.ObjectNode) settings).deepCopy().put(CONDITIONING_CHANNELS,
            settings.path("conditioning_channels").asLong(3));
      }
      ModelProto proto = ModelReader.readProto(model);
      ModelProto.Builder builder = proto.toBuilder();
      int before = filled;
      for (int index = 0; index < builder.getGraph().getInputCount(); index++) {
        ValueInfoProto input = builder.getGraph().getInput(index);
        Map<Integer, String> dims = component.getValue().get(input.getName());
        if (dims == null && component.getKey().equals("unet") && ResidualInputs.isResidualInput(input.getName())) {
          dims = Map.of(1, RESIDUAL + input.getName());
        }
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
