package dev.kiln.validator.quality;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.Fixtures;
import dev.kiln.validator.quality.QualityReport.SchedulerResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quality gate on the trained tiny pipeline's quick grid: a copy passes with identical images, a candidate
 * whose UNet weights carry noise fails with its numbers in the report, and a reference that draws no scenes is
 * refused.
 */
class QualityGateTest {
  @TempDir static Path folder;
  private static final QualityGrid GRID = QualityGrid.quick();
  private static Path reference;
  private static QualityGate.Drawing referenceDrawing;

  @BeforeAll
  static void drawReference() {
    reference = Fixtures.pipeline("tiny-sd");
    referenceDrawing = QualityGate.draw(reference, GRID, () -> { });
  }

  @Test
  void theGridsAreTheJudgedEvaluations() {
    QualityGrid full = QualityGrid.full();
    assertEquals(216, full.cases().size());
    assertEquals(648, full.images());
    assertEquals("a red circle on a white background", full.cases().get(0).prompt());
    assertEquals(2, full.cases().get(2).seed());
    assertEquals("a cyan star on a gray background", full.cases().get(215).prompt());
    assertEquals(full.cases(), QualityGrid.parse("eval").cases());
    assertEquals(216, QualityGrid.evaluation().images());
    assertEquals(12, GRID.cases().size());
    assertEquals(12, GRID.images());
    assertEquals(full.cases().size(), full.cases().stream().distinct().count());
    assertTrue(full.cases().containsAll(GRID.cases()));
    assertEquals("a blue triangle on a gray background", GRID.cases().get(2).prompt());
    assertEquals(1, GRID.cases().get(3).seed());
    assertThrows(KilnException.BadInput.class, () -> QualityGrid.parse("medium"));
  }

  @Test
  void aCopyPassesWithIdenticalImagesAndTheSameReport() {
    Path copy = pipelineWith("copy", model -> { }, "unet");
    // Drawn in another session (CompareCommandTest covers both drawn concurrently by compare()).
    QualityReport report = QualityGate.judge(reference.toString(), referenceDrawing, copy.toString(), QualityGate.draw(copy, GRID, () -> { }));
    assertTrue(report.passed(), report.failures().toString());
    for (SchedulerResult result : report.schedulers()) {
      assertEquals(12, result.identicalImages(), result.scheduler());
      assertEquals(100.0, result.psnrMin());
      assertEquals(0.0, result.colourDrop());
      assertEquals(0.0, result.shapeDrop());
      assertEquals(100.0, result.reference().colour(), result.scheduler());
      assertEquals(100.0, result.reference().background(), result.scheduler());
    }
    // The copy's images equal the reference's, so the reference's drawing stands in for it: the same report, byte for byte.
    QualityReport again = QualityGate.judge(reference.toString(), referenceDrawing, copy.toString(), referenceDrawing);
    assertEquals(Json.write(report), Json.write(again));
  }

  @Test
  void noiseInTheUnetWeightsFailsTheGateWithItsNumbers() {
    // A tenth of each weight tensor's deviation: the images keep their colours but two shapes are misread.
    Path noisy = pipelineWith("noisy", model -> addNoise(model, 0.1), "unet");
    QualityReport report = QualityGate.judge("reference", referenceDrawing, "noisy", QualityGate.draw(noisy, GRID, () -> { }));
    assertFalse(report.passed());
    assertEquals(java.util.List.of("ddim: shape 100.00 % -> 83.33 % (16.67 points lower, at most 2.00 allowed)"), report.failures());
    SchedulerResult ddim = report.schedulers().get(0);
    assertFalse(ddim.passed());
    assertEquals(100.0, ddim.candidate().colour());
    assertEquals(2, ddim.changedVerdicts());
    assertEquals(0, ddim.identicalImages());
    assertTrue(ddim.psnrMean() > 20 && ddim.psnrMean() < 30, "PSNR " + ddim.psnrMean());
    assertTrue(ddim.psnrMin() <= ddim.worst().get(0).psnr() && ddim.worst().get(0).psnr() < ddim.psnrMean());
  }

  @Test
  void anFp16PipelineIsDrawnWithItsStorageEmulated() {
    // The VAE decoder's weights stored as float16: drawn through the emulation, not as ORT's CPU provider would run it.
    Path half = pipelineWith("half", QualityGateTest::weightsToFloat16, "vae_decoder");
    QualityGrid two = new QualityGrid("two", GRID.cases().subList(0, 2), GRID.schedulers(), 20, 7.5);
    // Drawn through a link, as Kiln's own output folders are.
    Path link = folder.resolve("half-link");
    try {
      Files.createSymbolicLink(link, half);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    QualityGate.Drawing drawing = QualityGate.draw(link, two, () -> { });
    assertEquals("fp16 storage emulated in float32 (1 models, float16 weights widened exactly, 0 Cast(float16)->Cast(float32)"
        + " pairs after float16 activations)", drawing.drawnAs());
    QualityGate.Drawing wanted = QualityGate.draw(reference, two, () -> { });
    QualityReport report = QualityGate.judge("reference", wanted, "half", drawing);
    assertEquals("as is", report.referenceDrawnAs());
    assertEquals(drawing.drawnAs(), report.candidateDrawnAs());
    assertTrue(report.passed(), report.failures().toString());
    assertTrue(report.schedulers().get(0).psnrMin() > 35 && report.schedulers().get(0).psnrMin() < 100,
        "PSNR " + report.schedulers().get(0).psnrMin());
    assertEquals(java.util.List.of(), listFolder(folder, "kiln-compare-fp16-"));
  }

  @Test
  void aReferenceThatDrawsNoScenesIsRefused() {
    Path blank = pipelineWith("blank", model -> scale(model, "decoder.conv_out.weight", 0), "vae_decoder");
    // Two images with another scheduler are enough: the reference is judged before anything is compared.
    QualityGrid two = new QualityGrid("two", GRID.cases().subList(0, 2), java.util.List.of(SchedulerKind.EULER), 20, 7.5);
    QualityGate.Drawing drawing = QualityGate.draw(blank, two, () -> { });
    KilnException.BadInput refusal = assertThrows(KilnException.BadInput.class,
        () -> QualityGate.judge("blank", drawing, "blank", drawing));
    assertEquals("blank: the judge reads the prompt's colour in only 0.00 % of the reference's euler images (at least 50.00 %"
        + " expected): the quality gate judges the trained tiny pipeline (testdata/pipelines/tiny-sd) and pipelines made from it",
        refusal.getMessage());
  }

  /** Gaussian noise of {@code relative} times each weight tensor's standard deviation (seeded: the test is repeatable). */
  private static void addNoise(Model model, double relative) {
    java.util.Random random = new java.util.Random(7);
    for (Value value : model.graph().initializers()) {
      Tensor tensor = value.initializer();
      if (tensor.dims().length < 2 || tensor.dataType() != dev.kiln.graph.DataType.FLOAT) {
        continue;
      }
      float[] weights = tensor.floats();
      double sum = 0;
      double squares = 0;
      for (float weight : weights) {
        sum += weight;
        squares += weight * weight;
      }
      double deviation = Math.sqrt(Math.max(0, squares / weights.length - Math.pow(sum / weights.length, 2)));
      for (int i = 0; i < weights.length; i++) {
        weights[i] += (float) (relative * deviation * random.nextGaussian());
      }
      value.setInitializer(Tensor.ofFloats(tensor.dims(), weights));
    }
  }

  /** Every float32 weight of two or more dims stored as float16 and widened by a Cast before its use. */
  private static void weightsToFloat16(Model model) {
    for (Value value : new java.util.ArrayList<>(model.graph().initializers())) {
      Tensor tensor = value.initializer();
      if (tensor.dims().length < 2 || tensor.dataType() != dev.kiln.graph.DataType.FLOAT) {
        continue;
      }
      Value half = model.graph().addInitializer(value.name() + "_fp16", Tensor.ofFloat16(tensor.dims(), tensor.floats()));
      java.util.List<dev.kiln.graph.Use> uses = new java.util.ArrayList<>(value.uses());
      dev.kiln.graph.Node cast = dev.kiln.graph.Node.create(dev.kiln.graph.Onnx.CAST, value.name() + "_cast",
          java.util.List.of(half), value.name() + "_widened");
      cast.setAttribute(dev.kiln.graph.Attribute.ofInt("to", 1));
      dev.kiln.graph.Node first = uses.stream().map(dev.kiln.graph.Use::node)
          .min(java.util.Comparator.comparingInt(model.graph()::indexOf)).orElseThrow();
      model.graph().insertBefore(first, cast);
      for (dev.kiln.graph.Use use : uses) {
        use.node().setInput(use.inputIndex(), cast.outputs().get(0));
      }
      model.graph().removeInitializer(value);
    }
  }

  private static java.util.List<Path> listFolder(Path root, String prefix) {
    try (Stream<Path> entries = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      return entries.filter(entry -> entry.getFileName().toString().startsWith(prefix)).toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void scale(Model model, String name, float factor) {
    Value value = model.graph().findValue(name);
    float[] weights = value.initializer().floats();
    for (int i = 0; i < weights.length; i++) {
      weights[i] *= factor;
    }
    value.setInitializer(Tensor.ofFloats(value.initializer().dims(), weights));
  }

  /** A copy of the tiny pipeline with one component's model changed through the graph module. */
  private static Path pipelineWith(String name, Consumer<Model> change, String component) {
    Path target = folder.resolve(name);
    try (Stream<Path> files = Files.walk(reference)) {
      for (Path file : files.toList()) {
        Path destination = target.resolve(reference.relativize(file).toString());
        if (Files.isDirectory(file)) {
          Files.createDirectories(destination);
        } else if (!file.getFileName().toString().endsWith(".png")) {
          Files.copy(file, destination);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    Path model = target.resolve(component).resolve("model.onnx");
    Model changed = ModelReader.read(model);
    change.accept(changed);
    ModelWriter.write(changed, model);
    return target;
  }
}
