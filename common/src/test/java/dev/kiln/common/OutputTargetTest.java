package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The rules of {@link OutputTarget}: what an output may replace, and that it never touches an input. */
class OutputTargetTest {
  @TempDir Path folder;

  private String refusal(OutputTarget target) {
    return assertThrows(KilnException.BadInput.class, target::check).getMessage();
  }

  @Test
  void outputMayNotBeInsideOrContainTheInputEvenThroughLinks() throws Exception {
    Path input = Files.createDirectories(folder.resolve("pipeline/unet"));
    Files.writeString(input.resolve("model.onnx"), "weights");
    Path pipeline = folder.resolve("pipeline");
    assertEquals("-o " + pipeline + ": the output is the input " + pipeline + "; Kiln never writes over what it reads, choose another output",
        refusal(OutputTarget.folder(pipeline, "optimize").inputs(pipeline).overwrite(true)));
    assertTrue(refusal(OutputTarget.folder(folder, "optimize").inputs(pipeline).overwrite(true)).contains("contains the input " + pipeline));
    assertTrue(refusal(OutputTarget.folder(pipeline.resolve("unet/out"), "optimize").inputs(pipeline))
        .contains("lies inside the input"));
    Path link = Files.createSymbolicLink(folder.resolve("alias"), pipeline);
    assertTrue(refusal(OutputTarget.folder(link.resolve("new"), "optimize").inputs(pipeline)).contains("lies inside the input"),
        "a link does not hide that the output is inside the input");
    assertTrue(refusal(OutputTarget.file(pipeline.resolve("unet/model.onnx"), "optimize").inputs(pipeline.resolve("unet/model.onnx"))
        .overwrite(true)).contains("is the input"));
    assertEquals("weights", Files.readString(input.resolve("model.onnx")), "a refusal writes nothing");
  }

  @Test
  void theWorkingFolderAndItsParentsAreNeverAnOutput() {
    Path working = Path.of("").toAbsolutePath();
    for (Path output : List.of(Path.of("."), working, working.getParent())) {
      String message = refusal(OutputTarget.folder(output, "optimize").overwrite(true));
      assertTrue(message.contains("is the working folder or contains it"), message);
    }
  }

  @Test
  void somethingForeignIsReplacedOnlyWithOverwrite() throws Exception {
    Path user = Files.createDirectories(folder.resolve("photos"));
    Files.writeString(user.resolve("holiday.jpg"), "precious");
    String message = refusal(OutputTarget.folder(user, "optimize"));
    assertEquals("-o " + user + ": a folder that is not a Kiln output is already there; pass --overwrite to replace it", message);
    Path note = Files.writeString(folder.resolve("note.png"), "mine");
    assertEquals("-o " + note + ": a file Kiln did not write is already there; pass --overwrite to replace it",
        refusal(OutputTarget.file(note, "generate")));
    assertEquals("mine", Files.readString(note));

    OutputTarget.file(note, "generate").overwrite(true).writeString("kiln's");
    assertEquals("kiln's", Files.readString(note));
    // An empty folder holds nothing to lose.
    Path empty = Files.createDirectories(folder.resolve("empty"));
    try (StagedFolder staged = OutputTarget.folder(empty, "optimize").stageFolder()) {
      Files.writeString(staged.path().resolve("a.txt"), "a");
      staged.commit();
    }
    assertEquals("a", Files.readString(empty.resolve("a.txt")));
    assertTrue(Files.isSymbolicLink(empty));
    assertTrue(refusal(OutputTarget.file(empty, "generate").overwrite(true)).contains("is a folder; expected a file name"));
  }

  @Test
  void aPreviousKilnOutputIsReplacedWholeAndItsOldVersionRemoved() throws Exception {
    Path output = folder.resolve("out");
    for (String version : List.of("one", "two")) {
      try (StagedFolder staged = OutputTarget.folder(output, "optimize").stageFolder()) {
        Files.writeString(Files.createDirectories(staged.path().resolve(version)).resolve("file.txt"), version);
        staged.commit();
      }
    }
    assertTrue(OutputTarget.isKilnFolder(output));
    assertFalse(Files.exists(output.resolve("one")), "the old version is gone, not merged");
    assertEquals("two", Files.readString(output.resolve("two/file.txt")));
    try (Stream<Path> entries = Files.list(folder)) {
      assertEquals(2, entries.count(), "the link and the one version it points at");
    }
    assertEquals("{\n  \"command\" : \"optimize\",\n  \"producer\" : \"kiln\"\n}\n", Files.readString(output.resolve(OutputTarget.MARKER)));

    // Someone deleted the hidden version folder: the dangling link is still recognisably Kiln's.
    Staging.deleteTree(output.toRealPath());
    OutputTarget.folder(output, "optimize").check();
    Files.delete(output);
    Files.createSymbolicLink(output, folder.resolve("elsewhere"));
    assertTrue(refusal(OutputTarget.folder(output, "optimize")).contains("a link that is not a Kiln output is already there"),
        "a link of someone else's is not replaced without --overwrite");
  }

  @Test
  void anUncommittedStagingIsRemovedAndTheOutputUntouched() throws Exception {
    Path output = folder.resolve("report.json");
    OutputTarget target = OutputTarget.file(output, "optimize").recognizedBy(OutputTarget::isKilnJson);
    target.writeString("{\"producer\": \"kiln optimize\"}");
    try (StagedFile staged = target.stageFile()) {
      Files.writeString(staged.path(), "half");
    }
    assertEquals("{\"producer\": \"kiln optimize\"}", Files.readString(output));
    try (Stream<Path> entries = Files.list(folder)) {
      assertEquals(List.of(output), entries.toList());
    }
    target.writeString("{\"producer\": \"kiln optimize\", \"run\": 2}");
    assertTrue(Files.readString(output).contains("\"run\": 2"), "a Kiln JSON report is replaced without --overwrite");
  }
}
