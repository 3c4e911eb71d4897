package dev.kiln.graph;

/** One place a value is consumed: input {@code inputIndex} of {@code node}. */
public record Use(Node node, int inputIndex) {}
