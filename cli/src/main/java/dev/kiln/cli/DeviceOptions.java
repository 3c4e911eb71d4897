package dev.kiln.cli;

import dev.kiln.runner.pipeline.Device;
import picocli.CommandLine.Option;

/** Where models run ({@code --device}, {@code --threads}), shared by the commands that run a pipeline (a picocli mixin). */
public final class DeviceOptions {
  @Option(names = "--device", defaultValue = "cpu", description = "cpu, cuda or tensorrt (GPU only when one is detected).")
  String device;

  @Option(names = "--threads", defaultValue = "0", description = "Intra-op threads; 0 = one per core.")
  int threads;

  public Device device() {
    return Device.parse(device);
  }

  public int threads() {
    return threads;
  }
}
