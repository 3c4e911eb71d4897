package dev.kiln.runner.noise;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** Bit-exact parity with torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)), torch 1.13. */
class TorchGeneratorTest {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private static void assertBits(JsonNode expected, float[] actual, int offset, String label) {
    for (int index = 0; index < expected.size(); index++) {
      int want = (int) expected.get(index).asLong();
      int got = Float.floatToRawIntBits(actual[offset + index]);
      assertEquals(want, got, () -> label + " element " + " differs: " + Float.intBitsToFloat(want) + " vs " + Float.intBitsToFloat(got));
    }
  }

  private static String sha256(float[] values) throws NoSuchAlgorithmException {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : values) {
      buffer.putFloat(value);
    }
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(buffer.array()));
  }

  @Test
  void matchesTorchBitForBitAcrossSeedsAndShapes() throws IOException, NoSuchAlgorithmException {
    int cases = 0;
    long elements = 0;
    try (InputStream in = getClass().getResourceAsStream("/reference/noise.jsonl")) {
      for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        if (line.isBlank()) {
          continue;
        }
        JsonNode entry = MAPPER.readTree(line);
        long seed = entry.get("seed").asLong();
        int count = entry.get("count").asInt();
        String label = "seed " + seed + " shape " + entry.get("shape");
        TorchGenerator generator = new TorchGenerator(seed);
        float[] values = generator.randn(count);
        if (entry.has("bits")) {
          assertBits(entry.get("bits"), values, 0, label);
        } else {
          assertBits(entry.get("head"), values, 0, label + " head");
          assertBits(entry.get("tail"), values, count - 32, label + " tail");
        }
        assertEquals(entry.get("sha256").asText(), sha256(values), label + " sha256 of all values");
        // The stream continues where torch's does: same number of draws consumed.
        assertBits(entry.get("next16"), generator.randn(16), 0, label + " following draw");
        cases++;
        elements += count;
      }
    }
    assertEquals(16, cases);
    assertTrue(elements > 100_000, "covers full-size latents");
  }

  @Test
  void sameSeedSameNoiseDifferentSeedDifferentNoise() {
    float[] first = new TorchGenerator(7).randn(64);
    float[] again = new TorchGenerator(7).randn(64);
    float[] other = new TorchGenerator(8).randn(64);
    assertEquals(java.util.Arrays.toString(first), java.util.Arrays.toString(again));
    assertTrue(!java.util.Arrays.equals(first, other));
  }

  @Test
  void largeSampleIsStandardNormal() {
    float[] values = new TorchGenerator(3).randn(1 << 16);
    double sum = 0;
    double squares = 0;
    for (float value : values) {
      sum += value;
      squares += value * value;
    }
    double mean = sum / values.length;
    double variance = squares / values.length - mean * mean;
    assertEquals(0.0, mean, 0.02);
    assertEquals(1.0, variance, 0.02);
  }
}
