package dev.kiln.validator.ep;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which execution provider has a kernel for which op, domain, opset range and element type: generated from
 * ONNX Runtime's docs/OperatorKernels.md by {@code validator/tools/ort_kernel_table.py} into a resource, with
 * the ONNX operators' first opsets next to it ({@code onnx-ops.tsv}).
 */
public final class KernelTable {
  public static final String CPU = "CPUExecutionProvider";
  public static final String CUDA = "CUDAExecutionProvider";

  /** One registered kernel: opsets [since, until] (until -1 = open), inputs' type variables, allowed types. */
  public record Kernel(String provider, String domain, String op, int since, int until, List<String> inputs,
      Map<String, Set<String>> constraints) {
    boolean covers(long opset) {
      return since <= opset && (until < 0 || opset <= until);
    }

    /** The allowed element types of input {@code index} (variadic inputs repeat the last), or null if unconstrained. */
    Set<String> allowedTypes(int index) {
      if (inputs.isEmpty()) {
        return null;
      }
      String variable = inputs.get(Math.min(index, inputs.size() - 1));
      if (variable.startsWith("=")) {
        return Set.of(variable.substring(1));
      }
      return constraints.get(variable);
    }
  }

  private static final Pattern VERSION = Pattern.compile("^# onnxruntime (\\S+) ");
  private static volatile KernelTable instance;

  private final String ortVersion;
  private final Map<String, List<Kernel>> kernels;
  private final Map<String, Integer> introduced;

  private KernelTable(String ortVersion, Map<String, List<Kernel>> kernels, Map<String, Integer> introduced) {
    this.ortVersion = ortVersion;
    this.kernels = kernels;
    this.introduced = introduced;
  }

  public static KernelTable get() {
    KernelTable table = instance;
    if (table == null) {
      synchronized (KernelTable.class) {
        if (instance == null) {
          instance = load();
        }
        table = instance;
      }
    }
    return table;
  }

  /**
   * How the table's ONNX Runtime version relates to the runtime's (the pom pins it): null when they agree to
   * the minor version, else a note that names both — reported with every EP check so a table older or newer
   * than the runtime never passes unnoticed.
   */
  public String versionNote(String runtimeVersion) {
    String[] table = ortVersion.split("\\.");
    String[] runtime = runtimeVersion.split("\\.");
    if (table.length >= 2 && runtime.length >= 2 && table[0].equals(runtime[0]) && table[1].equals(runtime[1])) {
      return null;
    }
    return "kernel table from ONNX Runtime " + ortVersion + ", runtime " + runtimeVersion
        + " (ops whose kernels changed between them may be misjudged)";
  }

  /** The version of the ONNX Runtime library on the class path. */
  public static String runtimeVersion() {
    return ai.onnxruntime.OrtEnvironment.getEnvironment().getVersion();
  }

  /** The ONNX Runtime version the table was generated from. */
  public String ortVersion() {
    return ortVersion;
  }

  public List<Kernel> kernels(String provider, String domain, String op) {
    return kernels.getOrDefault(provider + "\t" + domain + "\t" + op, List.of());
  }

  /** The first opset of a default-domain ONNX operator, or null when ONNX has no such operator. */
  public Integer introduced(String op) {
    return introduced.get(op);
  }

  private static KernelTable load() {
    String version = null;
    Map<String, List<Kernel>> kernels = new HashMap<>();
    for (String line : lines("ort-kernels.tsv")) {
      if (line.startsWith("#")) {
        Matcher matcher = VERSION.matcher(line);
        if (matcher.find()) {
          version = matcher.group(1);
        }
        continue;
      }
      String[] cells = line.split("\t", -1);
      List<String> inputs = cells[5].equals("-") ? List.of() : Arrays.asList(cells[5].split(","));
      Map<String, Set<String>> constraints = new HashMap<>();
      if (!cells[6].equals("-")) {
        for (String constraint : cells[6].split(";")) {
          int colon = constraint.indexOf(':');
          constraints.put(constraint.substring(0, colon),
              new LinkedHashSet<>(Arrays.asList(constraint.substring(colon + 1).split(","))));
        }
      }
      Kernel kernel = new Kernel(cells[0], cells[1], cells[2], Integer.parseInt(cells[3]), Integer.parseInt(cells[4]),
          List.copyOf(inputs), constraints);
      kernels.computeIfAbsent(cells[0] + "\t" + cells[1] + "\t" + cells[2], key -> new ArrayList<>()).add(kernel);
    }
    Map<String, Integer> introduced = new HashMap<>();
    for (String line : lines("onnx-ops.tsv")) {
      if (!line.startsWith("#")) {
        String[] cells = line.split("\t");
        introduced.put(cells[0], Integer.parseInt(cells[1]));
      }
    }
    if (version == null) {
      throw new IllegalStateException("ort-kernels.tsv does not record its ONNX Runtime version");
    }
    return new KernelTable(version, kernels, introduced);
  }

  private static List<String> lines(String resource) {
    try (InputStream stream = KernelTable.class.getResourceAsStream(resource)) {
      if (stream == null) {
        throw new IllegalStateException("missing resource " + resource + " next to " + KernelTable.class.getName());
      }
      BufferedReader reader = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8));
      List<String> lines = new ArrayList<>();
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        if (!line.isBlank()) {
          lines.add(line);
        }
      }
      return lines;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
