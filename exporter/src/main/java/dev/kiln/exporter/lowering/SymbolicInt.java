package dev.kiln.exporter.lowering;

import dev.kiln.graph.Value;

/**
 * A Python int the trace computed from a tensor size ({@code int(x.size(2))} kept dynamic by
 * {@code ops.prim.NumToTensor}): a 0-d INT64 value in the graph. {@code origin} says which input dim it is when
 * it is one directly, for the baked-constant report.
 */
public record SymbolicInt(Value value, String origin) {}
