package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Each model.pt is a torch.jit.save archive: one top folder with data.pkl, raw storages, code and a version. */
class TorchScriptArchiveTest {
  static Iterable<String> components() {
    return Fixtures.torchScriptComponentNames();
  }

  @ParameterizedTest
  @MethodSource("components")
  void archiveHasTheTorchScriptLayout(String name) throws IOException {
    try (ZipFile zip = new ZipFile(Fixtures.torchScript(name).toFile())) {
      Set<String> tops = new TreeSet<>();
      Set<String> entries = new TreeSet<>();
      zip.stream().map(ZipEntry::getName).forEach(entry -> {
        tops.add(entry.substring(0, entry.indexOf('/')));
        entries.add(entry.substring(entry.indexOf('/') + 1));
      });
      assertEquals(1, tops.size(), tops.toString());
      assertTrue(entries.contains("data.pkl") && entries.contains("constants.pkl"), entries.toString());
      assertTrue(entries.contains("version") || entries.contains(".data/version"), entries.toString());
      assertTrue(entries.stream().anyMatch(entry -> entry.startsWith("code/__torch__/")), entries.toString());
      long storages = entries.stream().filter(entry -> entry.matches("data/\\d+")).count();
      // one storage per parameter or buffer at least (tensors may share storages, never fewer than one)
      assertTrue(storages > 10, name + ": " + storages + " storages");
      String data = new String(zip.getInputStream(zip.getEntry(tops.iterator().next() + "/data.pkl")).readAllBytes(),
          java.nio.charset.StandardCharsets.ISO_8859_1);
      assertTrue(data.contains(Fixtures.manifest().component(name).moduleClass()), name + " root class in data.pkl");
    }
  }
}
