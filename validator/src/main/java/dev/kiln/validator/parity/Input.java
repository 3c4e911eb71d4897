package dev.kiln.validator.parity;

/** A dense input tensor: shape and values (float[], long[] or int[]). */
public record Input(long[] shape, Object values) {}
