package dev.kiln.common;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Run in a child JVM by {@link KilledOutputTest}: writes version TAG of an output and commits it, so the
 * test can kill it at a {@link KillPoints} moment.
 *
 * <p>{@code folder OUT TAG}: a folder of 12 files over 3 sub-folders, each naming TAG. {@code file OUT TAG}: a
 * main file that names its companion {@code OUT.TAG.data}, as an ONNX graph names its data file.
 */
public final class StagingChild {
  private StagingChild() {}

  public static void main(String[] args) throws IOException {
    Path output = Path.of(args[1]);
    String tag = args[2];
    if (args[0].equals("folder")) {
      try (StagedFolder staged = OutputTarget.folder(output, "test").stageFolder()) {
        for (int index = 0; index < 12; index++) {
          Path file = staged.path().resolve("part" + index % 3).resolve("file" + index + ".txt");
          Files.createDirectories(file.getParent());
          Files.writeString(file, tag + " " + index + "\n".repeat(index * 100));
          if (index == 6) {
            KillPoints.reach("child-half-written");
          }
        }
        staged.commit();
      }
    } else {
      String name = output.getFileName().toString();
      try (StagedFile staged = OutputTarget.file(output, "test").recognizedBy(KilledOutputTest::isTestOutput).stageFile()) {
        Path data = staged.newCompanion();
        Files.writeString(data, ("weights of " + tag + "\n").repeat(1000));
        staged.commitCompanionAs(data, name + "." + tag + ".data");
        Files.writeString(staged.path(), KilledOutputTest.HEADER + name + "." + tag + ".data\n", StandardCharsets.UTF_8);
        staged.replacesCompanions(entry -> entry.startsWith(name + ".") && entry.endsWith(".data"));
        staged.commit();
      }
    }
  }
}
