package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.testdata.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Pins the architecture-derived counts against a hand count done block by block from the fixtures' configs
 * (e.g. SD 1.5 UNet: 17 ResNets → 17 norm2 + 5 residual norm1 (down 3, mid 2), 11 Transformer2D norms, 1
 * conv_norm_out = 34 SkipGroupNorm of 46 GroupNorm modules).
 */
class CudaOpCountsTest {
  @ParameterizedTest(name = "{0}")
  @CsvSource({
      "unet, 46, 34, 11, 72, 33",
      "sd2_unet, 46, 34, 11, 50, 33",
      "sdxl_unet, 46, 34, 17, 50, 51",
      "vae_decoder, 30, 12, 0, 35, 0",
      "vae_decoder_overflow, 30, 12, 0, 35, 0",
      "vae_encoder, 22, 8, 0, 27, 0",
      "clip_text, 0, 0, 0, 0, 6",
  })
  void derivationMatchesTheHandCount(String name, int groupNorms, int skipGroupNorms, int biasSplitGelus,
      int convolutions, int residuals) {
    CudaOpCounts.Expected expected = CudaOpCounts.of(Fixtures.manifest().component(name));
    assertEquals(new CudaOpCounts.Expected(groupNorms, skipGroupNorms, biasSplitGelus, convolutions, residuals),
        expected);
  }
}
