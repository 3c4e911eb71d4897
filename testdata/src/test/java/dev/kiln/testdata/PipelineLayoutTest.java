package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Generated pipeline folders have the diffusers/Optimum layout their model_index.json promises. */
class PipelineLayoutTest {
  @ParameterizedTest
  @ValueSource(strings = {"sd15", "sd2", "sdxl", "sd15-torchscript", "sd2-torchscript", "sdxl-torchscript"})
  void everyListedComponentFolderHoldsItsModelAndConfig(String name) throws IOException {
    Path folder = Fixtures.pipeline(name);
    JsonNode index = Json.mapper().readTree(folder.resolve("model_index.json").toFile());
    String modelFile = name.endsWith("-torchscript") ? "model.pt" : "model.onnx";
    List<String> components = new ArrayList<>();
    for (Map.Entry<String, JsonNode> entry : index.properties()) {
      JsonNode value = entry.getValue();
      if (!value.isArray() || value.get(0).isNull()) {
        continue;
      }
      components.add(entry.getKey());
      String library = value.get(0).asText();
      Path sub = folder.resolve(entry.getKey());
      switch (library) {
        case "transformers" -> {
          for (String file : List.of("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")) {
            assertTrue(Files.isRegularFile(sub.resolve(file)), sub.resolve(file).toString());
          }
        }
        case "diffusers" -> assertTrue(Files.isRegularFile(sub.resolve("scheduler_config.json")), sub.toString());
        default -> {
          assertTrue(Files.isRegularFile(sub.resolve(modelFile)), sub.resolve(modelFile).toString());
          assertTrue(Files.isRegularFile(sub.resolve("config.json")), sub.resolve("config.json").toString());
        }
      }
    }
    List<String> expected = new ArrayList<>(List.of("scheduler", "text_encoder", "tokenizer", "unet", "vae_decoder",
        "vae_encoder"));
    if (name.startsWith("sdxl")) {
      expected.addAll(List.of("text_encoder_2", "tokenizer_2"));
    }
    assertEquals(expected.stream().sorted().toList(), components.stream().sorted().toList());
  }

  @ParameterizedTest
  @ValueSource(strings = {"sd15", "sd2", "sdxl"})
  void schedulerConfigsCarryThePredictionType(String name) throws IOException {
    JsonNode scheduler = Json.mapper().readTree(
        Fixtures.pipeline(name).resolve("scheduler/scheduler_config.json").toFile());
    assertEquals(name.equals("sd2") ? "v_prediction" : "epsilon", scheduler.path("prediction_type").asText());
    assertEquals(1000, scheduler.path("num_train_timesteps").asInt());
    assertEquals("scaled_linear", scheduler.path("beta_schedule").asText());
  }

  @ParameterizedTest
  @ValueSource(strings = {"sd15", "sdxl"})
  void pipelineModelsAreTheComponentFixtures(String name) throws IOException {
    Path pipeline = Fixtures.pipeline(name);
    assertEquals(Fixtures.component("vae_decoder", Opset.V17).toRealPath(),
        pipeline.resolve("vae_decoder/model.onnx").toRealPath());
    assertEquals(Fixtures.component("clip_text", Opset.V17).toRealPath(),
        pipeline.resolve("text_encoder/model.onnx").toRealPath());
    assertEquals(Fixtures.torchScript(name.equals("sdxl") ? "sdxl_unet" : "unet").toRealPath(),
        Fixtures.pipeline(name + "-torchscript").resolve("unet/model.pt").toRealPath());
  }

  @ParameterizedTest
  @ValueSource(strings = {"sdxl", "sdxl-torchscript"})
  void sdxlSecondTokenizerPadsWithExclamationMark(String name) throws IOException {
    Path pipeline = Fixtures.pipeline(name);
    JsonNode first = Json.mapper().readTree(pipeline.resolve("tokenizer/tokenizer_config.json").toFile());
    JsonNode second = Json.mapper().readTree(pipeline.resolve("tokenizer_2/tokenizer_config.json").toFile());
    assertEquals("<|endoftext|>", first.path("pad_token").asText());
    assertEquals("!", second.path("pad_token").asText());
    JsonNode vaeConfig = Json.mapper().readTree(pipeline.resolve("vae_decoder/config.json").toFile());
    assertEquals(0.13025, vaeConfig.path("scaling_factor").asDouble(), 1e-9);
  }
}
