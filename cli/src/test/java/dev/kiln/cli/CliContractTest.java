package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.cli.GenerateCommandTest.Run;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * What every command shares: help with defaults and exit codes, one escaped line per failure, --json as a mixin,
 * model names escaped in everything printed. Runs in process; CliProcessTest covers locale and terminal.
 */
class CliContractTest {
  /** A name that would end a line, recolour the terminal and set its title if printed raw. */
  static final String EVIL = "evil\n\u001b[31mred\u001b]0;pwned\u0007";
  static final String EVIL_ESCAPED = "evil\\n\\x1b[31mred\\x1b]0;pwned\\x07";

  @TempDir Path folder;

  @Test
  void everyCommandsHelpListsDefaultsAndExitCodes() {
    CommandLine root = new CommandLine(new Main());
    assertTrue(root.getSubcommands().size() >= 5, root.getSubcommands().keySet().toString());
    for (String command : root.getSubcommands().keySet()) {
      Run help = GenerateCommandTest.run(command, "--help");
      assertEquals(0, help.exitCode(), command);
      assertTrue(help.out().contains("Exit codes:"), command + ":\n" + help.out());
      assertTrue(help.out().contains("   0   ok"), command + ":\n" + help.out());
      assertTrue(help.out().contains("   1   a check failed"), command + ":\n" + help.out());
      assertTrue(help.out().contains("   2   bad input or usage"), command + ":\n" + help.out());
      assertTrue(help.out().contains("--json"), command + " has --json:\n" + help.out());
    }
    Run generate = GenerateCommandTest.run("generate", "--help");
    for (String shown : new String[] {"Default: 7.5", "Default: 0.8", "Default: cpu", "Default: out.png", "Default: 1",
        "Default: the pipeline's", "Default: random"}) {
      assertTrue(generate.out().contains(shown), shown + " in:\n" + generate.out());
    }
    assertTrue(GenerateCommandTest.run("tokenize", "--help").out().contains("Default: tokenizer"));
    assertTrue(GenerateCommandTest.run("demo", "--help").out().contains("Default: demo.png"));
    assertTrue(GenerateCommandTest.run("optimize", "--help").out().contains("Default: detected from I/O names"));
  }

  @Test
  void jsonIsOneSharedMixinOnEveryCommand() {
    CommandLine root = new CommandLine(new Main());
    for (Map.Entry<String, CommandLine> command : root.getSubcommands().entrySet()) {
      CommandLine.Model.CommandSpec spec = command.getValue().getCommandSpec();
      assertNotNull(spec.findOption("--json"), command.getKey());
      assertTrue(spec.mixins().values().stream().anyMatch(mixin -> mixin.userObject() instanceof JsonOption),
          command.getKey() + " declares --json itself instead of using the JsonOption mixin");
    }
    assertTrue(root.getSubcommands().get("generate").getCommandSpec().mixins().values().stream()
        .anyMatch(mixin -> mixin.userObject() instanceof DeviceOptions));
  }

  @Test
  void plainKilnPrintsUsageOnStderrAndExitsTwo() {
    Run run = GenerateCommandTest.run();
    assertEquals(2, run.exitCode());
    assertEquals("", run.out());
    assertTrue(run.err().startsWith("Usage: kiln [-hV] [COMMAND]"), run.err());
    assertTrue(run.err().contains("Exit codes:"), run.err());
  }

  @Test
  void usageErrorsAreOneLinePointingAtHelp() {
    String[][] cases = {
      {"optimize", "--bogus", "x"},
      {"optimize", "--targt", "cpu", "in.onnx", "-o", "out.onnx"},
      {"generate", "p", "--prompt", "x", "--steps", "many"},
      {"inspect"},
      {"inspekt", "model.onnx"},
      {"tokenize", "folder"},
    };
    for (String[] arguments : cases) {
      Run run = GenerateCommandTest.run(arguments);
      String what = String.join(" ", arguments);
      assertEquals(2, run.exitCode(), what);
      assertEquals(1, run.err().lines().count(), what + ":\n" + run.err());
      assertFalse(run.err().contains("Usage:"), what + ":\n" + run.err());
      assertTrue(run.err().strip().endsWith("--help')"), what + ":\n" + run.err());
      assertEquals("", run.out(), what);
    }
    Run unknown = GenerateCommandTest.run("optimize", "--targt", "cpu", "in.onnx", "-o", "out.onnx");
    assertTrue(unknown.err().startsWith("kiln optimize: Unknown option"), unknown.err());
    assertTrue(unknown.err().contains("did you mean --target?"), unknown.err());
    Run missing = GenerateCommandTest.run("tokenize", "folder");
    assertEquals("kiln tokenize: Missing required option: '--prompt=<prompt>' (see 'kiln tokenize --help')", missing.err().strip());
  }

  @Test
  void unexpectedFailuresAreOneLineToo() {
    StringWriter bug = new StringWriter();
    assertEquals(3, Main.failure(new IllegalStateException("tensor 'x\n\u001b[2J' has no producer"), new PrintWriter(bug, true)));
    assertEquals(1, bug.toString().lines().count(), bug.toString());
    assertTrue(bug.toString().startsWith("kiln: internal error (a bug in Kiln, please report it): java.lang.IllegalStateException: "
        + "tensor 'x\\n\\x1b[2J' has no producer at "), bug.toString());
    assertNoControls(bug.toString());

    StringWriter memory = new StringWriter();
    assertEquals(2, Main.failure(new OutOfMemoryError("Java heap space"), new PrintWriter(memory, true)));
    assertEquals(1, memory.toString().lines().count(), memory.toString());
    assertTrue(memory.toString().startsWith("kiln: out of memory: "), memory.toString());
  }

  @Test
  void jacksonParseErrorsAreOneLineWithLineAndColumn() throws IOException {
    Files.writeString(folder.resolve("model_index.json"), "{\n  \"unet\": [\"diffusers\",\n}");
    Run inspect = GenerateCommandTest.run("inspect", folder.toString());
    assertEquals(2, inspect.exitCode());
    assertEquals(1, inspect.err().lines().count(), inspect.err());
    assertTrue(inspect.err().contains("model_index.json: not valid JSON: Unexpected character ('}'"), inspect.err());
    assertTrue(inspect.err().contains("(line 3, column 1)"), inspect.err());
    assertFalse(inspect.err().contains("[Source"), inspect.err());

    // The runner's readers embed Jackson's message; the CLI still prints one line with the position.
    Path pipeline = copyOf(GenerateCommandTest.PIPELINE, folder.resolve("broken-scheduler"));
    Files.writeString(pipeline.resolve("scheduler/scheduler_config.json"), "{\"beta_start\": 0.00085,\n \"beta_end\": oops}");
    Run generate = GenerateCommandTest.run("generate", pipeline.toString(), "--prompt", "x", "--steps", "2", "-o",
        folder.resolve("x.png").toString());
    assertEquals(2, generate.exitCode(), generate.err());
    assertEquals(1, generate.err().lines().count(), generate.err());
    assertTrue(generate.err().contains("scheduler_config.json"), generate.err());
    assertTrue(generate.err().contains("line 2, column"), generate.err());
    assertFalse(generate.err().contains("[Source"), generate.err());
  }

  @Test
  void modelNamesAreEscapedInInspectText() throws IOException {
    Path model = write(folder.resolve("evil.onnx"), evilModel(false));
    Run text = GenerateCommandTest.run("inspect", model.toString());
    assertEquals(0, text.exitCode(), text.err());
    assertNoControls(text.out());
    assertTrue(text.out().contains("    " + EVIL_ESCAPED + "  FLOAT[1,4]"), text.out());
    assertTrue(text.out().contains("producer " + EVIL_ESCAPED), text.out());
    assertTrue(text.out().contains("    out" + "\\r\\nX  FLOAT[1,4]"), text.out());
    assertEquals(8, text.out().lines().count(), "one line per item, none split by a name:\n" + text.out());

    Run graph = GenerateCommandTest.run("inspect", model.toString(), "--graph");
    assertEquals(0, graph.exitCode(), graph.err());
    assertNoControls(graph.out());
    assertTrue(graph.out().contains("%" + EVIL_ESCAPED), graph.out());
    assertTrue(graph.out().contains("# node" + "\\x1b[2J"), graph.out());

    Run json = GenerateCommandTest.run("inspect", model.toString(), "--json");
    assertEquals(0, json.exitCode(), json.err());
    assertNoControls(json.out());
    assertTrue(json.out().contains("\"name\":\"evil\\n\\u001B[31mred"), json.out());
  }

  @Test
  void modelNamesInErrorsStayOnOneLine() throws IOException {
    Path model = write(folder.resolve("escaping.onnx"), evilModel(true));
    Run run = GenerateCommandTest.run("inspect", model.toString());
    assertEquals(2, run.exitCode(), run.err());
    assertEquals(1, run.err().lines().count(), run.err());
    assertNoControls(run.err());
    assertTrue(run.err().contains("tensor '" + "w" + "\\n\\x1b[2J"), run.err());
    assertTrue(run.err().contains("contains '..'"), run.err());
    Run optimize = GenerateCommandTest.run("optimize", model.toString(), "-o", folder.resolve("out.onnx").toString(), "--target", "cpu");
    assertEquals(2, optimize.exitCode(), optimize.err());
    assertEquals(1, optimize.err().lines().count(), optimize.err());
    assertNoControls(optimize.err());
  }

  /** Nothing below U+0020 but the line ends, no DEL, no C1 control, no ESC. */
  static void assertNoControls(String text) {
    text.chars().forEach(c -> assertTrue(c == '\n' || (c >= 0x20 && c != 0x7f && !(c >= 0x80 && c <= 0x9f)),
        "control character U+" + Integer.toHexString(c) + " in:\n" + text));
  }

  /**
   * y = Relu(x) with hostile names everywhere a name can be; {@code escaping} adds an initializer named with a
   * newline whose external data points outside the folder (the reader refuses it, naming the tensor).
   */
  static ModelProto evilModel(boolean escaping) {
    GraphProto.Builder graph = GraphProto.newBuilder()
        .setName("g\u001b[1m")
        .addInput(floatInfo(EVIL))
        .addNode(NodeProto.newBuilder().setOpType("Relu").setName("node\u001b[2J").addInput(EVIL).addOutput("out\r\nX"))
        .addOutput(floatInfo("out\r\nX"));
    if (escaping) {
      graph.addInitializer(TensorProto.newBuilder().setName("w\n\u001b[2J").setDataType(1).addDims(4)
          .setDataLocation(TensorProto.DataLocation.EXTERNAL)
          .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue("../secret\u001b[5m.bin"))
          .addExternalData(StringStringEntryProto.newBuilder().setKey("length").setValue("16")));
    }
    return ModelProto.newBuilder().setIrVersion(8).setProducerName(EVIL)
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17)).setGraph(graph).build();
  }

  private static ValueInfoProto floatInfo(String name) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    shape.addDimBuilder().setDimValue(1);
    shape.addDimBuilder().setDimValue(4);
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(1).setShape(shape))).build();
  }

  static Path write(Path file, ModelProto model) throws IOException {
    return Files.write(file, model.toByteArray());
  }

  static Path copyOf(Path source, Path target) throws IOException {
    try (Stream<Path> paths = Files.walk(source)) {
      for (Path path : (Iterable<Path>) paths.sorted()::iterator) {
        Path destination = target.resolve(source.relativize(path).toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(destination);
        } else {
          Files.copy(path, destination);
        }
      }
    }
    return target;
  }
}
