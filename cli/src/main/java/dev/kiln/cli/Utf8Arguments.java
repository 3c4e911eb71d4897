package dev.kiln.cli;

import dev.kiln.common.KilnException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Command-line arguments as UTF-8 whatever the locale. Under a C/POSIX locale the JVM decodes argv as ASCII and
 * turns every byte of "café" or "猫" beyond ASCII into U+FFFD before main runs, silently changing a prompt. On
 * Linux the original bytes are in /proc/self/cmdline (the program's arguments are its last entries), so they are
 * decoded again as UTF-8; bytes that are not UTF-8 (under a UTF-8 locale too, where the JVM would also have turned
 * them into U+FFFD), or a mangled argument that cannot be recovered, are refused.
 */
final class Utf8Arguments {
  private Utf8Arguments() {}

  static String[] recover(String[] arguments) {
    Charset platform = platformCharset();
    // Under a UTF-8 locale only a U+FFFD can hide bytes that were not UTF-8; under any other, every non-ASCII char.
    boolean utf8 = platform.equals(StandardCharsets.UTF_8);
    boolean suspicious = false;
    for (String argument : arguments) {
      suspicious |= argument.chars().anyMatch(c -> utf8 ? c == 0xfffd : c >= 0x80);
    }
    if (!suspicious) {
      return arguments;
    }
    List<byte[]> raw = commandLine();
    if (raw == null || raw.size() < arguments.length) {
      throw new KilnException.BadInput("the arguments hold characters the " + platform.name() + " locale cannot represent and the"
          + " original bytes are not readable here; run with a UTF-8 locale (e.g. LC_ALL=C.UTF-8)");
    }
    String[] recovered = new String[arguments.length];
    int offset = raw.size() - arguments.length;
    for (int index = 0; index < arguments.length; index++) {
      byte[] bytes = raw.get(offset + index);
      // The entry must be the argument the JVM decoded, or the alignment is wrong and nothing is recovered.
      if (!new String(bytes, platform).equals(arguments[index])) {
        throw new KilnException.BadInput("argument " + (index + 1) + " could not be recovered as UTF-8 under the " + platform.name()
            + " locale; run with a UTF-8 locale (e.g. LC_ALL=C.UTF-8)");
      }
      try {
        recovered[index] = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
      } catch (CharacterCodingException e) {
        throw new KilnException.BadInput("argument " + (index + 1) + " is not valid UTF-8 (Kiln reads arguments as UTF-8 whatever the locale)");
      }
    }
    return recovered;
  }

  /** The charset the launcher decoded argv with: sun.jnu.encoding, or the default charset. */
  private static Charset platformCharset() {
    String name = System.getProperty("sun.jnu.encoding");
    try {
      return name == null ? Charset.defaultCharset() : Charset.forName(name);
    } catch (RuntimeException e) {
      return Charset.defaultCharset();
    }
  }

  private static List<byte[]> commandLine() {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(Path.of("/proc/self/cmdline"));
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      return null;
    }
    List<byte[]> entries = new ArrayList<>();
    int start = 0;
    for (int index = 0; index < bytes.length; index++) {
      if (bytes[index] == 0) {
        entries.add(java.util.Arrays.copyOfRange(bytes, start, index));
        start = index + 1;
      }
    }
    if (start < bytes.length) {
      entries.add(java.util.Arrays.copyOfRange(bytes, start, bytes.length));
    }
    return entries;
  }
}
