package dev.kiln.exporter;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Hand-written protocol-2 pickles, opcode by opcode, as torch's pickler writes them (and as an attacker might). */
final class Pickles {
  private Pickles() {}

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  static Pickles start() {
    Pickles pickle = new Pickles();
    pickle.out.write(0x80);
    pickle.out.write(2);
    return pickle;
  }

  Pickles global(String module, String name) {
    out.write('c');
    out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
    return this;
  }

  Pickles string(String value) {
    byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
    out.write('X');
    out.write(bytes.length & 0xFF);
    out.write((bytes.length >> 8) & 0xFF);
    out.write(0);
    out.write(0);
    out.writeBytes(bytes);
    return this;
  }

  Pickles integer(long value) {
    out.write('J');
    for (int shift = 0; shift < 32; shift += 8) {
      out.write((int) (value >> shift) & 0xFF);
    }
    return this;
  }

  Pickles op(char opcode) {
    out.write(opcode);
    return this;
  }

  Pickles raw(int opcode) {
    out.write(opcode);
    return this;
  }

  byte[] stop() {
    out.write('.');
    return out.toByteArray();
  }

  /** What torch writes for a module with one parameter: NEWOBJ of the class, BUILD with {name: tensor}. */
  static byte[] moduleWithParameter(String name, long numel) {
    return start().global("__torch__", "M").op(')').raw(0x81) // NEWOBJ
        .op('}').op('(').string(name)
        .global("torch._utils", "_rebuild_tensor_v2").op('(')
        .op('(').string("storage").global("torch", "FloatStorage").string("0").string("cpu").integer(numel).op('t').op('Q')
        .integer(0).op('(').integer(numel).op('t').op('(').integer(1).op('t').raw(0x89)
        .global("collections", "OrderedDict").op(')').op('R').op('t').op('R')
        .string("training").raw(0x89)
        .op('u').op('b').stop();
  }
}
