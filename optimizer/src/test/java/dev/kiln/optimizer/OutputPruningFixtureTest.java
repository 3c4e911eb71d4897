package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.specialize.OutputPruning;
import dev.kiln.testdata.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --clip-skip on every fixture text encoder (SD 1.5, SD 2, both SDXL encoders) at clip skip 0, 1 and 2: the pruned
 * encoder's outputs equal the unpruned model's corresponding output — SD's last_hidden_state, or the final LayerNorm
 * of hidden_states[-(N+1)] (computed here in double with the model's own LayerNorm weights); SDXL's
 * hidden_states[-(N+2)] and pooled output — and what was removed is pinned.
 */
class OutputPruningFixtureTest {
  @TempDir Path folder;

  record Encoder(String label, Path path, boolean xl) {}

  @Test
  void everyFixtureEncoderAtClipSkipZeroOneTwoMatchesTheUnprunedOutputs() {
    List<Encoder> encoders = List.of(
        new Encoder("sd15", Fixtures.component("clip_text", Fixtures.manifest().component("clip_text").opsets().get(0)), false),
        new Encoder("sd2", Fixtures.component("sd2_clip_text", Fixtures.manifest().component("sd2_clip_text").opsets().get(0)), false),
        new Encoder("sdxl_1", Fixtures.pipeline("sdxl").resolve("text_encoder").resolve("model.onnx"), true),
        new Encoder("sdxl_2", Fixtures.component("sdxl_clip_text_2",
            Fixtures.manifest().component("sdxl_clip_text_2").opsets().get(0)), true));
    Map<String, String> removedTable = new TreeMap<>();
    Map<String, Double> errors = new TreeMap<>();
    for (Encoder encoder : encoders) {
      var inputs = OrtParity.randomInputs(encoder.path(), Map.of("batch_size", 2L, "batch", 2L, "sequence_length", 7L,
          "sequence", 7L), 11, 100);
      Map<String, float[]> unpruned = OrtParity.run(encoder.path(), inputs);
      Model original = ModelReader.read(encoder.path());
      int last = lastHiddenIndex(original);
      for (int clipSkip = 0; clipSkip <= 2; clipSkip++) {
        Model model = ModelReader.read(encoder.path());
        OutputPruning.Removed removed = OutputPruning.clipSkip(model, clipSkip, encoder.xl(), encoder.label());
        String key = encoder.label() + "@" + clipSkip;
        removedTable.put(key, removed.nodes() + " nodes, " + removed.initializers() + " initializers, " + removed.bytes() + " bytes");
        Path pruned = folder.resolve(key + ".onnx");
        ModelWriter.write(model, pruned);
        Map<String, float[]> actual = OrtParity.run(pruned, inputs);
        float[] expected;
        if (encoder.xl()) {
          expected = unpruned.get("hidden_states." + (last - clipSkip - 1));
          if (unpruned.containsKey("text_embeds")) {
            assertEquals(List.of("last_hidden_state", "text_embeds"), model.graph().outputs().stream().map(Value::name).toList(), key);
            errors.put(key + " text_embeds", maxAbsolute(unpruned.get("text_embeds"), actual.get("text_embeds")));
          } else {
            assertEquals(List.of("last_hidden_state"), model.graph().outputs().stream().map(Value::name).toList(), key);
          }
        } else {
          assertEquals(List.of("last_hidden_state"), model.graph().outputs().stream().map(Value::name).toList(), key);
          expected = clipSkip == 0 ? unpruned.get("last_hidden_state")
              : layerNorm(original, unpruned.get("hidden_states." + (last - clipSkip)));
        }
        errors.put(key, maxAbsolute(expected, actual.get("last_hidden_state")));
        // Only SD at clip skip 0 and SDXL encoder 2 (text_embeds reads the last layer) need every layer.
        boolean needsEveryLayer = encoder.xl() ? unpruned.containsKey("text_embeds") : clipSkip == 0;
        assertEquals(needsEveryLayer, removed.initializers() == 0, key + ": removed " + removed);
      }
    }
    System.out.println("pruning removed: " + removedTable);
    System.out.println("pruning max abs error: " + errors);
    errors.forEach((key, error) -> assertTrue(error <= 1e-6, key + ": max abs error " + error));
    assertEquals(new TreeMap<>(Map.ofEntries(
        Map.entry("sd15@0", "24 nodes, 0 initializers, 0 bytes"), Map.entry("sd15@1", "171 nodes, 16 initializers, 50816 bytes"),
        Map.entry("sd15@2", "309 nodes, 32 initializers, 101632 bytes"), Map.entry("sd2@0", "24 nodes, 0 initializers, 0 bytes"),
        Map.entry("sd2@1", "175 nodes, 16 initializers, 113088 bytes"), Map.entry("sd2@2", "317 nodes, 32 initializers, 226176 bytes"),
        Map.entry("sdxl_1@0", "143 nodes, 18 initializers, 51072 bytes"),
        Map.entry("sdxl_1@1", "261 nodes, 34 initializers, 101888 bytes"),
        Map.entry("sdxl_1@2", "439 nodes, 50 initializers, 152704 bytes"),
        // text_embeds reads the last layer: encoder 2 keeps every layer and loses only its other outputs.
        Map.entry("sdxl_2@0", "0 nodes, 0 initializers, 0 bytes"), Map.entry("sdxl_2@1", "0 nodes, 0 initializers, 0 bytes"),
        Map.entry("sdxl_2@2", "0 nodes, 0 initializers, 0 bytes"))), removedTable);
  }

  private static int lastHiddenIndex(Model model) {
    int last = -1;
    for (Value output : model.graph().outputs()) {
      if (output.name().startsWith("hidden_states.")) {
        last = Math.max(last, Integer.parseInt(output.name().substring("hidden_states.".length())));
      }
    }
    return last;
  }

  /** CLIP's final LayerNorm (epsilon 1e-5) with the weights the model's last_hidden_state is computed with. */
  private static float[] layerNorm(Model model, float[] hidden) {
    Value output = model.graph().outputs().stream().filter(value -> value.name().equals("last_hidden_state")).findFirst().orElseThrow();
    float[] gamma;
    float[] beta;
    Node producer = output.producer();
    if (producer.is(Onnx.LAYER_NORMALIZATION)) {
      gamma = producer.input(1).initializer().floats();
      beta = producer.input(2).initializer().floats();
    } else {
      // Decomposed: Add(Mul(normalized, gamma), beta).
      Node mul = producer.input(0).producer();
      beta = constantOf(producer).floats();
      gamma = constantOf(mul).floats();
    }
    int width = gamma.length;
    float[] out = new float[hidden.length];
    for (int row = 0; row < hidden.length / width; row++) {
      double mean = 0;
      for (int i = 0; i < width; i++) {
        mean += hidden[row * width + i];
      }
      mean /= width;
      double variance = 0;
      for (int i = 0; i < width; i++) {
        double centered = hidden[row * width + i] - mean;
        variance += centered * centered;
      }
      variance /= width;
      for (int i = 0; i < width; i++) {
        out[row * width + i] = (float) ((hidden[row * width + i] - mean) / Math.sqrt(variance + 1e-5) * gamma[i] + beta[i]);
      }
    }
    return out;
  }

  private static dev.kiln.graph.Tensor constantOf(Node node) {
    for (Value input : node.inputs()) {
      var tensor = dev.kiln.optimizer.engine.Constants.tensor(input);
      if (tensor != null) {
        return tensor;
      }
    }
    throw new AssertionError(node + " reads no constant");
  }

  private static double maxAbsolute(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    double worst = 0;
    for (int i = 0; i < expected.length; i++) {
      worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
    }
    return worst;
  }
}
