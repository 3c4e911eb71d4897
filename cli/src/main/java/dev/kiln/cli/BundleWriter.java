package dev.kiln.cli;

import dev.kiln.bundle.BuildInfo;
import dev.kiln.bundle.BundleMain;
import dev.kiln.bundle.BundleManifest;
import dev.kiln.common.AtomicFiles;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.StagedFolder;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.runner.pipeline.PipelineFolder;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes a bundle: the pipeline's components in the diffusers/Optimum layout, {@code lib/} (the runner, its runtime
 * dependencies and ONNX Runtime's CPU or GPU artifact, nothing of the CLI, optimizer or graph modules),
 * {@code bin/generate} and {@code kiln-bundle.json}. Everything but {@value BundleManifest#CREATED} depends only on
 * the inputs, so the same inputs give byte-identical bundles.
 */
final class BundleWriter {
  /** What a pipeline folder contributes: the diffusers components a runner reads, and nothing else (no references, sheets). */
  static final List<String> COMPONENTS = List.of("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "controlnet",
      "vae_decoder", "vae_encoder", "scheduler");
  static final String CPU_RUNTIME = "com/microsoft/onnxruntime/onnxruntime/";
  /** Fixed time for the jars Kiln builds from class folders (the pom's project.build.outputTimestamp). */
  static final FileTime JAR_TIME = FileTime.from(Instant.parse("2026-01-01T00:00:00Z"));

  private BundleWriter() {}

  /** Where the bundle came from and what was done on the way (stage records, in order). */
  record Provenance(Path source, List<Map<String, Object>> stages) {}

  /** A written bundle: its manifest and total size. */
  record Written(Path path, Map<String, Object> manifest, long bytes, long libraryBytes, long modelBytes) {}

  static Written write(Path pipeline, OutputTarget output, Target target, Provenance provenance) {
    Path source = realPath(pipeline);
    TorchScriptInput.refuse(source);
    PipelineFolder folder = PipelineFolder.open(source);
    String name = provenance.source() == null ? folder.name() : realPath(provenance.source()).getFileName().toString();
    List<Path> library = runtimeLibrary(target);
    output.check();
    try (StagedFolder staged = output.stageFolder()) {
      Path root = staged.path();
      copy(source.resolve("model_index.json"), root.resolve("model_index.json"));
      for (String component : COMPONENTS) {
        Path from = source.resolve(component);
        if (Files.isDirectory(from)) {
          copyTree(from, root.resolve(component));
        }
      }
      Files.createDirectories(root.resolve("lib"));
      for (Path entry : library) {
        if (Files.isDirectory(entry)) {
          jarFolder(entry, root.resolve("lib").resolve(jarName(entry)));
        } else {
          copy(entry, root.resolve("lib").resolve(entry.getFileName().toString()));
        }
      }
      Files.createDirectories(root.resolve("bin"));
      Path script = root.resolve("bin").resolve("generate");
      Files.writeString(script, launcher(), StandardCharsets.UTF_8);
      Files.setPosixFilePermissions(script, EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
          PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_EXECUTE,
          PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_EXECUTE));
      Map<String, Object> manifest = manifest(root, name, folder, target, provenance);
      AtomicFiles.writeString(root.resolve(BundleManifest.FILE), Json.write(manifest) + "\n");
      AtomicFiles.writeString(root.resolve(BundleManifest.CREATED), Instant.now().toString() + "\n");
      long bytes = 0;
      long libraryBytes = 0;
      long modelBytes = 0;
      for (Map.Entry<String, Path> file : BundleManifest.files(root).entrySet()) {
        long size = Files.size(file.getValue());
        bytes += size;
        if (file.getKey().startsWith("lib/")) {
          libraryBytes += size;
        } else if (!file.getKey().startsWith("bin/")) {
          modelBytes += size;
        }
      }
      staged.commit();
      return new Written(output.path(), manifest, bytes, libraryBytes, modelBytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Map<String, Object> manifest(Path root, String name, PipelineFolder folder, Target target, Provenance provenance) throws IOException {
    Map<String, Object> manifest = new LinkedHashMap<>();
    manifest.put("format", BundleManifest.FORMAT);
    manifest.put("formatVersion", BundleManifest.FORMAT_VERSION);
    Map<String, Object> pipeline = new LinkedHashMap<>();
    pipeline.put("name", name);
    pipeline.put("xl", folder.xl());
    manifest.put("pipeline", pipeline);
    Map<String, Object> opsets = new TreeMap<>();
    Map<String, Object> precisions = new TreeMap<>();
    Set<String> overall = new java.util.TreeSet<>();
    for (String component : COMPONENTS) {
      Path model = root.resolve(component).resolve("model.onnx");
      if (Files.isRegularFile(model)) {
        Model read = ModelReader.read(model);
        Map<String, Long> imports = new TreeMap<>();
        read.opsetImports().forEach((domain, version) -> imports.put(domain.isEmpty() ? "ai.onnx" : domain, version));
        opsets.put(component, imports);
        String precision = precision(read);
        precisions.put(component, precision);
        overall.add(precision);
      }
    }
    Map<String, Object> targetJson = new LinkedHashMap<>();
    targetJson.put("executionProvider", target.id());
    targetJson.put("precision", overall.size() == 1 ? overall.iterator().next() : "mixed");
    targetJson.put("componentPrecision", precisions);
    targetJson.put("opsets", opsets);
    manifest.put("target", targetJson);
    BuildInfo build = BuildInfo.current();
    Map<String, Object> runtime = new LinkedHashMap<>();
    runtime.put("java", "17+");
    runtime.put("onnxruntime", (target == Target.CPU ? "com.microsoft.onnxruntime:onnxruntime:" : "com.microsoft.onnxruntime:onnxruntime_gpu:")
        + build.onnxRuntime());
    runtime.put("mainClass", BundleMain.class.getName());
    manifest.put("runtime", runtime);
    Map<String, Object> origin = new LinkedHashMap<>();
    Map<String, Object> kiln = new LinkedHashMap<>();
    kiln.put("version", build.version());
    kiln.put("commit", build.commit());
    origin.put("kiln", kiln);
    Path sourceRoot = realPath(provenance.source() != null ? provenance.source() : folder.root());
    Map<String, Object> sourceJson = new LinkedHashMap<>();
    sourceJson.put("name", sourceRoot.getFileName().toString());
    sourceJson.put("files", listing(sourceRoot, Set.of(OutputTarget.MARKER)));
    origin.put("source", sourceJson);
    origin.put("stages", provenance.stages());
    manifest.put("provenance", origin);
    manifest.put("files", listing(root, BundleManifest.UNLISTED));
    return manifest;
  }

  /** fp32, fp16 or mixed, from the floating-point initializers (the weights decide what a model computes in). */
  static String precision(Model model) {
    boolean single = false;
    boolean half = false;
    for (Value initializer : model.graph().initializers()) {
      single |= initializer.dataType() == DataType.FLOAT;
      half |= initializer.dataType() == DataType.FLOAT16;
    }
    return half && single ? "mixed" : half ? "fp16" : "fp32";
  }

  /** path -> {sha256, size} of every regular file under root but the excluded names, sorted by path. */
  static Map<String, Object> listing(Path root, Set<String> excluded) {
    Map<String, Object> files = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path file : walk.filter(Files::isRegularFile).sorted().toList()) {
        String relative = relative(root, file);
        if (!excluded.contains(relative)) {
          Map<String, Object> entry = new LinkedHashMap<>();
          entry.put("sha256", BundleManifest.sha256(file));
          entry.put("size", Files.size(file));
          files.put(relative, entry);
        }
      }
    } catch (IOException e) {
      throw new KilnException.BadInput(root + ": cannot list: " + e.getMessage());
    }
    return files;
  }

  static String relative(Path root, Path file) {
    List<String> parts = new ArrayList<>();
    root.relativize(file).forEach(part -> parts.add(part.toString()));
    return String.join("/", parts);
  }

  /**
   * The bundle module's runtime classpath as Maven resolved it at build time (bundle/target/runtime-classpath.txt)
   * plus the bundle module itself; for cuda/tensorrt the CPU ORT artifact is swapped for the GPU one this JVM runs.
   */
  static List<Path> runtimeLibrary(Target target) {
    Path launcher = codeLocation(BundleMain.class);
    Path classpathFile = launcher.getParent().resolve("runtime-classpath.txt");
    if (!Files.isRegularFile(classpathFile)) {
      throw new KilnException.BadInput("cannot find the runner's classpath " + classpathFile + " (rebuild Kiln with Maven: ./kiln rebuilds it)");
    }
    List<Path> library = new ArrayList<>();
    library.add(launcher);
    String text;
    try {
      text = Files.readString(classpathFile).strip();
    } catch (IOException e) {
      throw new KilnException.BadInput(classpathFile + ": cannot read: " + e.getMessage());
    }
    boolean runtimeFound = false;
    for (String entry : text.split(java.io.File.pathSeparator)) {
      Path path = Path.of(entry);
      if (entry.replace('\\', '/').contains(CPU_RUNTIME)) {
        runtimeFound = true;
        path = target == Target.CPU ? path : codeLocation(ai.onnxruntime.OrtEnvironment.class);
      }
      if (!Files.exists(path)) {
        throw new KilnException.BadInput("runtime library " + path + " is missing (rebuild Kiln with Maven: ./kiln rebuilds it)");
      }
      library.add(path);
    }
    if (!runtimeFound) {
      throw new KilnException.BadInput(classpathFile + " lists no ONNX Runtime artifact (" + CPU_RUNTIME + ")");
    }
    return library;
  }

  static Path codeLocation(Class<?> type) {
    try {
      return Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (URISyntaxException | NullPointerException e) {
      throw new IllegalStateException("no code location for " + type.getName(), e);
    }
  }

  /** runner/target/classes -> kiln-runner.jar (a reactor build before `package` resolves modules to class folders). */
  static String jarName(Path classes) {
    Path module = classes.getParent() == null ? null : classes.getParent().getParent();
    return "kiln-" + (module == null ? "classes" : module.getFileName().toString()) + ".jar";
  }

  /** A jar of a class folder with sorted entries and a fixed time, so the same classes give the same bytes. */
  static void jarFolder(Path folder, Path jar) throws IOException {
    try (OutputStream file = Files.newOutputStream(jar); ZipOutputStream zip = new ZipOutputStream(file)) {
      List<Path> entries;
      try (Stream<Path> walk = Files.walk(folder)) {
        entries = walk.filter(path -> !path.equals(folder)).sorted((a, b) -> relative(folder, a).compareTo(relative(folder, b))).toList();
      }
      for (Path path : entries) {
        boolean directory = Files.isDirectory(path);
        ZipEntry entry = new ZipEntry(relative(folder, path) + (directory ? "/" : ""));
        entry.setLastModifiedTime(JAR_TIME);
        entry.setCreationTime(JAR_TIME);
        entry.setLastAccessTime(JAR_TIME);
        entry.setTime(JAR_TIME.toMillis());
        zip.putNextEntry(entry);
        if (!directory) {
          Files.copy(path, zip);
        }
        zip.closeEntry();
      }
    }
  }

  static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> walk = Files.walk(from)) {
      for (Path path : walk.sorted().toList()) {
        Path target = to.resolve(from.relativize(path).toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(target);
        } else if (Files.isRegularFile(path)) {
          copy(path, target);
        }
      }
    }
  }

  static void copy(Path from, Path to) throws IOException {
    Files.createDirectories(to.getParent());
    Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
  }

  static Path realPath(Path path) {
    try {
      return path.toRealPath();
    } catch (IOException e) {
      throw new KilnException.BadInput(path + ": does not exist or cannot be read (" + e.getMessage() + ")");
    }
  }

  /** bin/generate: POSIX sh with built-ins only, finds java (JAVA_HOME or PATH), runs the launcher on lib/*, passes the bundle's own folder. */
  static String launcher() {
    return """
        #!/bin/sh
        # Kiln bundle: generate images with this folder's pipeline. Needs a Java 17+ runtime and nothing else.
        # Every file is checked against kiln-bundle.json first (--skip-verify skips it); see 'bin/generate --help'.
        # Shell built-ins only (no dirname, no coreutils): the machine may have nothing but sh and java.
        case "$0" in
          */*) here=${0%/*} ;;
          *) here=. ;;
        esac
        bundle=$(CDPATH= cd -- "$here/.." && pwd -P) || exit 2
        if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
          java="$JAVA_HOME/bin/java"
        elif command -v java >/dev/null 2>&1; then
          java=java
        else
          echo "generate: no Java runtime found (put java 17+ on PATH or set JAVA_HOME)" >&2
          exit 2
        fi
        exec "$java" ${KILN_JAVA_OPTS:--Xmx4g} -cp "$bundle/lib/*" MAIN_CLASS --bundle "$bundle" "$@"
        """.replace("MAIN_CLASS", BundleMain.class.getName());
  }
}
