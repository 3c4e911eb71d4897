package dev.kiln.exporter;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.SafeUnpickler;
import dev.kiln.testdata.FuzzFolder;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

/**
 * Fuzz targets for the TorchScript reader: whatever the bytes, the safe unpickler and the whole export (zip index,
 * version record, data.pkl and constants.pkl, storages, traced code, lowering) either succeed or throw a typed
 * {@link KilnException}. Any other exception, an error or a hang is a finding.
 *
 * <p>In the test suite each method runs once per committed input under
 * {@code src/test/resources/dev/kiln/exporter/TorchScriptFuzzTestInputs/<method>/} (seeds made by
 * {@code exporter/src/test/python/fuzz_seeds.py}: a traced Linear + LayerNorm + GELU module and its data.pkl);
 * {@code bench/fuzz.sh} runs them under libFuzzer.
 */
class TorchScriptFuzzTest {
  private static final FuzzFolder FOLDER = FuzzFolder.create("torchscript");

  @FuzzTest(maxDuration = "10m")
  void pickle(byte[] input) {
    try {
      SafeUnpickler.load("fuzz.pkl", "data/", input);
    } catch (KilnException expected) {
      // Refused by name or structure: the only way out besides a result.
    }
  }

  @FuzzTest(maxDuration = "10m")
  void archive(byte[] input) {
    FOLDER.reset();
    Path archive = FOLDER.write("model.pt", input);
    try {
      TorchScriptExporter.export(archive, "generic", TorchScriptExporter.DEFAULT_OPSET, Map.of("x", new long[] {2, 4}));
    } catch (KilnException expected) {
      // A damaged archive, a refused global or an unsupported construct: one clean line in the CLI.
    }
  }

  /**
   * Finding (bench/fuzz.sh, 320 k executions): dicts set as keys into themselves made HashMap.hashCode recurse until
   * the stack overflowed. Python refuses such keys as unhashable; so does the unpickler now, by name.
   */
  @Test
  void aSelfContainingDictionaryKeyIsRefusedAsUnhashable() {
    byte[] input;
    try (InputStream stream = TorchScriptFuzzTest.class.getResourceAsStream("TorchScriptFuzzTestInputs/pickle/self-containing-dict-key")) {
      input = stream.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    String message = Assertions.assertThrows(KilnException.BadInput.class, () -> SafeUnpickler.load("crash.pkl", "data/", input))
        .getMessage();
    Assertions.assertTrue(message.contains("dictionary key of unhashable type"), message);
  }
}
