package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.SafeUnpickler;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Archives built to attack the reader: each is refused with exit code 2 and a message naming the entry and what
 * was wrong; nothing in them is executed or written outside the output.
 */
class HostileArchiveTest {
  @TempDir Path folder;

  private KilnException refused(Path archive) {
    KilnException failure = assertThrows(KilnException.class, () -> TorchScriptExporter.export(archive, "generic", 17));
    assertEquals(2, failure.exitCode(), failure.getMessage());
    assertTrue(!failure.getMessage().contains("\n"), "one line: " + failure.getMessage());
    return failure;
  }

  private Path withDataPickle(byte[] pickle) throws Exception {
    return new ArchiveBuilder().text("archive/version", "3\n").stored("archive/data.pkl", pickle)
        .write(folder.resolve("hostile.pt"));
  }

  private static byte[] callingGlobal(String module, String name) {
    return Pickles.start().global(module, name).string("touch /tmp/pwned").op('\u0085').op('R').stop();
  }

  @Test
  void osSystemGlobalIsRefusedByName() throws Exception {
    KilnException failure = refused(withDataPickle(callingGlobal("os", "system")));
    assertTrue(failure.getMessage().contains("refused pickle global 'os.system'"), failure.getMessage());
    assertTrue(failure.getMessage().contains("archive/data.pkl"), failure.getMessage());
  }

  @Test
  void builtinsEvalGlobalIsRefusedByName() throws Exception {
    KilnException failure = refused(withDataPickle(callingGlobal("builtins", "eval")));
    assertTrue(failure.getMessage().contains("refused pickle global 'builtins.eval'"), failure.getMessage());
  }

  @Test
  void subprocessPopenGlobalIsRefusedByName() throws Exception {
    KilnException failure = refused(withDataPickle(callingGlobal("subprocess", "Popen")));
    assertTrue(failure.getMessage().contains("refused pickle global 'subprocess.Popen'"), failure.getMessage());
  }

  @Test
  void reduceOnAnAllowedClassThatIsNotACallableTorchRuns() throws Exception {
    // __torch__ classes may be named (NEWOBJ builds them as data) but never called through REDUCE.
    byte[] pickle = Pickles.start().global("__torch__", "Evil").op(')').op('R').stop();
    KilnException failure = refused(withDataPickle(pickle));
    assertTrue(failure.getMessage().contains("REDUCE on '__torch__.Evil'"), failure.getMessage());
  }

  @Test
  void opcodesTorchNeverWritesAreRefused() {
    // INST (opcode 'i') builds and calls a class in one step: never accepted.
    byte[] pickle = Pickles.start().op('(').raw('i').stop();
    KilnException failure = assertThrows(KilnException.class, () -> SafeUnpickler.load("x.pkl", "data/", pickle));
    assertTrue(failure.getMessage().contains("opcode 0x69"), failure.getMessage());
  }

  @Test
  void zipSlipNamesAreRefused() throws Exception {
    Path archive = new ArchiveBuilder().text("archive/version", "3\n").text("archive/../../../etc/cron.d/evil", "x")
        .write(folder.resolve("slip.pt"));
    KilnException failure = refused(archive);
    assertTrue(failure.getMessage().contains("'archive/../../../etc/cron.d/evil' escapes the archive"), failure.getMessage());
  }

  @Test
  void absoluteNamesAreRefused() throws Exception {
    Path archive = new ArchiveBuilder().text("/etc/passwd", "x").write(folder.resolve("absolute.pt"));
    assertTrue(refused(archive).getMessage().contains("'/etc/passwd' escapes the archive"));
  }

  @Test
  void storagePastItsEntryIsRefused() throws Exception {
    // The pickle says 1000 floats; the entry holds 16 bytes.
    Path archive = ArchiveBuilder.module("    return torch.add(x, self.w)\n", 1000, 16).write(folder.resolve("short.pt"));
    KilnException failure = refused(archive);
    assertTrue(failure.getMessage().contains("storage 'archive/data/0' declares 4000 bytes but its entry holds 16"), failure.getMessage());
  }

  @Test
  void zipBombDeclaringHugeSizeIsRefusedBeforeInflating() throws Exception {
    Path archive = new ArchiveBuilder().text("archive/version", "3\n").deflated("archive/data.pkl", new byte[1000], 0xF0000000L)
        .write(folder.resolve("bomb.pt"));
    KilnException failure = refused(archive);
    assertTrue(failure.getMessage().contains("'archive/data.pkl' declares 4026531840 bytes"), failure.getMessage());
    assertTrue(failure.getMessage().contains("zip bomb"), failure.getMessage());
  }

  @Test
  void zipBombLyingAboutItsSizeStopsAtTheDeclaredSize() throws Exception {
    // 64 MiB of zeros (~64 KB deflated) declared as 1 KiB: inflation stops at the declared size.
    Path archive = new ArchiveBuilder().text("archive/version", "3\n").deflated("archive/data.pkl", new byte[64 << 20], 1024)
        .write(folder.resolve("liar.pt"));
    KilnException failure = refused(archive);
    assertTrue(failure.getMessage().contains("'archive/data.pkl' inflates past its declared 1024 bytes"), failure.getMessage());
  }

  @Test
  void scriptedControlFlowIsNamedWithItsLine() throws Exception {
    Path archive = ArchiveBuilder.module("    if bool(torch.gt(x, 0)):\n      return x\n    return torch.add(x, self.w)\n", 4, 16)
        .write(folder.resolve("scripted.pt"));
    KilnException failure = refused(archive);
    assertEquals("unsupported: scripted control flow at code/__torch__.py:6 (export a torch.jit.trace of the module, not torch.jit.script)",
        failure.getMessage());
  }

  @Test
  void forLoopsAreScriptedControlFlowToo() throws Exception {
    Path archive = ArchiveBuilder.module("    y = x\n    for _0 in range(3):\n      y = torch.add(y, self.w)\n    return y\n", 4, 16)
        .write(folder.resolve("loop.pt"));
    assertTrue(refused(archive).getMessage().startsWith("unsupported: scripted control flow at code/__torch__.py:7"));
  }

  @Test
  void unknownAtenOpIsNamedWithModuleAndLine() throws Exception {
    Path archive = ArchiveBuilder.module("    y = torch.fft_fft2(x)\n    return torch.add(y, self.w)\n", 4, 16)
        .write(folder.resolve("fft.pt"));
    KilnException failure = refused(archive);
    assertEquals("unsupported: aten op 'torch.fft_fft2' has no ONNX lowering in module <root> (M) at code/__torch__.py:6",
        failure.getMessage());
  }

  private static Path resource(String name) throws Exception {
    return Path.of(HostileArchiveTest.class.getResource("/torchscript/" + name).toURI());
  }

  @Test
  void torchJitScriptWithIfIsRefusedAtItsLine() throws Exception {
    assertEquals("unsupported: scripted control flow at code/__torch__.py:8 (export a torch.jit.trace of the module, not torch.jit.script)",
        refused(resource("scripted_if.pt")).getMessage());
  }

  @Test
  void torchJitScriptWithForIsRefusedAtItsLine() throws Exception {
    assertTrue(refused(resource("scripted_for.pt")).getMessage().startsWith("unsupported: scripted control flow at code/__torch__.py:9 "));
  }

  @Test
  void tracedFft2HasNoLowering() throws Exception {
    assertEquals("unsupported: aten op 'torch.fft_fft2' has no ONNX lowering in module <root> (Fourier) at code/__torch__.py:8",
        refused(resource("traced_fft.pt")).getMessage());
  }

  @Test
  void bakedSizeIsReportedWithItsLineAndInputDim() throws Exception {
    // int(sample.size(2)) traced at 1x4x8x6 left CONSTANTS.c0 = 8 in the reshape's size arithmetic.
    ExportResult result = TorchScriptExporter.export(resource("baked_reshape.pt"), "vae_encoder", 17, Map.of("sample", new long[] {1, 4, 8, 6}));
    assertEquals(List.of("baked constant 8 at code/__torch__.py:13 in module <root> (BakedReshape): equals input 'sample' dim 2 at the "
        + "traced shape (sample 1x4x8x6); the exported graph is only correct at that size"), result.warnings());
    // Without the traced shape nothing can be said, and nothing is.
    assertEquals(List.of(), TorchScriptExporter.export(resource("baked_reshape.pt"), "vae_encoder", 17).warnings());
  }

  @Test
  void aGenericModuleWithoutItsInputRankAsksForIt() throws Exception {
    Path archive = ArchiveBuilder.module("    return torch.add(x, self.w)\n", 4, 16).write(folder.resolve("rankless.pt"));
    assertEquals("unsupported: the rank of input 'x' is not known for a generic module (pass --traced-shape x=AxBx..) in module <root> (M) "
        + "at code/__torch__.py:6", refused(archive).getMessage());
  }

  @Test
  void malformedCallsAreNamedWithTheirLineNotAStackTrace() throws Exception {
    Path archive = ArchiveBuilder.module("    y = annotate(List[int])\n    return torch.add(x, self.w)\n", 4, 16).write(folder.resolve("odd.pt"));
    KilnException failure = refused(archive);
    assertTrue(failure.getMessage().startsWith("unsupported: IndexOutOfBoundsException"), failure.getMessage());
    assertTrue(failure.getMessage().endsWith("while lowering module <root> (M) at code/__torch__.py:6"), failure.getMessage());
  }

  @Test
  void aWellFormedMinimalArchiveExports() throws Exception {
    Path archive = ArchiveBuilder.module("    return torch.add(x, self.w)\n", 4, 16).write(folder.resolve("fine.pt"));
    ExportResult result = TorchScriptExporter.export(archive, "generic", 17, Map.of("x", new long[] {4}));
    assertEquals(1, result.model().graph().nodes().size());
    assertEquals(1, result.model().graph().initializers().size());
    assertEquals(Files.size(archive) > 0, true);
  }
}
