package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.common.KilnException;
import dev.kiln.testdata.FuzzFolder;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Fuzz target for the configs the runner reads from a pipeline folder. The input's sections (split at NUL bytes)
 * are {@code model_index.json}, {@code unet/config.json}, {@code vae_decoder/config.json} and
 * {@code scheduler/scheduler_config.json}; a missing section is a missing file. The folder around them has the
 * diffusers/Optimum layout (an SD folder, or an SDXL one when model_index mentions "XL"; the models are empty
 * files, which the folder reader only checks for). Only a {@link KilnException} may come out, and an accepted
 * folder must give sizes that generate can divide by and allocate. How targets are run and added: see
 * {@code bench/fuzz.sh}.
 */
class PipelineFolderFuzzTest {
  private static final FuzzFolder FOLDER = layOut();

  private static FuzzFolder layOut() {
    FuzzFolder folder = FuzzFolder.create("pipeline");
    try {
      for (String pipeline : List.of("sd", "sdxl")) {
        List<String> models = pipeline.equals("sd") ? List.of("text_encoder", "unet", "vae_decoder")
            : List.of("text_encoder", "text_encoder_2", "unet", "vae_decoder");
        for (String component : models) {
          Files.write(Files.createDirectories(folder.root().resolve(pipeline).resolve(component)).resolve("model.onnx"), new byte[0]);
        }
        Files.createDirectories(folder.root().resolve(pipeline).resolve("tokenizer"));
        Files.createDirectories(folder.root().resolve(pipeline).resolve("tokenizer_2"));
        Files.createDirectories(folder.root().resolve(pipeline).resolve("scheduler"));
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return folder;
  }

  @FuzzTest(maxDuration = "10m")
  void configs(byte[] input) {
    FOLDER.reset();
    List<byte[]> sections = FuzzFolder.sections(input, 4);
    String pipeline = sections.get(0) != null && new String(sections.get(0), StandardCharsets.UTF_8).contains("XL") ? "sdxl" : "sd";
    FOLDER.write(pipeline + "/model_index.json", sections.get(0));
    FOLDER.write(pipeline + "/unet/config.json", sections.get(1));
    FOLDER.write(pipeline + "/vae_decoder/config.json", sections.get(2));
    FOLDER.write(pipeline + "/scheduler/scheduler_config.json", sections.get(3));
    try {
      PipelineFolder folder = PipelineFolder.open(FOLDER.root().resolve(pipeline));
      checkSizes(folder);
    } catch (KilnException expected) {
      // The contract: a pipeline Kiln cannot run is refused with a typed error.
    }
  }

  /** What generate does with the configs before any model runs: divide by the size multiple, size the latents. */
  private static void checkSizes(PipelineFolder folder) {
    Path root = folder.root();
    if (folder.vaeScaleFactor() < 1 || folder.sizeMultiple() < 1 || folder.defaultSize() < 1 || folder.latentChannels() < 1) {
      throw new AssertionError(root + ": accepted a VAE factor " + folder.vaeScaleFactor() + ", size multiple " + folder.sizeMultiple()
          + ", default size " + folder.defaultSize() + ", latent channels " + folder.latentChannels());
    }
    long side = folder.defaultSize();
    long latentSide = side / folder.vaeScaleFactor();
    if (3 * side * side > Integer.MAX_VALUE - 8 || folder.latentChannels() * latentSide * latentSide > Integer.MAX_VALUE - 8) {
      throw new AssertionError(root + ": accepted a default size " + side + " whose image or latents overflow an array");
    }
    if (!Double.isFinite(folder.vaeScalingFactor())) {
      throw new AssertionError(root + ": accepted a VAE scaling factor " + folder.vaeScalingFactor());
    }
  }

  /**
   * Findings: 32 VAE blocks shifted the scale factor to -2^31 (generate divides by the size multiple, 0), zero
   * latent channels and a "NaN" scaling factor were accepted, sample_size 1e6 overflowed the default image.
   */
  @Test
  void impossibleSizesAreRefusedNamingTheConfig() {
    assertRefused("vae-32-blocks", "vae_decoder/config.json: block_out_channels must be a list of 1 to 8 integers");
    assertRefused("latent-channels-zero", "unet/config.json: in_channels must be an integer from 1 to 65536, got 0");
    assertRefused("vae-scaling-nan", "vae_decoder/config.json: scaling_factor must be a number");
    assertRefused("unet-sample-size-1e6", "unet/config.json: sample_size must be an integer from 1 to 1024, got 1000000");
  }

  private static void assertRefused(String seed, String expected) {
    FOLDER.reset();
    byte[] input;
    try (InputStream stream = PipelineFolderFuzzTest.class.getResourceAsStream("PipelineFolderFuzzTestInputs/configs/" + seed)) {
      input = stream.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<byte[]> sections = FuzzFolder.sections(input, 4);
    FOLDER.write("sd/model_index.json", sections.get(0));
    FOLDER.write("sd/unet/config.json", sections.get(1));
    FOLDER.write("sd/vae_decoder/config.json", sections.get(2));
    FOLDER.write("sd/scheduler/scheduler_config.json", sections.get(3));
    String message = assertThrows(KilnException.BadInput.class, () -> PipelineFolder.open(FOLDER.root().resolve("sd"))).getMessage();
    assertTrue(message.contains(expected), message);
  }
}
