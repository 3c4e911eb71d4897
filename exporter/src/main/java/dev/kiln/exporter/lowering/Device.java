package dev.kiln.exporter.lowering;

/** {@code torch.device("cpu")}: recorded, not used — the exported graph has no device. */
public record Device(String name) {}
