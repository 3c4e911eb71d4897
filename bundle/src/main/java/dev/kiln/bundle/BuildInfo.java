package dev.kiln.bundle;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** Kiln's version, git commit and ONNX Runtime version, recorded by the build (build-info.properties). */
public record BuildInfo(String version, String commit, String onnxRuntime) {
  public static BuildInfo current() {
    Properties properties = new Properties();
    try (InputStream in = BuildInfo.class.getResourceAsStream("build-info.properties")) {
      if (in != null) {
        properties.load(in);
      }
    } catch (IOException e) {
      // A jar without the resource is a development build: everything reads "unknown".
    }
    return new BuildInfo(properties.getProperty("version", "unknown"), properties.getProperty("commit", "unknown").strip(),
        properties.getProperty("onnxruntime", "unknown"));
  }
}
