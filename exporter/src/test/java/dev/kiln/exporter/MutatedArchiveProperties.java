package dev.kiln.exporter;

import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.SafeUnpickler;
import dev.kiln.testdata.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * Until a fuzz target exists: random and mutated pickles and archives never get past the readers as anything but a
 * {@link KilnException} (a clean exit 2) — no other exception, no hang, no huge allocation.
 */
class MutatedArchiveProperties {
  private static final byte[] PICKLE = Pickles.moduleWithParameter("weight", 16);

  @Property(tries = 500)
  void randomBytesAreRefusedCleanly(@ForAll @Size(max = 200) byte[] bytes) {
    try {
      SafeUnpickler.load("random.pkl", "data/", bytes);
    } catch (KilnException expected) {
      // The only way out.
    }
  }

  @Property(tries = 500)
  void mutatedTorchPicklesAreReadOrRefusedCleanly(@ForAll @IntRange(min = 0, max = 10_000) int position, @ForAll byte value,
      @ForAll @IntRange(min = 0, max = 3) int extraCuts) {
    byte[] mutated = PICKLE.clone();
    mutated[position % mutated.length] = value;
    int length = Math.max(1, mutated.length - extraCuts * (position % 7));
    byte[] cut = java.util.Arrays.copyOf(mutated, length);
    try {
      SafeUnpickler.load("mutated.pkl", "data/", cut);
    } catch (KilnException expected) {
      // Refused by name or structure.
    }
  }

  @Property(tries = 60)
  void mutatedArchivesExportOrAreRefusedCleanly(@ForAll @IntRange(min = 0, max = 400_000) int position, @ForAll byte value) throws Exception {
    byte[] archive = Files.readAllBytes(Fixtures.torchScript("clip_text"));
    archive[position % archive.length] = value;
    Path file = Files.createTempFile("kiln-mutated", ".pt");
    try {
      Files.write(file, archive);
      TorchScriptExporter.export(file, "text_encoder", 17);
    } catch (KilnException expected) {
      // A mutated byte in a weight exports fine; one in the structure is refused.
    } finally {
      Files.deleteIfExists(file);
    }
  }
}
