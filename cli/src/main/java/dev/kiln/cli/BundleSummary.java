package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Printable;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;

/** The text {@code kiln inspect BUNDLE} prints before the components: what the manifest says, escaped. */
final class BundleSummary {
  private BundleSummary() {}

  static String text(JsonNode manifest) {
    StringBuilder text = new StringBuilder();
    JsonNode target = manifest.path("target");
    JsonNode provenance = manifest.path("provenance");
    text.append("bundle ").append(Printable.name(manifest.path("pipeline").path("name").asText())).append(" (kiln-bundle format ")
        .append(manifest.path("formatVersion").asInt()).append(")\n");
    text.append("  target: ").append(Printable.name(target.path("executionProvider").asText())).append(", precision ")
        .append(Printable.name(target.path("precision").asText())).append(", runtime ")
        .append(Printable.name(manifest.path("runtime").path("onnxruntime").asText())).append('\n');
    StringBuilder opsets = new StringBuilder();
    for (Iterator<Map.Entry<String, JsonNode>> components = target.path("opsets").fields(); components.hasNext();) {
      Map.Entry<String, JsonNode> component = components.next();
      opsets.append(opsets.length() == 0 ? "" : "; ").append(Printable.name(component.getKey()));
      component.getValue().fields().forEachRemaining(domain -> opsets.append(' ').append(Printable.name(domain.getKey())).append(':')
          .append(domain.getValue().asLong()));
    }
    text.append("  opsets: ").append(opsets).append('\n');
    text.append("  built by: kiln ").append(Printable.name(provenance.path("kiln").path("version").asText())).append(", commit ")
        .append(Printable.name(provenance.path("kiln").path("commit").asText())).append('\n');
    text.append("  source: ").append(Printable.name(provenance.path("source").path("name").asText())).append(", ")
        .append(provenance.path("source").path("files").size()).append(" files (sha256 of each in the manifest)\n");
    JsonNode stages = provenance.path("stages");
    if (stages.isEmpty()) {
      text.append("  stages: none recorded (packaged as given)\n");
    }
    for (JsonNode stage : stages) {
      text.append(String.format(Locale.ROOT, "  %-10s %-12s %s%n", Printable.name(stage.path("name").asText()) + ":",
          Printable.name(stage.path("status").asText()), Printable.line(stage.path("detail").asText())));
    }
    long bytes = 0;
    for (JsonNode file : manifest.path("files")) {
      bytes += file.path("size").asLong();
    }
    text.append(String.format(Locale.ROOT, "  files: %d, %.1f MB, each with sha256 and size (bin/generate verifies them)%n",
        manifest.path("files").size(), bytes / 1e6));
    return text.toString();
  }
}
