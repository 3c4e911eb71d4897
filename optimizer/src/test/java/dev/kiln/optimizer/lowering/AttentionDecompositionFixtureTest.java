package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.OrtParity;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SD 1.5 fixture UNet through the cuda profile (packed-QKV self-attention, packed-KV cross-attention), then
 * with every attention node decomposed into standard MatMul/Softmax rather than handed to ORT's CPU kernel: an
 * independent check of what the attention fusions claim, on the real graph.
 */
class AttentionDecompositionFixtureTest {
  @TempDir Path folder;

  @Test
  void cudaUnetWithAttentionDecomposedMatchesTheOriginal() {
    Path original = Fixtures.component("unet", Opset.V17);
    Model model = ModelReader.read(original);
    Optimizer.optimize(model, "unet", Optimizer.Options.of(Target.CUDA));
    Path fused = folder.resolve("cuda.onnx");
    ModelWriter.write(model, fused);
    Model copy = ModelReader.read(fused);
    Map<OpType, Integer> lowered = Lowering.decomposingAttention().lower(copy);
    Verifier.verify(copy);
    assertEquals(22, lowered.get(Microsoft.MULTI_HEAD_ATTENTION), "11 self + 11 cross attention: " + lowered);
    for (Node node : copy.graph().nodes()) {
      assertTrue(!node.is(Microsoft.MULTI_HEAD_ATTENTION) && !node.is(Microsoft.GROUP_NORM), node.toString());
    }
    Path decomposed = folder.resolve("decomposed.onnx");
    ModelWriter.write(copy, decomposed);
    Map<String, OrtParity.Input> inputs = OrtParity.randomInputs(original,
        Map.of("batch_size", 2L, "steps", 2L, "height", 16L, "width", 24L, "sequence_length", 7L), 51, 1000);
    double error = OrtParity.compare(original, decomposed, inputs).maxRelativeError();
    System.out.printf("LOWERING-ERROR unet cuda profile, attention decomposed, [2,4,16,24] vs original: %.3g%n", error);
    assertTrue(error <= 1e-4, "max relative error " + error);
  }
}
