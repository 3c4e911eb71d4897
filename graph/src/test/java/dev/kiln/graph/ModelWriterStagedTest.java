package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.OutputTarget;
import dev.kiln.common.StagedFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model written as a replaceable output: its data file is named by its content, and the old one goes after the swap. */
class ModelWriterStagedTest {
  @TempDir Path folder;

  private static void write(Model model, Path target) {
    try (StagedFile staged = OutputTarget.file(target, "test").overwrite(true).stageFile()) {
      ModelWriter.write(model, staged, WriteOptions.externalAbove(4096));
      staged.commit();
    }
  }

  private static List<String> names(Path folder) throws Exception {
    try (Stream<Path> entries = Files.list(folder)) {
      return entries.map(path -> path.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void theDataFileIsNamedByItsContentAndTheSameModelGivesTheSameBytes() throws Exception {
    write(ModelWriterTest.threeWeights(), folder.resolve("one/model.onnx"));
    write(ModelWriterTest.threeWeights(), folder.resolve("two/model.onnx"));
    List<String> names = names(folder.resolve("one"));
    assertEquals(names, names(folder.resolve("two")));
    assertEquals(2, names.size());
    assertTrue(names.get(1).matches("model\\.onnx\\.[0-9a-f]{16}\\.data"), names.toString());
    assertArrayEquals(Files.readAllBytes(folder.resolve("one/model.onnx")), Files.readAllBytes(folder.resolve("two/model.onnx")));
    Model read = ModelReader.read(folder.resolve("one/model.onnx"));
    ExternalTensor large = (ExternalTensor) read.graph().findValue("w_large").initializer();
    assertEquals(folder.resolve("one").resolve(names.get(1)).toRealPath(), large.file());
    assertEquals(10000, large.length());
  }

  @Test
  void replacingWithOtherWeightsLeavesOnlyTheNewDataFile() throws Exception {
    Path target = folder.resolve("model.onnx");
    write(ModelWriterTest.threeWeights(), target);
    String before = names(folder).get(1);
    Model changed = ModelWriterTest.threeWeights();
    Value large = changed.graph().findValue("w_large");
    float[] values = ModelWriterTest.ramp(2500);
    values[7] = 42;
    Value replacement = changed.graph().addInitializer("w_large2", Tensor.ofFloats(new long[] {2500}, values));
    large.replaceAllUsesWith(replacement);
    changed.graph().removeInitializer(large);
    write(changed, target);
    List<String> after = names(folder);
    assertEquals(2, after.size(), "graph and one data file: " + after);
    assertNotEquals(before, after.get(1));
    assertEquals(42f, ModelReader.read(target).graph().findValue("w_large2").initializer().bytes()
        .order(java.nio.ByteOrder.LITTLE_ENDIAN).getFloat(7 * 4));
  }
}
