package dev.kiln.validator.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import dev.kiln.testdata.Fixtures;
import dev.kiln.validator.Validator;
import dev.kiln.validator.shapes.SizeSpec;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/** The three report formats say the same thing: JUnit XML parsed by the JDK's parser, counted against the JSON. */
class ReportFormatsTest {
  static ValidationReport failingReport() {
    Path broken = Fixtures.testdata().resolve("broken/sdxl_unet_baked_reshape/model.onnx");
    return Validator.validate(broken, Validator.Options.defaults().staticOnly(true)
        .withShapes(SizeSpec.parse("height=32,48;width=32")));
  }

  @Test
  void junitCountsMatchTheJson() throws Exception {
    ValidationReport report = failingReport();
    JsonNode json = Json.mapper().readTree(Json.write(report));
    String xml = JunitReport.write(report);
    DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
    factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    Document document = factory.newDocumentBuilder().parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
    Element root = document.getDocumentElement();
    assertEquals("testsuites", root.getTagName());
    NodeList cases = document.getElementsByTagName("testcase");
    NodeList failures = document.getElementsByTagName("failure");
    assertEquals(json.get("checks").asInt(), cases.getLength());
    assertEquals(json.get("failures").asInt(), failures.getLength());
    assertEquals(json.get("checks").asInt(), Integer.parseInt(root.getAttribute("tests")));
    assertEquals(json.get("components").size(), document.getElementsByTagName("testsuite").getLength());
    // structure, ep-support, shapes at 32 and 48: one failure, the baked reshape at height 48.
    assertEquals(4, cases.getLength());
    assertEquals(1, failures.getLength());
    assertFalse(json.get("passed").asBoolean());
    String message = ((Element) failures.item(0)).getAttribute("message");
    assertTrue(message.startsWith("Add \"/down_blocks.1/attentions.0/Add\": operands cannot broadcast on axis 2"), message);
    assertTrue(message.endsWith("holds only for latent height 32"), message);
    Element failedCase = (Element) failures.item(0).getParentNode();
    assertEquals("shapes @ batch=1 height=48 width=32", failedCase.getAttribute("name"));
  }

  @Test
  void theJsonIsByteIdenticalAcrossRuns() {
    assertEquals(Json.write(failingReport()), Json.write(failingReport()));
  }

  @Test
  void htmlIsSelfContainedWithTheTablesAndHistograms() {
    ValidationReport report = failingReport();
    report.getComponents().get(0).errorSamples().put("out_sample", new double[] {0, 1e-7, 2e-7, 1e-3, Double.NaN});
    String html = HtmlReport.write(report);
    assertTrue(html.startsWith("<!DOCTYPE html>"));
    assertTrue(html.contains("<table class=\"checks\">"));
    assertEquals(4, html.split("<tr><td>", -1).length - 1);
    assertTrue(html.contains("<svg"));
    assertTrue(html.contains("out_sample: 5 sampled |error| values"));
    assertTrue(html.contains("&quot;/down_blocks.1/attentions.0/Add&quot;"));
    assertFalse(html.contains("<script"));
    assertFalse(html.contains("http://") && !html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
  }
}
