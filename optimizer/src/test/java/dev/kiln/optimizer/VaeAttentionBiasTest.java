package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Tensor;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ORT's own VAE attention fusion replaces the q/k/v biases by zeros (REFERENCE §6). Kiln keeps them; this shows
 * the fixture's numbers can tell the difference, so the parity check on the fused VAE is not blind to it.
 */
class VaeAttentionBiasTest {
  @TempDir Path folder;

  @Test
  void zeroingTheFusedBiasesIsCaughtKeepingThemIsNot() {
    Path original = Fixtures.component("vae_decoder", Opset.V17);
    Model model = ModelReader.read(original);
    Optimizer.optimize(model, "vae_decoder", Optimizer.Options.of(Target.CPU));
    Path kept = folder.resolve("kept.onnx");
    ModelWriter.write(model, kept);
    var inputs = FixtureModels.storedInputs(original, 0);
    double keptError = OrtParity.compare(original, kept, inputs).maxRelativeError();

    Node attention = model.graph().nodes().stream().filter(node -> node.is(Microsoft.ATTENTION)).findFirst().orElseThrow();
    var bias = attention.input(2);
    bias.setInitializer(Tensor.ofFloats(bias.initializer().dims(), new float[(int) bias.initializer().elementCount()]));
    Path zeroed = folder.resolve("zeroed.onnx");
    ModelWriter.write(model, zeroed);
    double zeroedError = OrtParity.compare(original, zeroed, inputs).maxRelativeError();

    assertTrue(keptError <= 1e-5, "real biases: " + keptError);
    assertTrue(zeroedError > 1e-3, "zeroed biases (ORT's fusion) must show: " + zeroedError);
  }
}
