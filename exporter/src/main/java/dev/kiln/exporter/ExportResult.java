package dev.kiln.exporter;

import dev.kiln.graph.Model;
import java.util.List;
import java.util.Map;

/** An exported component: the model, what the trace lowered, and the warnings (baked constants). */
public record ExportResult(Model model, String kind, Map<String, Integer> opCounts, List<String> warnings) {}
