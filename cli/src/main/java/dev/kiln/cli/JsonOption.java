package dev.kiln.cli;

import picocli.CommandLine.Option;

/**
 * The {@code --json} option every command shares (a picocli mixin): one JSON document on stdout instead of text,
 * and no progress bar. Each command documents its document's keys in its own description.
 */
public final class JsonOption {
  @Option(names = "--json", description = "Print one JSON document on stdout instead of text (and draw no progress bar).")
  boolean json;

  public boolean enabled() {
    return json;
  }
}
