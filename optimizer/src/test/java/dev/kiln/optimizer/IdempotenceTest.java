package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Optimizing twice gives the same bytes as optimizing once, and the same input always gives the same bytes. */
class IdempotenceTest {
  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({"unet, CUDA", "sd2_unet, CPU", "clip_text, CPU", "vae_decoder, CUDA"})
  void secondRunChangesNothing(String name, Target target) {
    Path source = Fixtures.component(name, Opset.V17);
    Model once = ModelReader.read(source);
    Optimizer.optimize(once, name, Optimizer.Options.of(target).withoutCudaKernelLimits());
    byte[] first = ModelWriter.toBytes(once);

    Model again = ModelReader.read(source);
    Optimizer.optimize(again, name, Optimizer.Options.of(target).withoutCudaKernelLimits());
    assertArrayEquals(first, ModelWriter.toBytes(again), "same input, same output bytes");

    var report = Optimizer.optimize(once, name, Optimizer.Options.of(target).withoutCudaKernelLimits());
    assertEquals(report.nodesBefore(), report.nodesAfter());
    report.rules().forEach((rule, result) -> assertEquals(0, result.applied(), rule + " applied on an optimized model"));
    assertArrayEquals(first, ModelWriter.toBytes(once), "optimizing the optimized model is byte-identical");
  }
}
