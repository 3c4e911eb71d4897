package dev.kiln.graph;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.testdata.FuzzFolder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;

/**
 * Fuzz targets for the ONNX reader. The contract: whatever the bytes, {@link ModelReader#read} either returns
 * a model whose external data stays inside the model folder, or throws a typed {@link KilnException}. Any other
 * exception or error (IllegalArgumentException from protobuf, ArithmeticException, OutOfMemoryError, a hang) is
 * a finding.
 *
 * <p>In the normal test suite each method runs once per committed input under
 * {@code src/test/resources/dev/kiln/graph/OnnxReaderFuzzTestInputs/<method>/} (Jazzer's regression mode; a
 * finding fixed in the reader stays there as a regression test). {@code bench/fuzz.sh} runs the same methods
 * under libFuzzer for a million executions each.
 *
 * <p>Adding a target (e.g. the TorchScript reader): one small class {@code XyzFuzzTest} in the package of the
 * code under test, whose {@code @FuzzTest} methods take {@code byte[]}, lay the input out as files with
 * {@link FuzzFolder}, call the reader, and let only {@link KilnException} pass; seed inputs (small fixture
 * files, or readable text for structured targets) go in {@code src/test/resources/<package>/XyzFuzzTestInputs/<method>/};
 * then add one line {@code target MODULE CLASS METHOD} to {@code bench/fuzz.sh}.
 */
class OnnxReaderFuzzTest {
  /** Element types whose values the IR decodes; the fuzz targets touch every such initializer's values. */
  private static final Set<DataType> DECODED = EnumSet.of(DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE,
      DataType.INT8, DataType.UINT8, DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32, DataType.INT64,
      DataType.UINT64, DataType.BOOL);
  private static final FuzzFolder FOLDER = layOut();
  private static final Path MODEL_FOLDER = FOLDER.root().resolve("model");
  private static final String MODEL = "model/model.onnx";

  /**
   * The model folder every input is read from: data files a fuzzed location can name, plus every hostile
   * neighbour the external-data rules must refuse (a file outside the folder, symbolic links to it, a link
   * loop, a directory and an empty file where a data file is expected).
   */
  private static FuzzFolder layOut() {
    FuzzFolder folder = FuzzFolder.create("onnx");
    Path root = folder.root();
    try {
      Path model = Files.createDirectories(root.resolve("model"));
      Path outside = Files.createDirectories(root.resolve("outside"));
      byte[] sixFloats = Protos.floats(1, 2, 3, 4, 5, 6);
      Files.write(model.resolve("weights.bin"), sixFloats);
      Files.write(model.resolve("model.onnx.data"), sixFloats);
      Files.write(Files.createDirectories(model.resolve("sub")).resolve("inner.bin"), sixFloats);
      Files.write(model.resolve("empty.bin"), new byte[0]);
      Files.createDirectories(model.resolve("folder.bin"));
      Files.write(outside.resolve("secret.bin"), sixFloats);
      Files.createSymbolicLink(model.resolve("escape.bin"), Path.of("../outside/secret.bin"));
      Files.createSymbolicLink(model.resolve("escape-dir"), Path.of("../outside"));
      Files.createSymbolicLink(model.resolve("inside-link.bin"), Path.of("weights.bin"));
      Files.createSymbolicLink(model.resolve("loop.bin"), Path.of("loop.bin"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return folder;
  }

  /** Raw model bytes (seeds: small models of every tensor storage, inline and external). */
  @FuzzTest(maxDuration = "10m")
  void model(byte[] input) {
    FOLDER.reset();
    readAndTouch(FOLDER.write(MODEL, input));
  }

  /**
   * The external-data rules with the protobuf held valid: each input line {@code key=value} is an external_data
   * entry of a FLOAT initializer, except {@code dims=2,3} and {@code type=N}, which set its shape and element type.
   * Byte mutations of a protobuf rarely keep it parseable; this target spends every execution on the rules.
   */
  @FuzzTest(maxDuration = "10m")
  void externalData(byte[] input) {
    FOLDER.reset();
    TensorProto.Builder tensor = TensorProto.newBuilder().setName("w").setDataType(DataType.FLOAT.number())
        .setDataLocation(TensorProto.DataLocation.EXTERNAL);
    boolean dimsGiven = false;
    for (String line : new String(input, StandardCharsets.UTF_8).split("\n", -1)) {
      int equals = line.indexOf('=');
      String key = equals < 0 ? line : line.substring(0, equals);
      String value = equals < 0 ? "" : line.substring(equals + 1);
      if (key.equals("dims")) {
        dimsGiven = true;
        for (String dim : value.split(",")) {
          tensor.addDims(parseOr(dim, 0));
        }
      } else if (key.equals("type")) {
        tensor.setDataType((int) parseOr(value, 0));
      } else {
        tensor.addExternalData(StringStringEntryProto.newBuilder().setKey(key).setValue(value));
      }
    }
    if (!dimsGiven) {
      tensor.addDims(2).addDims(3);
    }
    ModelProto model = Protos.addModel(tensor.build());
    readAndTouch(FOLDER.write(MODEL, model.toByteArray()));
  }

  private static long parseOr(String text, long fallback) {
    try {
      return Long.parseLong(text.trim());
    } catch (NumberFormatException e) {
      return fallback;
    }
  }

  /** Reads the model and uses it as inspect and optimize would: verify, decode every initializer, serialize. */
  private static void readAndTouch(Path file) {
    Model model;
    try {
      model = ModelReader.read(file);
      Verifier.check(model);
      for (Value initializer : model.graph().initializers()) {
        Tensor tensor = initializer.initializer();
        if (tensor instanceof ExternalTensor external) {
          assertInsideModelFolder(external);
        }
        if (DECODED.contains(tensor.dataType())) {
          tensor.readBytes();
          tensor.floats();
        }
      }
      ModelWriter.toBytes(model);
    } catch (KilnException expected) {
      // The contract: bad input is refused with a typed error.
    }
  }

  private static void assertInsideModelFolder(ExternalTensor tensor) {
    try {
      Path real = tensor.file().toRealPath();
      if (!real.startsWith(MODEL_FOLDER.toRealPath())) {
        throw new AssertionError("external data escaped the model folder: " + real);
      }
    } catch (IOException e) {
      throw new AssertionError("accepted external data that cannot be resolved: " + tensor.file(), e);
    }
  }
}
