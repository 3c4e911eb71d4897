package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.OrtParity;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Target;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;

/**
 * Every profile on random small graphs made of the fixtures' op vocabulary: the torch-exported sites the rules
 * look for (exact GELU, quick GELU, LayerNorm and its residual Add, bias Adds, no-op Casts/Reshapes, unit
 * arithmetic, Identity, Transpose pairs) mixed with plain elementwise ops, MatMul and Softmax, with intermediate
 * values sometimes read twice or listed as graph outputs. Each profile keeps the verifier green after every step,
 * is idempotent (a second run changes no byte), and keeps ORT parity. The sites are those whose fused forms run
 * on ORT's CPU provider; the CUDA-only GroupNorm family and packed attention are covered by the fixture tests.
 */
class OptimizerPropertiesTest {
  private static final Shape HIDDEN = Shape.of(Shape.symbolic("batch"), Shape.known(3), Shape.known(8));
  private static final Map<String, Long> DIMS = Map.of("batch", 2L);
  private static final List<OpType> UNARY = List.of(Onnx.RELU, Onnx.SIGMOID, Onnx.TANH, Onnx.NEG, Onnx.ABS, Onnx.IDENTITY);
  private static final List<OpType> BINARY = List.of(Onnx.ADD, Onnx.MUL, Onnx.SUB);

  @Property(tries = 12)
  void everyProfileKeepsTheVerifierGreenIsIdempotentAndKeepsParity(@ForAll long seed) {
    Model original = randomModel(seed);
    Path originalPath = RuleTestSupport.write(original, "original");
    var inputs = OrtParity.randomInputs(originalPath, DIMS, seed, 10);
    for (Target target : Target.values()) {
      for (Component component : List.of(Component.TEXT_ENCODER, Component.UNET, Component.VAE_DECODER)) {
        String profile = target.id() + "/" + component.id() + " on seed " + seed;
        Optimizer.Options options = Optimizer.Options.of(target).withComponent(component).verifying()
            .withoutCudaKernelLimits();
        Model model = ModelReader.read(originalPath);
        Optimizer.optimize(model, "random", options);
        Verifier.verify(model);
        byte[] once = ModelWriter.toBytes(model);
        var again = Optimizer.optimize(model, "random", options);
        again.rules().forEach((rule, result) -> assertEquals(0, result.applied(), rule + " applied twice: " + profile));
        assertArrayEquals(once, ModelWriter.toBytes(model), "a second run changed the model: " + profile);
        double error = OrtParity.compare(originalPath, RuleTestSupport.write(model, "optimized"), inputs).maxRelativeError();
        assertTrue(error <= 1e-4, profile + ": relative error " + error);
      }
    }
  }

  /** The generator reaches what the property is about: over a few seeds every shared rule rewrites something. */
  @Test
  void theRandomSitesReachEveryRuleTheyAreMadeFor() {
    java.util.Set<String> applied = new java.util.TreeSet<>();
    for (long seed = 0; seed < 40; seed++) {
      for (Target target : List.of(Target.CPU, Target.CUDA)) {
        for (Component component : List.of(Component.TEXT_ENCODER, Component.UNET)) {
          Model model = randomModel(seed);
          var report = Optimizer.optimize(model, "random",
              Optimizer.Options.of(target).withComponent(component).withoutCudaKernelLimits());
          report.rules().forEach((rule, result) -> {
            if (result.applied() > 0) {
              applied.add(rule);
            }
          });
        }
      }
    }
    assertEquals(new java.util.TreeSet<>(List.of("bias-gelu", "gelu", "layer-norm", "quick-gelu", "remove-identity",
        "remove-noop-cast", "remove-noop-reshape", "remove-unit-arithmetic", "skip-layer-norm", "transpose-cancel")), applied);
  }

  /** A chain of random sites on a [batch, 3, 8] float tensor; some intermediates are read again or are outputs. */
  static Model randomModel(long seed) {
    Random random = new Random(seed);
    SmallGraph g = new SmallGraph(17, "/blocks." + random.nextInt(4) + "/");
    List<Value> values = new ArrayList<>();
    values.add(g.input("x", HIDDEN));
    if (random.nextBoolean()) {
      values.add(g.input("skip", HIDDEN));
    }
    int sites = 2 + random.nextInt(6);
    for (int i = 0; i < sites; i++) {
      Value x = values.get(values.size() - 1 - random.nextInt(Math.min(2, values.size())));
      values.add(site(g, random, i, x, values.get(random.nextInt(values.size()))));
    }
    Value last = values.get(values.size() - 1);
    g.output(last, "y", HIDDEN);
    if (random.nextInt(3) == 0 && values.size() > 3) {
      Value inner = values.get(1 + random.nextInt(values.size() - 2));
      if (inner.producer() != null && !inner.isGraphOutput()) {
        g.output(inner, "inner", HIDDEN);
      }
    }
    return g.model;
  }

  private static Value site(SmallGraph g, Random random, int index, Value x, Value other) {
    return switch (random.nextInt(12)) {
      case 0 -> g.op(UNARY.get(random.nextInt(UNARY.size())), x);
      case 1 -> g.op(BINARY.get(random.nextInt(BINARY.size())), x, other);
      case 2 -> g.op(Onnx.ADD, x, g.weights("bias_" + index, 8));
      case 3 -> gelu(g, random.nextBoolean() ? g.op(Onnx.ADD, g.weights("fc_" + index + ".bias", 8), x) : x);
      case 4 -> g.op(Onnx.MUL, x, g.op(Onnx.SIGMOID, g.op(Onnx.MUL, x, g.scalar(1.702f))));
      case 5 -> layerNorm(g, index, random.nextBoolean() ? g.op(Onnx.ADD, x, other) : x);
      case 6 -> g.op(Onnx.CAST, List.of(x), Attribute.ofInt("to", DataType.FLOAT.number()));
      case 7 -> random.nextBoolean() ? g.op(Onnx.MUL, x, g.scalar(1f)) : g.op(Onnx.ADD, g.scalar(0f), x);
      case 8 -> g.op(Onnx.RESHAPE, x, g.longs(0, 3, 8));
      case 9 -> g.op(Onnx.MAT_MUL, x, g.weights("weight_" + index, 8, 8));
      case 10 -> g.op(Onnx.SOFTMAX, List.of(x), Attribute.ofInt("axis", -1));
      default -> g.op(Onnx.TRANSPOSE, List.of(g.op(Onnx.TRANSPOSE, List.of(x), Attribute.ofInts("perm", 0, 2, 1))),
          Attribute.ofInts("perm", 0, 2, 1));
    };
  }

  /** Exact GELU as torch exports it. */
  private static Value gelu(SmallGraph g, Value x) {
    Value erf = g.op(Onnx.ERF, g.op(Onnx.DIV, x, g.scalar(1.4142135f)));
    return g.op(Onnx.MUL, g.op(Onnx.MUL, x, g.op(Onnx.ADD, erf, g.scalar(1f))), g.scalar(0.5f));
  }

  /** torch's LayerNorm decomposition over the last axis. */
  private static Value layerNorm(SmallGraph g, int index, Value x) {
    Value mean = g.op(Onnx.REDUCE_MEAN, List.of(x), Attribute.ofInts("axes", -1));
    Value centered = g.op(Onnx.SUB, x, mean);
    Value variance = g.op(Onnx.REDUCE_MEAN, List.of(g.op(Onnx.POW, centered, g.scalar(2f))), Attribute.ofInts("axes", -1));
    Value deviation = g.op(Onnx.SQRT, g.op(Onnx.ADD, variance, g.scalar(1e-5f)));
    return g.op(Onnx.ADD, g.op(Onnx.MUL, g.op(Onnx.DIV, centered, deviation), g.weights("norm_" + index + ".weight", 8)),
        g.weights("norm_" + index + ".bias", 8));
  }
}
