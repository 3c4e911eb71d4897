package dev.kiln.testdata;

/** The ONNX opsets every fixture component is exported at (torch 1.13 can export up to 17). */
public enum Opset {
  V14(14),
  V17(17);

  private final int version;

  Opset(int version) {
    this.version = version;
  }

  public int version() {
    return version;
  }

  /** The component sub-folder holding this opset's export, e.g. {@code opset17}. */
  public String folderName() {
    return "opset" + version;
  }

  public static Opset of(int version) {
    for (Opset opset : values()) {
      if (opset.version == version) {
        return opset;
      }
    }
    throw new IllegalArgumentException("no fixtures at opset " + version + "; exported opsets are 14 and 17");
  }
}
