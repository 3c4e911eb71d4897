package dev.kiln.validator.shapes;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.testdata.Fixtures;
import dev.kiln.validator.ComponentKind;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The seed's bug class: a reshape back to an image with the traced height baked in (see the generator). */
class BakedReshapeProofTest {
  static Path fixture() {
    return Fixtures.testdata().resolve("broken/sdxl_unet_baked_reshape/model.onnx");
  }

  static ShapeProof.Result prove(String shapes) {
    Model model = ModelReader.read(fixture());
    InputBinding binding = new InputBinding(model, ComponentKind.of(model), false);
    Map<String, String> refused = new LinkedHashMap<>();
    List<Size> sizes = binding.sizes(SizeSpec.parse(shapes), refused);
    return ShapeProof.run(model, binding, sizes, refused);
  }

  @Test
  void namesTheFirstFailingAddAndTheBakedReshapeAtEveryOtherHeight() {
    ShapeProof.Result result = prove("height=32,40,48,64;width=32,48");
    assertEquals(8, result.sizes().size());
    for (ShapeProof.SizeResult size : result.sizes()) {
      long height = size.size().values().get("height");
      if (height == 32) {
        assertTrue(size.passed(), size.toString());
        continue;
      }
      assertFalse(size.passed(), size.toString());
      assertEquals("/down_blocks.1/attentions.0/Add", size.node());
      assertEquals("Add", size.op());
      long width = size.size().values().get("width");
      String expected = "Add \"/down_blocks.1/attentions.0/Add\": operands cannot broadcast on axis 2: "
          + "[batch, 32, 16, height*width/64] and [batch, 32, height/2, width/2]; at batch=1 height=" + height
          + " width=" + width + ": [1, 32, 16, " + (height * width / 64) + "] and [1, 32, " + height / 2 + ", "
          + width / 2 + "]; Reshape \"/down_blocks.1/attentions.0/Reshape_1\" target [batch, 16, -1, 32] has "
          + "constant 16 = height/2 at the traced size; holds only for latent height 32";
      assertEquals(expected, size.message());
    }
    assertEquals(1, result.failing());
    assertEquals(0, result.undecided());
  }

  @Test
  void atTheTracedHeightEverySitePasses() {
    ShapeProof.Result result = prove("batch=1,2;height=32;width=32");
    assertTrue(result.passed());
    assertEquals(1202, result.sites());
    assertEquals(0, result.failing());
    // Proven for every size: the sites upstream of the first baked reshape; the rest hold at 32x32 only.
    assertEquals(829, result.proven());
  }

  @Test
  void widthAloneDoesNotBreakIt() {
    // The baked constant is the height; -1 absorbs any width, so width 48 at the traced height passes.
    assertTrue(prove("height=32;width=24,48,64").passed());
  }
}
