package dev.kiln.validator.report;

/**
 * The first tensor, in the candidate's topological order, whose values differ from the reference's paired
 * tensor past tolerance: where a wrong rewrite shows first.
 */
public record Divergence(String size, String tensor, String node, String op, String referenceTensor, double maxAbs,
    double maxRelative, double cosine, int checkedTensors) {}
