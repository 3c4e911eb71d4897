package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.graph.ModelWriter;
import dev.kiln.testdata.Fixtures;
import org.junit.jupiter.api.Test;

/** Same archive, same bytes: names, node order, constants and initializer order do not depend on hashing or timing. */
class DeterminismTest {
  @Test
  void twoExportsAreByteIdentical() {
    for (String name : new String[] {"sdxl_unet", "clip_text"}) {
      byte[] first = ModelWriter.toBytes(TorchScriptExporter.export(Fixtures.torchScript(name), ComponentSpec.guess(name), 17).model());
      byte[] second = ModelWriter.toBytes(TorchScriptExporter.export(Fixtures.torchScript(name), ComponentSpec.guess(name), 17).model());
      assertArrayEquals(first, second, name);
    }
  }
}
