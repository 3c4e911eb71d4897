package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import dev.kiln.runner.tokenizer.TokenizedPrompt;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln tokenize}: the CLIP token ids a pipeline's text encoder sees, and whether the prompt was cut. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
    description = {"Show the CLIP token ids of a prompt (start, content, end; truncated to the model length).",
        "With --json: {\"ids\":[...],\"count\":N,\"truncated\":bool}."})
public final class TokenizeCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "PIPELINE_DIR", description = "Pipeline folder (uses tokenizer/), or a tokenizer folder itself.")
  Path pipeline;

  @Option(names = "--prompt", required = true, description = "Prompt to tokenize.")
  String prompt;

  @Option(names = "--tokenizer", defaultValue = "tokenizer", description = "Tokenizer subfolder (SDXL: tokenizer_2 for the second encoder).")
  String tokenizer;

  @Mixin JsonOption json;

  @Override
  public Integer call() {
    if (!Files.isDirectory(pipeline)) {
      throw new KilnException.BadInput("pipeline folder " + pipeline + " does not exist or is not a directory");
    }
    Path folder = Files.isRegularFile(pipeline.resolve("vocab.json")) ? pipeline : pipeline.resolve(tokenizer);
    TokenizedPrompt tokens = ClipTokenizer.load(folder).encode(prompt);
    PrintWriter out = spec.commandLine().getOut();
    if (json.enabled()) {
      Map<String, Object> report = new LinkedHashMap<>();
      report.put("ids", Arrays.stream(tokens.ids()).boxed().toList());
      report.put("count", tokens.count());
      report.put("truncated", tokens.truncated());
      out.println(Json.write(report));
    } else {
      out.println(Arrays.stream(tokens.ids()).mapToObj(Integer::toString).collect(Collectors.joining(" ")));
      out.println(tokens.count() + " tokens" + (tokens.truncated()
          ? ", truncated: the prompt has " + tokens.contentCount() + " content tokens, CLIP keeps " + (tokens.count() - 2)
          : ""));
    }
    out.flush();
    return 0;
  }
}
