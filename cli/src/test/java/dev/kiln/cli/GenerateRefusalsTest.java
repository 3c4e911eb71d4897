package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Nonsense is refused before anything is allocated or run: sizes no memory holds, guidance that only saturates,
 * more steps than training timesteps, config values of the wrong type or range. Each exits 2 with one line that
 * names the flag or the config field and the valid range, and writes nothing.
 */
class GenerateRefusalsTest {
  private static void refused(Path output, String expected, String... arguments) {
    List<String> all = new ArrayList<>(List.of(arguments));
    all.addAll(List.of("--seed", "1", "-o", output.toString()));
    GenerateCommandTest.Run run = GenerateCommandTest.run(all.toArray(String[]::new));
    assertEquals(2, run.exitCode(), String.join(" ", arguments) + ": " + run.err() + run.out());
    assertEquals(1, run.err().strip().lines().count(), run.err());
    assertTrue(run.err().startsWith("kiln: "), run.err());
    assertTrue(run.err().contains(expected), "expected '" + expected + "' in: " + run.err());
    assertFalse(Files.exists(output), "nothing written");
  }

  @Test
  void flagsOutsideTheirRangeAreRefusedByFlagWithTheRange(@TempDir Path folder) {
    String pipeline = GenerateExternalDataTest.PIPELINE.toString();
    Path output = folder.resolve("x.png");
    refused(output, "--batch must be from 1 to ", "generate", pipeline, "--prompt", "x", "--batch", "100000", "--width", "512", "--height", "512");
    refused(output, "--width by height 100000x100000 cannot fit on this machine; the largest square that does is ", "generate", pipeline,
        "--prompt", "x", "--width", "100000", "--height", "100000");
    refused(output, "--height must be a multiple of 4 from 4 to ", "generate", pipeline, "--prompt", "x", "--height", "2147483616");
    refused(output, "--guidance must be a number from 0 to 100, got Infinity", "generate", pipeline, "--prompt", "x", "--guidance", "Infinity");
    refused(output, "--guidance must be a number from 0 to 100, got NaN", "generate", pipeline, "--prompt", "x", "--guidance", "NaN");
    refused(output, "--guidance must be a number from 0 to 100", "generate", pipeline, "--prompt", "x", "--guidance", "-1");
    refused(output, "--steps must be from 1 to 1000 for ddim", "generate", pipeline, "--prompt", "x", "--steps", "100000");
    refused(output, "scheduler config gives timestep 1000 for 1000 steps, outside the training schedule 0..999", "generate", pipeline, "--prompt", "x",
        "--steps", "1000");
    refused(output, "--steps must be from 1 to 50 for lcm", "generate", pipeline, "--prompt", "x", "--scheduler", "lcm", "--steps", "51");
    refused(output, "--clip-skip must be from 0 to ", "generate", pipeline, "--prompt", "x", "--clip-skip", "40");
    refused(output, "--strength applies only to img2img", "generate", pipeline, "--prompt", "x", "--strength", "0.5");
    refused(output, "--width must be one of the positive multiples of 4", "generate", pipeline, "--prompt", "x", "--width", "30");
    Path jpeg = folder.resolve("x.jpg");
    refused(jpeg, "writes PNG images; name the output .png", "generate", pipeline, "--prompt", "x");
  }

  private static Path pipelineWith(Path root, String config, Consumer<ObjectNode> change) throws IOException {
    Path pipeline = GenerateExternalDataTest.copyPipeline(root.resolve("case-" + System.nanoTime()).resolve("contract-sd"));
    Path file = pipeline.resolve(config);
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode json = (ObjectNode) mapper.readTree(file.toFile());
    change.accept(json);
    mapper.writeValue(file.toFile(), json);
    return pipeline;
  }

  @Test
  void configValuesOfTheWrongTypeOrRangeAreRefusedByField(@TempDir Path root) throws IOException {
    Path output = root.resolve("x.png");
    String scheduler = "scheduler/scheduler_config.json";
    Object[][] cases = {
      {scheduler, (Consumer<ObjectNode>) json -> json.put("steps_offset", 5000), "steps_offset must be an integer from 0 to 999, got 5000"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("steps_offset", -50), "steps_offset must be an integer from 0 to 999, got -50"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("num_train_timesteps", 2e9), "num_train_timesteps must be an integer from 2 to 100000, got 2.0E9"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("num_train_timesteps", 999.5), "num_train_timesteps must be an integer"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("beta_start", 0.02).put("beta_end", 0.001), "beta_start 0.02 is above beta_end 0.001"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("beta_start", -0.001), "beta_start must be a number from"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("beta_end", 1.5), "beta_end must be a number from"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("beta_end", "0.012"), "beta_end must be a number from"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("clip_sample", "yes"), "clip_sample must be true or false, got \"yes\""},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("prediction_type", 3), "prediction_type must be a string, got 3"},
      {scheduler, (Consumer<ObjectNode>) json -> json.put("_class_name", "HeunDiscreteScheduler"),
          "--scheduler must be given: this pipeline declares HeunDiscreteScheduler, which Kiln does not implement"},
      {"unet/config.json", (Consumer<ObjectNode>) json -> json.put("sample_size", 1e6), "sample_size must be an integer from 1 to 1024, got 1000000.0"},
      {"unet/config.json", (Consumer<ObjectNode>) json -> json.put("sample_size", "64"), "sample_size must be an integer from 1 to 1024, got \"64\""},
      {"vae_decoder/config.json", (Consumer<ObjectNode>) json -> json.put("scaling_factor", "x"), "scaling_factor must be a number from"},
      {"vae_decoder/config.json", (Consumer<ObjectNode>) json -> json.putArray("block_out_channels").add(8).add(-8), "block_out_channels[1] must be an integer"},
    };
    for (Object[] entry : cases) {
      @SuppressWarnings("unchecked")
      Consumer<ObjectNode> change = (Consumer<ObjectNode>) entry[1];
      Path pipeline = pipelineWith(root, (String) entry[0], change);
      refused(output, (String) entry[2], "generate", pipeline.toString(), "--prompt", "x", "--steps", "2");
    }
  }

  @Test
  void malformedJsonIsOneLine(@TempDir Path root) throws IOException {
    Path pipeline = GenerateExternalDataTest.copyPipeline(root.resolve("contract-sd"));
    Files.writeString(pipeline.resolve("scheduler/scheduler_config.json"), "{\n  \"beta_start\": 0.1,\n  oops\n}");
    refused(root.resolve("x.png"), "is not valid JSON: Unexpected character ('o' (code 111)): was expecting double-quote to start field name (line 3, column 3)", "generate", pipeline.toString(), "--prompt", "x");
  }

  @Test
  void aHiddenStateIndexBeyondAnyLayerIsRefused(@TempDir Path root) throws IOException {
    Path pipeline = GenerateExternalDataTest.copyPipeline(root.resolve("contract-sd"));
    Path encoder = pipeline.resolve("text_encoder/model.onnx");
    Model model = ModelReader.read(encoder);
    Value last = model.graph().outputs().stream().filter(value -> value.name().startsWith("hidden_states.")).reduce((first, second) -> second)
        .orElseThrow();
    last.setName("hidden_states.99999999999");
    ModelWriter.write(model, encoder);
    refused(root.resolve("x.png"), "output 'hidden_states.99999999999' names hidden state layer 99999999999", "generate", pipeline.toString(),
        "--prompt", "x");
  }

  /** A pipeline optimized for CUDA says so on a CPU-only run instead of passing on ORT's "Could not find an implementation". */
  @Test
  void aPipelineOptimizedForCudaSaysWhichTargetOnTheCpu(@TempDir Path root) {
    Path tiny = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");
    Path optimized = root.resolve("tiny-cuda");
    GenerateCommandTest.Run optimize = GenerateCommandTest.run("optimize", tiny.toString(), "-o", optimized.toString(), "--target", "cuda");
    assertEquals(0, optimize.exitCode(), optimize.err());
    refused(root.resolve("x.png"), "was optimized for CUDA: it uses com.microsoft ", "generate", optimized.toString(), "--prompt", "x",
        "--device", "cpu");
    GenerateCommandTest.Run line = GenerateCommandTest.run("generate", optimized.toString(), "--prompt", "x", "-o", root.resolve("y.png").toString());
    assertTrue(line.err().contains("run it with --device cuda on a machine with one, or optimize the original model with --target cpu"), line.err());
  }
}
