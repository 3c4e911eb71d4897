package dev.kiln.validator.report;

import java.util.Locale;

/**
 * JUnit XML as Jenkins, GitHub and GitLab read it: one testsuite per component, one testcase per check × size ×
 * output, a failure element with the message where a check failed.
 */
public final class JunitReport {
  private JunitReport() {}

  public static String write(ValidationReport report) {
    StringBuilder xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.append("<testsuites name=\"kiln validate\" tests=\"").append(report.getChecks()).append("\" failures=\"")
        .append(report.getFailures()).append("\">\n");
    for (ComponentReport component : report.getComponents()) {
      long failures = component.getChecks().stream().filter(check -> !check.passed()).count();
      long skipped = component.getChecks().stream().filter(check -> Boolean.TRUE.equals(check.skipped())).count();
      xml.append("  <testsuite name=\"").append(escape(component.getName())).append("\" tests=\"")
          .append(component.getChecks().size()).append("\" failures=\"").append(failures)
          .append("\" errors=\"0\" skipped=\"").append(skipped).append("\">\n");
      xml.append("    <properties><property name=\"path\" value=\"").append(escape(component.getPath()))
          .append("\"/></properties>\n");
      for (CheckResult check : component.getChecks()) {
        xml.append("    <testcase classname=\"").append(escape("kiln.validate." + component.getName() + "." + check.check()))
            .append("\" name=\"").append(escape(check.caseName())).append("\"");
        if (Boolean.TRUE.equals(check.skipped())) {
          xml.append(">\n      <skipped message=\"").append(escape(check.message())).append("\"/>\n    </testcase>\n");
        } else if (check.passed()) {
          xml.append("/>\n");
        } else {
          xml.append(">\n      <failure message=\"").append(escape(check.message())).append("\" type=\"")
              .append(escape(check.check().toUpperCase(Locale.ROOT))).append("\">").append(escape(check.message()))
              .append("</failure>\n    </testcase>\n");
        }
      }
      xml.append("  </testsuite>\n");
    }
    return xml.append("</testsuites>\n").toString();
  }

  /** XML text and attribute escaping; characters XML 1.0 cannot carry at all become U+FFFD. */
  static String escape(String text) {
    if (text == null) {
      return "";
    }
    StringBuilder out = new StringBuilder(text.length());
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '&' -> out.append("&amp;");
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '"' -> out.append("&quot;");
        case '\'' -> out.append("&apos;");
        default -> {
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            out.append('\uFFFD');
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.toString();
  }
}
