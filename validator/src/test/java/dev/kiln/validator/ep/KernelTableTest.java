package dev.kiln.validator.ep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.testdata.Fixtures;
import java.nio.file.Files;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class KernelTableTest {
  private static String pomOrtVersion() throws Exception {
    String pom = Files.readString(Fixtures.root().resolve("pom.xml"));
    Matcher matcher = Pattern.compile("<onnxruntime.version>([^<]+)</onnxruntime.version>").matcher(pom);
    assertTrue(matcher.find());
    return matcher.group(1);
  }

  @Test
  void recordsItsVersionAndItIsCheckedAgainstThePom() throws Exception {
    KernelTable table = KernelTable.get();
    assertEquals("1.23.0", table.ortVersion());
    String pinned = pomOrtVersion();
    // The jar on the class path is the pom's pin.
    assertEquals(pinned, KernelTable.runtimeVersion());
    String note = table.versionNote(pinned);
    if (pinned.startsWith("1.23.")) {
      assertNull(note);
    } else {
      assertEquals("kernel table from ONNX Runtime 1.23.0, runtime " + pinned
          + " (ops whose kernels changed between them may be misjudged)", note);
    }
    assertNull(table.versionNote("1.23.2"));
  }

  @Test
  void knowsTheKernelsStableDiffusionGraphsNeed() {
    KernelTable table = KernelTable.get();
    assertEquals(3, table.kernels(KernelTable.CPU, "ai.onnx", "Add").size());
    assertTrue(table.kernels(KernelTable.CPU, "com.microsoft", "GroupNorm").isEmpty());
    assertEquals(1, table.kernels(KernelTable.CUDA, "com.microsoft", "GroupNorm").size());
    assertEquals(1, table.kernels(KernelTable.CUDA, "com.microsoft", "BiasSplitGelu").size());
    assertNotNull(table.kernels(KernelTable.CPU, "com.microsoft", "MultiHeadAttention").get(0));
    assertEquals(17, table.introduced("LayerNormalization"));
    assertEquals(18, table.introduced("GroupNormalization"));
    assertEquals(1, table.introduced("Add"));
    assertNull(table.introduced("GroupNorm"));
  }
}
