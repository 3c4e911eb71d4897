package dev.kiln.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.PhaseTimes;
import dev.kiln.common.Printable;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code kiln} command: subcommands are registered here, and here every failure becomes one escaped line on
 * stderr with its exit code — 0 ok, 1 a check failed, 2 bad input or usage, 3 an internal error (a bug).
 */
@Command(
    name = "kiln",
    mixinStandardHelpOptions = true,
    version = "kiln 0.1.0",
    description = "Export, optimize, validate and run Stable Diffusion ONNX pipelines from one JVM.",
    subcommands = {
      // Each helper adds its command class here, one line each.
      GenerateCommand.class, TokenizeCommand.class, DemoCommand.class,
      OptimizeCommand.class, CalibrateCommand.class,
      ValidateCommand.class, CompareCommand.class,
      InspectCommand.class,
      ExportCommand.class,
      BundleCommand.class, RunCommand.class,
    })
public final class Main implements Callable<Integer> {
  /** Exit codes, shown by every command's --help. */
  public static final int OK = 0;
  public static final int CHECK_FAILED = 1;
  public static final int BAD_INPUT = 2;
  public static final int INTERNAL_ERROR = 3;

  static final Map<String, String> EXIT_CODES = exitCodes();

  /**
   * ONNX Runtime's Java layer logs through java.util.logging (e.g. two lines when a second caller asks for the
   * environment at another log level); its failures also arrive as exceptions, which become Kiln's one line.
   * Held in a field because java.util.logging keeps loggers weakly.
   */
  private static final Logger ORT_JAVA_LOG = Logger.getLogger("ai.onnxruntime");

  static {
    ORT_JAVA_LOG.setLevel(Level.OFF);
  }

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** Plain {@code kiln} is a usage error: the usage goes to stderr and the exit code is 2. */
  @Override
  public Integer call() {
    spec.commandLine().usage(spec.commandLine().getErr());
    return BAD_INPUT;
  }

  public static void main(String[] args) {
    // Output is UTF-8 whatever the locale, like the arguments (JSON must be UTF-8; prompts come back in reports).
    PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), true);
    PrintWriter err = new PrintWriter(new OutputStreamWriter(System.err, StandardCharsets.UTF_8), true);
    int code;
    try {
      code = execute(Utf8Arguments.recover(args), out, err);
    } catch (KilnException e) {
      err.println("kiln: " + Printable.line(e.getMessage()));
      code = e.exitCode();
    }
    out.flush();
    err.flush();
    PhaseTimes.mark("exit");
    System.exit(code);
  }

  /** Runs the CLI and returns its exit code: 0 ok, 1 a check failed, 2 bad input or usage, 3 internal error. */
  public static int execute(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(out);
    commandLine.setErr(err);
    commandLine.setParameterExceptionHandler(Main::usageError);
    commandLine.setExecutionExceptionHandler((exception, line, parseResult) -> failure(exception, line.getErr()));
    describeEveryCommand(commandLine);
    try {
      return commandLine.execute(args);
    } catch (OutOfMemoryError | StackOverflowError error) {
      // picocli lets errors through; they still get one line.
      return failure(error, err);
    }
  }

  /** Every command, including ones added later, lists its defaults and the exit codes in --help. */
  private static void describeEveryCommand(CommandLine commandLine) {
    CommandLine.Model.UsageMessageSpec usage = commandLine.getCommandSpec().usageMessage();
    usage.showDefaultValues(true);
    usage.exitCodeListHeading("%nExit codes:%n");
    usage.exitCodeList(EXIT_CODES);
    commandLine.getSubcommands().values().forEach(Main::describeEveryCommand);
  }

  private static Map<String, String> exitCodes() {
    Map<String, String> codes = new LinkedHashMap<>();
    codes.put(" " + OK, "ok");
    codes.put(" " + CHECK_FAILED, "a check failed (the input was fine, the model did not pass)");
    codes.put(" " + BAD_INPUT, "bad input or usage: a malformed file, a bad option (one line on stderr says which)");
    codes.put(" " + INTERNAL_ERROR, "internal error: a bug in Kiln (KILN_DEBUG=1 prints the stack trace)");
    return codes;
  }

  /** A bad option or argument: one line naming it, a suggestion when picocli has one, and where help is. */
  private static int usageError(CommandLine.ParameterException exception, String[] args) {
    CommandLine line = exception.getCommandLine();
    String command = line.getCommandSpec().qualifiedName();
    CommandLine.ParameterException reported = exception;
    // picocli checks required options before it complains about unknown ones; the unknown one is the real mistake.
    if (!(exception instanceof CommandLine.UnmatchedArgumentException) && !line.getUnmatchedArguments().isEmpty()) {
      reported = new CommandLine.UnmatchedArgumentException(line, line.getUnmatchedArguments());
    }
    StringBuilder message = new StringBuilder(command).append(": ").append(firstLine(reported.getMessage()));
    if (reported instanceof CommandLine.UnmatchedArgumentException unmatched) {
      List<String> suggestions = unmatched.getSuggestions();
      if (!suggestions.isEmpty()) {
        message.append("; did you mean ").append(String.join(" or ", suggestions.subList(0, Math.min(3, suggestions.size())))).append('?');
      }
    }
    message.append(" (see '").append(command).append(" --help')");
    line.getErr().println(Printable.line(message.toString()));
    line.getErr().flush();
    return BAD_INPUT;
  }

  /** Any failure while a command runs: Kiln's own exceptions carry their exit code; anything else is one line too. */
  static int failure(Throwable exception, PrintWriter err) {
    Throwable cause = exception;
    while (cause != null && !(cause instanceof KilnException) && cause.getCause() != null && cause.getCause() != cause) {
      cause = cause.getCause();
    }
    int code;
    String message;
    if (cause instanceof KilnException kiln) {
      code = kiln.exitCode();
      message = withJsonCausesOnOneLine(kiln);
    } else if (exception instanceof java.io.UncheckedIOException || exception instanceof java.io.IOException) {
      code = BAD_INPUT;
      message = withJsonCausesOnOneLine(exception);
    } else if (exception instanceof OutOfMemoryError) {
      code = BAD_INPUT;
      message = "out of memory: the requested sizes need more than the JVM's heap (" + Runtime.getRuntime().maxMemory() / (1 << 20)
          + " MiB); ask for less, or raise it with KILN_JAVA_OPTS=-Xmx...";
    } else {
      code = INTERNAL_ERROR;
      StackTraceElement[] frames = exception.getStackTrace();
      message = "internal error (a bug in Kiln, please report it): " + exception
          + (frames.length > 0 ? " at " + frames[0] : "") + "; KILN_DEBUG=1 prints the stack trace";
    }
    err.println("kiln: " + Printable.line(message));
    if (code == INTERNAL_ERROR && System.getenv("KILN_DEBUG") != null) {
      exception.printStackTrace(err);
    }
    err.flush();
    return code;
  }

  /**
   * A message that embeds a Jackson error as-is would carry Jackson's source excerpt and "at [Source: ...]" lines;
   * those parts are replaced by {@link Json#describe}'s one line (message text and line/column).
   */
  private static String withJsonCausesOnOneLine(Throwable failure) {
    String message = failure.getMessage() != null ? failure.getMessage() : failure.toString();
    Throwable cause = failure;
    for (int depth = 0; cause != null && depth < 16; depth++, cause = cause.getCause()) {
      if (cause instanceof JsonProcessingException json && json.getMessage() != null) {
        // A KilnException holds the Jackson message already escaped to one line (Printable.line); match either form.
        message = message.replace(json.getMessage(), Json.describe(json)).replace(Printable.line(json.getMessage()), Json.describe(json));
      }
    }
    return message;
  }

  private static String firstLine(String text) {
    if (text == null) {
      return "";
    }
    int newline = text.indexOf('\n');
    return (newline < 0 ? text : text.substring(0, newline)).strip();
  }
}
