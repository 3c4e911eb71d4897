package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** External data is untrusted: every location, range and length is checked before anything is mapped. */
class ExternalDataSafetyTest {
  private static final long[] DIMS = {2, 3};
  private static final float[] VALUES = {1, 2, 3, 4, 5, 6};

  @TempDir Path root;
  private Path folder;
  private Path outside;

  @BeforeEach
  void layOutFolders() throws IOException {
    folder = Files.createDirectories(root.resolve("model"));
    outside = Files.createDirectories(root.resolve("elsewhere"));
    Files.write(folder.resolve("weights.bin"), Protos.floats(VALUES));
    Files.write(outside.resolve("secret.bin"), Protos.floats(VALUES));
  }

  private Path modelWith(String... externalData) {
    return Protos.write(folder.resolve("model.onnx"), Protos.addModel(Protos.externalTensor("w", DIMS, externalData)));
  }

  /** Reading must fail as BadInput naming the model file, the tensor and the location. */
  private String rejected(Path model, String location, String why) {
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class, () -> ModelReader.read(model));
    String message = error.getMessage();
    assertTrue(message.startsWith(model.toString()), "names the model: " + message);
    assertTrue(message.contains("tensor 'w'"), "names the tensor: " + message);
    assertTrue(message.contains("location '" + location + "'"), "names the location: " + message);
    assertTrue(message.contains(why), "says why (" + why + "): " + message);
    return message;
  }

  @Test
  void aWellFormedExternalTensorIsReadLazilyAndCorrectly() {
    Model model = ModelReader.read(modelWith("location", "weights.bin", "offset", "0", "length", "24"));
    Tensor tensor = model.graph().initializers().get(0).initializer();
    ExternalTensor external = assertInstanceOf(ExternalTensor.class, tensor);
    assertEquals(24, external.length());
    assertArrayEquals(VALUES, tensor.floats());
  }

  @Test
  void absoluteLocationIsRejected() {
    Path absolute = outside.resolve("secret.bin").toAbsolutePath();
    rejected(modelWith("location", absolute.toString(), "length", "24"), absolute.toString(), "is an absolute path");
  }

  @Test
  void parentDirectoryEscapeIsRejected() {
    rejected(modelWith("location", "../elsewhere/secret.bin", "length", "24"), "../elsewhere/secret.bin", "contains '..'");
  }

  @Test
  void escapeHiddenInsideAPathIsRejected() {
    rejected(modelWith("location", "sub/../../elsewhere/secret.bin"), "sub/../../elsewhere/secret.bin", "contains '..'");
  }

  @Test
  void symlinkedFilePointingOutsideIsRejected() throws IOException {
    Files.createSymbolicLink(folder.resolve("link.bin"), outside.resolve("secret.bin"));
    rejected(modelWith("location", "link.bin", "length", "24"), "link.bin", "symbolic link leading outside the model folder");
  }

  @Test
  void symlinkedFolderPointingOutsideIsRejected() throws IOException {
    Files.createSymbolicLink(folder.resolve("shared"), outside);
    rejected(modelWith("location", "shared/secret.bin"), "shared/secret.bin", "symbolic link leading outside the model folder");
  }

  @Test
  void symlinkStayingInsideTheFolderIsAccepted() throws IOException {
    Files.createDirectories(folder.resolve("blobs"));
    Files.move(folder.resolve("weights.bin"), folder.resolve("blobs/weights.bin"));
    Files.createSymbolicLink(folder.resolve("weights.bin"), folder.resolve("blobs/weights.bin"));
    Model model = ModelReader.read(modelWith("location", "weights.bin"));
    assertArrayEquals(VALUES, model.graph().initializers().get(0).initializer().floats());
  }

  @Test
  void offsetBeyondTheFileIsRejected() {
    rejected(modelWith("location", "weights.bin", "offset", "100", "length", "24"), "weights.bin", "offset 100 is beyond the end of the file (24 bytes)");
  }

  @Test
  void rangeRunningPastTheEndIsRejected() {
    rejected(modelWith("location", "weights.bin", "offset", "8", "length", "24"), "weights.bin",
        "offset 8 + length 24 = 32 is beyond the end of the file (24 bytes)");
  }

  @Test
  void lengthDisagreeingWithShapeAndTypeIsRejected() {
    rejected(modelWith("location", "weights.bin", "offset", "0", "length", "20"), "weights.bin",
        "has length 20 bytes, but shape [2,3] of FLOAT needs 24 bytes");
  }

  @Test
  void impliedLengthDisagreeingWithShapeIsRejected() {
    // Without a length the tensor runs to the end of the file: 24 - 4 = 20 bytes, not 24.
    rejected(modelWith("location", "weights.bin", "offset", "4"), "weights.bin", "has length 20 bytes, but shape [2,3] of FLOAT needs 24 bytes");
  }

  @Test
  void nonNumericAndNegativeOffsetsAreRejected() {
    rejected(modelWith("location", "weights.bin", "offset", "zero"), "weights.bin", "offset 'zero' is not a number");
    rejected(modelWith("location", "weights.bin", "offset", "-4", "length", "24"), "weights.bin", "offset -4 is negative");
  }

  @Test
  void missingLocationAndMissingFileAreRejected() {
    rejected(modelWith("offset", "0", "length", "24"), "(none)", "no 'location' entry");
    rejected(modelWith("location", "absent.bin"), "absent.bin", "does not exist");
  }

  @Test
  void locationThatIsAFolderIsRejected() throws IOException {
    Files.createDirectories(folder.resolve("adir"));
    rejected(modelWith("location", "adir"), "adir", "is not a regular file");
  }

  @Test
  void nothingIsWrittenWhenReadingFails() throws IOException {
    Path model = modelWith("location", "../elsewhere/secret.bin");
    assertThrows(KilnException.BadInput.class, () -> ModelReader.read(model));
    try (var files = Files.list(folder)) {
      assertEquals(2, files.count(), "only model.onnx and weights.bin");
    }
  }
}
