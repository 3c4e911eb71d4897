package dev.kiln.validator.report;

import java.util.Locale;
import java.util.Map;

/**
 * A self-contained HTML page (no scripts, no network): verdict, per-component summary table of every check,
 * per-output histograms of absolute error (inline SVG, log10 bins) and the first-divergence table.
 */
public final class HtmlReport {
  private static final int BINS = 16;
  private static final int LOWEST_EXPONENT = -12;

  private HtmlReport() {}

  public static String write(ValidationReport report) {
    StringBuilder html = new StringBuilder();
    html.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kiln validate</title>\n<style>")
        .append("body{font:14px/1.4 sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}")
        .append("td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}")
        .append(".pass{color:#176b1c;font-weight:bold}.fail{color:#b3160b;font-weight:bold}")
        .append("td.message{max-width:900px;word-break:break-word;font-family:monospace;font-size:12px}")
        .append("figure{display:inline-block;margin:0 16px 16px 0}figcaption{font-size:12px}</style></head><body>\n");
    html.append("<h1>kiln validate: <span class=\"").append(report.isPassed() ? "pass\">PASSED" : "fail\">FAILED")
        .append("</span></h1>\n<p>candidate <code>").append(escape(report.getCandidate())).append("</code>");
    if (report.getReference() != null) {
      html.append(", reference <code>").append(escape(report.getReference())).append("</code>");
    }
    html.append(", target ").append(escape(report.getTarget())).append(": ").append(report.getChecks())
        .append(" checks, ").append(report.getFailures()).append(" failed.</p>\n");
    for (ComponentReport component : report.getComponents()) {
      html.append("<h2>").append(escape(component.getName())).append(" <span class=\"")
          .append(component.isPassed() ? "pass\">passed" : "fail\">failed").append("</span></h2>\n<p><code>")
          .append(escape(component.getPath())).append("</code>")
          .append(component.getKind() == null ? "" : " (" + escape(component.getKind()) + ")").append("</p>\n");
      html.append("<table class=\"checks\"><tr><th>check</th><th>size</th><th>output</th><th>verdict</th><th>message</th></tr>\n");
      for (CheckResult check : component.getChecks()) {
        html.append("<tr><td>").append(escape(check.check())).append("</td><td>").append(escape(check.size()))
            .append("</td><td>").append(escape(check.output())).append("</td><td class=\"")
            .append(check.passed() ? "pass\">pass" : "fail\">FAIL").append("</td><td class=\"message\">")
            .append(escape(check.message())).append("</td></tr>\n");
      }
      html.append("</table>\n");
      if (!component.getDivergences().isEmpty()) {
        html.append("<h3>First divergence</h3>\n<table class=\"divergence\"><tr><th>at</th><th>tensor</th><th>node</th>")
            .append("<th>op</th><th>max abs</th><th>max rel</th><th>cosine</th><th>tensors compared</th></tr>\n");
        for (Divergence divergence : component.getDivergences()) {
          html.append("<tr><td>").append(escape(divergence.size())).append("</td><td>").append(escape(divergence.tensor()))
              .append("</td><td>").append(escape(divergence.node())).append("</td><td>").append(escape(divergence.op()))
              .append("</td><td>").append(number(divergence.maxAbs())).append("</td><td>")
              .append(number(divergence.maxRelative())).append("</td><td>").append(number(divergence.cosine()))
              .append("</td><td>").append(divergence.checkedTensors()).append("</td></tr>\n");
        }
        html.append("</table>\n");
      }
      if (!component.errorSamples().isEmpty()) {
        html.append("<h3>Absolute error per output (first size and seed)</h3>\n");
        for (Map.Entry<String, double[]> entry : component.errorSamples().entrySet()) {
          html.append(histogram(entry.getKey(), entry.getValue()));
        }
      }
    }
    return html.append("</body></html>\n").toString();
  }

  /** log10(|error|) in bins from 1e-12 to 1e4; exact zeros in the first bin. */
  static String histogram(String output, double[] errors) {
    int[] counts = new int[BINS];
    for (double error : errors) {
      int bin = error <= 0 || !Double.isFinite(error) ? (Double.isFinite(error) ? 0 : BINS - 1)
          : (int) Math.floor(Math.log10(error)) - LOWEST_EXPONENT;
      counts[Math.max(0, Math.min(BINS - 1, bin))]++;
    }
    int highest = 1;
    for (int count : counts) {
      highest = Math.max(highest, count);
    }
    int width = 28;
    int height = 120;
    StringBuilder svg = new StringBuilder();
    svg.append("<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(BINS * width + 40)
        .append("\" height=\"").append(height + 40).append("\" role=\"img\">");
    for (int bin = 0; bin < BINS; bin++) {
      int bar = (int) Math.round((double) counts[bin] / highest * height);
      svg.append("<rect x=\"").append(30 + bin * width).append("\" y=\"").append(10 + height - bar)
          .append("\" width=\"").append(width - 4).append("\" height=\"").append(bar)
          .append("\" fill=\"#4a78b5\"><title>").append(counts[bin]).append(" values near 1e")
          .append(bin + LOWEST_EXPONENT).append("</title></rect>");
      if (bin % 2 == 0) {
        svg.append("<text x=\"").append(30 + bin * width).append("\" y=\"").append(height + 28)
            .append("\" font-size=\"10\">1e").append(bin + LOWEST_EXPONENT).append("</text>");
      }
    }
    svg.append("<line x1=\"28\" y1=\"").append(height + 10).append("\" x2=\"").append(30 + BINS * width)
        .append("\" y2=\"").append(height + 10).append("\" stroke=\"#333\"/></svg><figcaption>")
        .append(escape(output)).append(": ").append(errors.length).append(" sampled |error| values</figcaption></figure>\n");
    return svg.toString();
  }

  private static String number(double value) {
    return String.format(Locale.ROOT, "%.4g", value);
  }

  static String escape(String text) {
    if (text == null) {
      return "";
    }
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
