package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The residual channels a UNet's ControlNet inputs get from its config, as diffusers collects its skip samples. */
class ExportedShapesTest {
  static List<Long> residuals(String config) throws Exception {
    JsonNode derived = ExportedShapes.withResidualChannels(Json.mapper().readTree(config));
    List<Long> channels = new ArrayList<>();
    for (int index = 0; derived.has("kiln:down_block_additional_residuals_" + index); index++) {
      channels.add(derived.get("kiln:down_block_additional_residuals_" + index).asLong());
    }
    channels.add(derived.path("kiln:mid_block_additional_residual").asLong(-1));
    return channels;
  }

  @Test
  void stableDiffusion15HasTwelveDownResidualsAndTheMid() throws Exception {
    assertEquals(List.of(320L, 320L, 320L, 320L, 640L, 640L, 640L, 1280L, 1280L, 1280L, 1280L, 1280L, 1280L),
        residuals("{\"block_out_channels\": [320, 640, 1280, 1280], \"layers_per_block\": 2}"));
  }

  @Test
  void theTinyUnetHasFour() throws Exception {
    assertEquals(List.of(32L, 32L, 32L, 64L, 64L), residuals("{\"block_out_channels\": [32, 64], \"layers_per_block\": 1}"));
  }

  @Test
  void perBlockLayerCountsAddNothing() throws Exception {
    JsonNode config = Json.mapper().readTree("{\"block_out_channels\": [32, 64], \"layers_per_block\": [1, 2]}");
    assertFalse(ExportedShapes.withResidualChannels(config).has("kiln:mid_block_additional_residual"));
  }
}
