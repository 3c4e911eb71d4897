package dev.kiln.common;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The diffusers/Optimum ONNX pipeline-folder layout, in one place for inspect, optimize and the runner:
 * {@code model_index.json}, one folder per component holding {@code model.onnx} (external data beside it),
 * {@code tokenizer[_2]/}, {@code scheduler/scheduler_config.json}, and each component's {@code config.json}.
 */
public final class PipelineLayout {
  private PipelineLayout() {}

  public static final String INDEX = "model_index.json";
  public static final String MODEL_FILE = "model.onnx";
  public static final String CONFIG_FILE = "config.json";
  public static final String TEXT_ENCODER = "text_encoder";
  public static final String TEXT_ENCODER_2 = "text_encoder_2";
  public static final String UNET = "unet";
  public static final String CONTROLNET = "controlnet";
  public static final String VAE_DECODER = "vae_decoder";
  public static final String VAE_ENCODER = "vae_encoder";
  /** The VAE's config in exports that keep the original (PyTorch) VAE folder beside the ONNX halves. */
  public static final String VAE = "vae";
  public static final String TOKENIZER = "tokenizer";
  public static final String TOKENIZER_2 = "tokenizer_2";
  public static final String SCHEDULER = "scheduler";
  public static final String SCHEDULER_CONFIG = "scheduler_config.json";

  /** The ONNX component folders Kiln knows, in a fixed order. */
  public static final List<String> COMPONENTS = List.of(TEXT_ENCODER, TEXT_ENCODER_2, UNET, CONTROLNET, VAE_DECODER, VAE_ENCODER);

  /** {@code root/component/model.onnx}. */
  public static Path model(Path root, String component) {
    return root.resolve(component).resolve(MODEL_FILE);
  }

  /** {@code root/component/config.json}. */
  public static Path config(Path root, String component) {
    return root.resolve(component).resolve(CONFIG_FILE);
  }

  public static Path schedulerConfig(Path root) {
    return root.resolve(SCHEDULER).resolve(SCHEDULER_CONFIG);
  }

  public static boolean isPipeline(Path folder) {
    return Files.isRegularFile(folder.resolve(INDEX));
  }

  /**
   * The model files a target names: a file itself; a folder with a model.onnx and no model_index.json, that
   * model; a pipeline folder, its components' models in model_index.json order (or, when the index lists none,
   * every sub-folder with a model.onnx, by name).
   */
  public static List<Path> models(Path target) {
    if (Files.isRegularFile(target)) {
      return List.of(target);
    }
    if (!Files.isDirectory(target)) {
      throw new KilnException.BadInput(target + ": no such file or folder");
    }
    Path index = target.resolve(INDEX);
    if (!Files.isRegularFile(index)) {
      if (Files.isRegularFile(target.resolve(MODEL_FILE))) {
        return List.of(target.resolve(MODEL_FILE));
      }
      throw new KilnException.BadInput(target + ": not a pipeline folder (no " + INDEX + ") and no " + MODEL_FILE + " in it");
    }
    List<Path> models = new ArrayList<>();
    try {
      JsonNode components = Json.mapper().readTree(index.toFile());
      if (components == null || !components.isObject()) {
        throw new KilnException.BadInput(index + ": expected a JSON object");
      }
      // diffusers lists components as "name": ["library", "Class"]; keep that order.
      for (Iterator<Map.Entry<String, JsonNode>> fields = components.fields(); fields.hasNext(); ) {
        Map.Entry<String, JsonNode> field = fields.next();
        Path candidate = target.resolve(field.getKey()).resolve(MODEL_FILE);
        if (field.getValue().isArray() && !field.getKey().contains("/") && Files.isRegularFile(candidate)) {
          models.add(candidate);
        }
      }
    } catch (JsonProcessingException e) {
      throw new KilnException.BadInput(index + ": not valid JSON: " + Json.describe(e));
    } catch (IOException e) {
      throw new KilnException.BadInput(index + ": cannot read: " + e.getMessage());
    }
    if (models.isEmpty()) {
      // Some exports keep only "_class_name" in model_index.json: take every component folder with a model.
      try (Stream<Path> entries = Files.list(target)) {
        entries.filter(folder -> Files.isRegularFile(folder.resolve(MODEL_FILE)))
            .sorted(Comparator.comparing(folder -> folder.getFileName().toString()))
            .forEach(folder -> models.add(folder.resolve(MODEL_FILE)));
      } catch (IOException e) {
        throw new KilnException.BadInput(target + ": cannot list: " + e.getMessage());
      }
    }
    if (models.isEmpty()) {
      throw new KilnException.BadInput(target + ": pipeline folder has no component with a " + MODEL_FILE);
    }
    return models;
  }
}
