package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import dev.kiln.testdata.ClipVocabulary;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI as a separate process, where the locale, the terminal and native libraries matter: arguments under
 * LC_ALL=C, progress decided by stderr's terminal (a pseudo-terminal from util-linux's script(1)), and ONNX
 * Runtime's own log lines.
 */
class CliProcessTest {
  private static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  private static final Path VAE = ROOT.resolve("testdata/fixtures/vae_decoder/opset17/model.onnx");
  /** "café ☕ 猫" as printf octal escapes, so the bytes reach argv whatever this JVM's own encoding is. */
  private static final String PROMPT_BYTES = "caf\\303\\251 \\342\\230\\225 \\347\\214\\253";
  private static final String PROMPT = "café ☕ 猫";

  @TempDir Path folder;

  record Result(int exitCode, String out, String err) {}

  @BeforeAll
  static void scriptIsThere() {
    // util-linux's script(1) is in Debian's essential bsdutils; the terminal tests need it, they must not skip.
    assertTrue(Files.isExecutable(Path.of("/usr/bin/script")), "/usr/bin/script (bsdutils) is needed for the terminal tests");
  }

  /** Runs {@code sh -c script} with $KILN set to the java command line of the CLI and the extra environment. */
  private Result shell(String script, Map<String, String> environment) throws IOException, InterruptedException {
    String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    ProcessBuilder builder = new ProcessBuilder("/bin/sh", "-c", script).directory(folder.toFile());
    builder.environment().remove("JAVA_TOOL_OPTIONS");
    builder.environment().remove("_JAVA_OPTIONS");
    builder.environment().put("JAVA", Path.of(System.getProperty("java.home"), "bin", "java").toString());
    builder.environment().put("CP", classPath);
    builder.environment().put("KILN_ROOT", ROOT.toString());
    builder.environment().putAll(environment);
    Path out = folder.resolve("process.out");
    Path err = folder.resolve("process.err");
    builder.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
    Process process = builder.start();
    if (!process.waitFor(120, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("timed out: " + script);
    }
    return new Result(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
  }

  private static final String KILN = "\"$JAVA\" -Xmx1g -XX:TieredStopAtLevel=1 -cp \"$CP\" dev.kiln.cli.Main";

  @Test
  void argumentsAreReadAsUtf8UnderTheCLocale() throws Exception {
    Map<String, String> cLocale = Map.of("LANG", "C", "LC_ALL", "C");
    Result settings = shell("\"$JAVA\" -XshowSettings:properties -version", cLocale);
    assertTrue(settings.err().contains("sun.jnu.encoding = ANSI_X3.4-1968"), "the child really decodes argv as ASCII:\n" + settings.err());

    Path clip = ClipVocabulary.tokenizerFolder();
    Result run = shell(KILN + " tokenize " + clip + " --json --prompt \"$(printf '" + PROMPT_BYTES + "')\"", cLocale);
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    int[] ids = new int[json.get("ids").size()];
    for (int index = 0; index < ids.length; index++) {
      ids[index] = json.get("ids").get(index).asInt();
    }
    ClipTokenizer tokenizer = ClipTokenizer.load(clip);
    assertArrayEquals(tokenizer.encode(PROMPT).ids(), ids);
    // What the JVM alone would have passed on: every non-ASCII byte as U+FFFD, a different prompt.
    assertFalse(java.util.Arrays.equals(tokenizer.encode("caf\ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd\ufffd").ids(), ids));

    Result latin1 = shell(KILN + " tokenize " + clip + " --prompt \"$(printf 'caf\\351')\"", cLocale);
    assertEquals(2, latin1.exitCode(), latin1.err());
    assertEquals("kiln: argument 4 is not valid UTF-8 (Kiln reads arguments as UTF-8 whatever the locale)",
        latin1.err().strip());
    assertEquals("", latin1.out());

    // Under a UTF-8 locale the JVM turns the same byte into U+FFFD without a word; Kiln refuses it there too.
    Result utf8Locale = shell(KILN + " tokenize " + clip + " --prompt \"$(printf 'caf\\351')\"", Map.of("LANG", "C.UTF-8", "LC_ALL", "C.UTF-8"));
    assertEquals(2, utf8Locale.exitCode(), utf8Locale.err());
    assertEquals("kiln: argument 4 is not valid UTF-8 (Kiln reads arguments as UTF-8 whatever the locale)",
        utf8Locale.err().strip());
  }

  @Test
  void progressDrawsWhenStderrIsATerminalEvenWithStdoutInAFile() throws Exception {
    Result run = shell("script -qec '" + KILN + " optimize " + VAE + " -o vae.onnx --target cpu > report.txt' /dev/null",
        Map.of("TERM", "xterm"));
    assertEquals(0, run.exitCode(), run.out() + run.err());
    // script(1) copies the terminal's output (the child's stderr) to its stdout.
    assertTrue(run.out().contains("\r\u001b[Koptimize vae-decoder (1/1) ["), run.out());
    assertTrue(run.out().contains("] 10/10 steps"), run.out());
    assertTrue(run.out().contains("fold-constants"), "the running step is named: " + run.out());
    String report = Files.readString(folder.resolve("report.txt"));
    assertTrue(report.contains("(vae-decoder, cpu): "), report);
    assertFalse(report.contains("\r") || report.contains("\u001b"), report);
  }

  @Test
  void noProgressWhenOnlyStdoutIsATerminal() throws Exception {
    Result run = shell("script -qec '" + KILN + " optimize " + VAE + " -o vae.onnx --target cpu 2> errors.txt' /dev/null",
        Map.of("TERM", "xterm"));
    assertEquals(0, run.exitCode(), run.out() + run.err());
    assertTrue(run.out().contains("(vae-decoder, cpu): "), "the report reaches the terminal: " + run.out());
    assertFalse(run.out().contains("steps"), run.out());
    assertEquals("", Files.readString(folder.resolve("errors.txt")), "stderr is a file: no bar drawn into it");
  }

  @Test
  void onnxRuntimeLogLinesNeverReachTheUser() throws Exception {
    Path pipeline = CliContractTest.copyOf(GenerateCommandTest.PIPELINE, folder.resolve("pipeline"));
    // An unused initializer makes ORT log "[W:onnxruntime:, graph.cc:... CleanUnusedInitializersAndNodeArgs] Removing
    // initializer ..." in colour at session creation unless its log level is above WARNING.
    Path decoder = pipeline.resolve("vae_decoder/model.onnx");
    ModelProto model = ModelProto.parseFrom(Files.readAllBytes(decoder));
    ModelProto withUnused = model.toBuilder().setGraph(model.getGraph().toBuilder().addInitializer(
        TensorProto.newBuilder().setName("unused").setDataType(1).addDims(1).addFloatData(0f))).build();
    Files.write(decoder, withUnused.toByteArray());
    Result run = shell(KILN + " generate pipeline --prompt 'a red circle' --steps 2 --seed 1 -o out.png", Map.of("TERM", "xterm"));
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(Files.isRegularFile(folder.resolve("out.png")));
    assertFalse(run.err().contains("onnxruntime"), run.err());
    assertFalse(run.out().contains("onnxruntime"), run.out());
    CliContractTest.assertNoControls(run.err());
    assertEquals("", run.err());
  }
}
