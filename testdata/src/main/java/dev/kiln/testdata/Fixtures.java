package dev.kiln.testdata;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * Finds Kiln's committed fixtures by name, so tests never build fixture paths by hand.
 *
 * <pre>
 *   Fixtures.unet(Opset.V17)                        testdata/fixtures/unet/opset17/model.onnx
 *   Fixtures.component("clip_text", Opset.V14)      testdata/fixtures/clip_text/opset14/model.onnx
 *   Fixtures.torchScript("vae_decoder")             testdata/fixtures/vae_decoder/model.pt
 *   Fixtures.component("unet_sdpa", Opset.V14)      the torch-2 SDPA export form of an SD 1.5 UNet
 *   Fixtures.testDataSets("unet")                   its two test_data_set_N folders with tensor names and shapes
 *   Fixtures.pipeline("sd15"), pipeline("tiny-sd")  a folder under testdata/pipelines (diffusers/Optimum layout)
 *   Fixtures.manifest()                             inventories, op histograms, sha256s (see {@link Manifest})
 * </pre>
 *
 * The repository is located through the system property {@code kiln.root} (surefire sets it); without it every
 * method fails with a message saying how to set it, rather than guessing from the working directory.
 */
public final class Fixtures {
  public static final String ROOT_PROPERTY = "kiln.root";

  private static final Map<Path, Manifest> MANIFESTS = new ConcurrentHashMap<>();

  private Fixtures() {}

  /** The repository root named by {@code kiln.root}. */
  public static Path root() {
    String value = System.getProperty(ROOT_PROPERTY);
    if (value == null || value.isBlank()) {
      throw new IllegalStateException("system property " + ROOT_PROPERTY + " is not set: Kiln's tests find fixtures"
          + " through it (Maven's surefire sets it to the repository root; elsewhere pass -D" + ROOT_PROPERTY
          + "=/path/to/kiln)");
    }
    Path root = Path.of(value).toAbsolutePath().normalize();
    if (!Files.isRegularFile(root.resolve("testdata/fixtures/manifest.json"))) {
      throw new IllegalStateException(ROOT_PROPERTY + "=" + value + " is not a Kiln checkout: "
          + root.resolve("testdata/fixtures/manifest.json") + " does not exist (regenerate with"
          + " /usr/bin/python3 testdata/generator/generate.py)");
    }
    return root;
  }

  public static Path testdata() {
    return root().resolve("testdata");
  }

  public static Manifest manifest() {
    return MANIFESTS.computeIfAbsent(testdata(), Manifest::read);
  }

  /**
   * Component names: clip_text, unet, vae_decoder, vae_encoder, vae_decoder_overflow, sd2_*, sdxl_*, and the
   * torch-2 (SDPA) export form unet_sdpa, sd2_unet_sdpa, sdxl_unet_sdpa, vae_decoder_sdpa (opset 14 only, no
   * TorchScript; see {@link Manifest.Component#attention()}).
   */
  public static List<String> componentNames() {
    return List.copyOf(manifest().components().keySet());
  }

  /** Components with a traced TorchScript archive (all but the SDPA form ones). */
  public static List<String> torchScriptComponentNames() {
    return manifest().components().values().stream().filter(Manifest.Component::hasTorchScript)
        .map(Manifest.Component::name).toList();
  }

  /** The ONNX export of a component at an opset. */
  public static Path component(String name, Opset opset) {
    return existing(manifest().component(name).onnx(opset).path(), name);
  }

  public static Path unet(Opset opset) {
    return component("unet", opset);
  }

  public static Path textEncoder(Opset opset) {
    return component("clip_text", opset);
  }

  public static Path vaeDecoder(Opset opset) {
    return component("vae_decoder", opset);
  }

  public static Path vaeEncoder(Opset opset) {
    return component("vae_encoder", opset);
  }

  /** The traced TorchScript archive of a component. */
  public static Path torchScript(String name) {
    Manifest.Component component = manifest().component(name);
    if (!component.hasTorchScript()) {
      throw new IllegalArgumentException("fixture '" + name + "' has no TorchScript archive (the torch-2 SDPA form"
          + " fixtures are ONNX only); with one: " + torchScriptComponentNames());
    }
    return existing(component.torchScript(), name);
  }

  /** The component's diffusers/transformers config.json. */
  public static Path config(String name) {
    manifest().component(name);
    return existing(testdata().resolve("fixtures").resolve(name).resolve("config.json"), name);
  }

  /** The component's reference data sets (two shapes, two batch sizes), in ONNX's test_data_set layout. */
  public static List<TestDataSet> testDataSets(String name) {
    return manifest().component(name).testDataSets();
  }

  /** The CLIP tokenizer folder all generated pipelines share. */
  public static Path tokenizer() {
    return existing(testdata().resolve("fixtures/tokenizer"), "tokenizer");
  }

  /**
   * A pipeline folder by its name under testdata/pipelines: sd15, sd2, sdxl (ONNX), sd15-torchscript, ... and
   * folders other generators add there (tiny-sd).
   */
  public static Path pipeline(String name) {
    Path folder = testdata().resolve("pipelines").resolve(name).normalize();
    if (!folder.getParent().equals(testdata().resolve("pipelines")) || !Files.isRegularFile(
        folder.resolve("model_index.json"))) {
      throw new IllegalArgumentException("no pipeline '" + name + "' (a folder with model_index.json under "
          + testdata().resolve("pipelines") + "); known: " + pipelineNames());
    }
    return folder;
  }

  /**
   * Writes a pipeline folder holding the random-weight ControlNet pair into {@code folder} (which it creates):
   * {@code controlnet/} and {@code unet/} (the UNet with residual inputs) as links to the opset-17 fixtures, so
   * their test data sets are found through the links, and a model_index.json listing both. The trained ControlNet
   * pipeline is a committed folder of its own; this pair is for the tools' tests.
   */
  public static Path controlNetPair(Path folder) {
    try {
      Files.createDirectories(folder);
      Files.writeString(folder.resolve("model_index.json"), "{\"_class_name\": \"OnnxStableDiffusionControlNetPipeline\", "
          + "\"controlnet\": [\"onnxruntime\", \"OnnxRuntimeModel\"], \"unet\": [\"onnxruntime\", \"OnnxRuntimeModel\"]}\n");
      for (String[] pair : new String[][] {{"controlnet", "controlnet"}, {"unet", "unet_controlnet"}}) {
        Path component = Files.createDirectories(folder.resolve(pair[0]));
        Files.createSymbolicLink(component.resolve("model.onnx"), component(pair[1], Opset.V17).toAbsolutePath());
        Files.createSymbolicLink(component.resolve("config.json"), config(pair[1]).toAbsolutePath());
      }
      return folder;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the ControlNet pair pipeline " + folder + ": " + e.getMessage(), e);
    }
  }

  /** Names of the pipeline folders present. */
  public static List<String> pipelineNames() {
    Path pipelines = testdata().resolve("pipelines");
    if (!Files.isDirectory(pipelines)) {
      return List.of();
    }
    try (Stream<Path> children = Files.list(pipelines)) {
      return children.filter(child -> Files.isRegularFile(child.resolve("model_index.json")))
          .map(child -> child.getFileName().toString()).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + pipelines, e);
    }
  }

  private static Path existing(Path path, String name) {
    if (!Files.exists(path)) {
      throw new IllegalStateException("fixture '" + name + "' is listed in the manifest but " + path
          + " is missing (regenerate with /usr/bin/python3 testdata/generator/generate.py)");
    }
    return path;
  }
}
