package dev.kiln.cli;

import dev.kiln.common.KilnException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code kiln} command: subcommands are registered here and nothing else happens here. */
@Command(
    name = "kiln",
    mixinStandardHelpOptions = true,
    version = "kiln 0.1.0",
    description = "Export, optimize, validate and run Stable Diffusion ONNX pipelines from one JVM.",
    subcommands = {
      // Each helper adds its command class here, one line each.
      GenerateCommand.class, TokenizeCommand.class, DemoCommand.class,
      OptimizeCommand.class,
      ValidateCommand.class,
      InspectCommand.class,
      ExportCommand.class,
    })
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(execute(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  /** Runs the CLI and returns its exit code: 0 ok, 1 validation failed, 2 bad input or usage. */
  public static int execute(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(out);
    commandLine.setErr(err);
    commandLine.setExecutionExceptionHandler(
        (exception, line, parseResult) -> {
          Throwable cause = exception;
          while (cause != null && !(cause instanceof KilnException) && cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
          }
          if (cause instanceof KilnException kiln) {
            line.getErr().println("kiln: " + kiln.getMessage());
            line.getErr().flush();
            return kiln.exitCode();
          }
          if (exception instanceof java.io.UncheckedIOException || exception instanceof java.io.IOException) {
            line.getErr().println("kiln: " + exception.getMessage());
            line.getErr().flush();
            return 2;
          }
          throw exception;
        });
    return commandLine.execute(args);
  }
}
