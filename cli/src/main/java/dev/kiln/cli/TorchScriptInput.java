package dev.kiln.cli;

import dev.kiln.common.KilnException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * TorchScript given where ONNX is read (inspect, optimize, generate): one line pointing at {@code kiln export}
 * instead of a protobuf error, or worse, an empty "success" for a pipeline folder whose components are all
 * {@code model.pt}. Only a file's first bytes are looked at here (zip or pickle magic), never the pickle.
 */
final class TorchScriptInput {
  /** The component folders of the diffusers layout, as in the ONNX one. */
  private static final List<String> COMPONENTS = List.of("text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder");

  private TorchScriptInput() {}

  /** Throws {@link KilnException.BadInput} (exit 2) when {@code input} is a TorchScript file or pipeline folder. */
  static void refuse(Path input) {
    if (Files.isRegularFile(input) && isTorchArchive(input)) {
      throw new KilnException.BadInput(input + ": a TorchScript/PyTorch file, not an ONNX model; convert it with "
          + "'kiln export' first");
    }
    if (Files.isDirectory(input)) {
      for (String component : COMPONENTS) {
        Path folder = input.resolve(component);
        Path torchScript = folder.resolve("model.pt");
        if (Files.isRegularFile(torchScript) && !Files.isRegularFile(folder.resolve("model.onnx"))) {
          throw new KilnException.BadInput(input + ": a TorchScript pipeline (" + component + "/model.pt, no model.onnx); "
              + "convert it with 'kiln export' first");
        }
      }
    }
  }

  /** A zip (TorchScript, torch.save since 1.6) or a bare pickle (older torch.save: PROTO opcode, version 2 to 5). */
  private static boolean isTorchArchive(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      byte[] magic = in.readNBytes(4);
      boolean zip = magic.length == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
      boolean pickle = magic.length >= 2 && (magic[0] & 0xff) == 0x80 && magic[1] >= 2 && magic[1] <= 5;
      return zip || pickle;
    } catch (IOException e) {
      return false; // The reader that follows reports an unreadable file in its own words.
    }
  }
}
