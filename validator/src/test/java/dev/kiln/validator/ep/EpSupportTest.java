package dev.kiln.validator.ep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.EpTarget;
import dev.kiln.validator.structure.StructureCheck;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class EpSupportTest {
  /** One node over a float input of {@code shape} (and float initializers of {@code extra} shapes). */
  static Model single(OpType op, long opset, DataType type, long[] shape, long[]... extra) {
    Graph graph = new Graph("single");
    List<Value> inputs = new ArrayList<>();
    inputs.add(graph.addInput("x", type, Shape.of(shape)));
    int index = 0;
    for (long[] dims : extra) {
      long count = 1;
      for (long dim : dims) {
        count *= dim;
      }
      inputs.add(graph.addInitializer("w" + index++, Tensor.ofFloats(dims, new float[(int) count])));
    }
    Node node = Node.create(op, "/block/" + op.name(), inputs, "y");
    graph.append(node);
    node.output().setType(type, null);
    graph.addOutput(node.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", opset);
    model.opsetImports().put(OpType.MICROSOFT_DOMAIN, 1L);
    return model;
  }

  static EpSupport.Result check(Model model, EpTarget target) {
    return EpSupport.check(model, ShapeInference.of(model), target);
  }

  @Test
  void groupNormHasACudaKernelButNoCpuOne() {
    Model model = single(Microsoft.GROUP_NORM, 17, DataType.FLOAT, new long[] {1, 8, 8, 320}, new long[] {320}, new long[] {320});
    assertEquals(List.of("GroupNorm \"/block/GroupNorm\": no kernel for com.microsoft:GroupNorm on ORT's CPU provider"),
        check(model, EpTarget.CPU).errors());
    assertTrue(check(model, EpTarget.CUDA).passed());
  }

  @Test
  void biasSplitGeluIsCheckedAgainstTheHiddenSizesItsKernelTakes() {
    Model small = single(Microsoft.BIAS_SPLIT_GELU, 17, DataType.FLOAT, new long[] {1, 64, 256}, new long[] {256});
    assertEquals(List.of("BiasSplitGelu \"/block/BiasSplitGelu\": BiasSplitGelu's CUDA kernel takes hidden sizes 2560,"
        + " 5120 or 10240, this one is 256"), check(small, EpTarget.CUDA).errors());
    Model real = single(Microsoft.BIAS_SPLIT_GELU, 17, DataType.FLOAT, new long[] {1, 64, 2560}, new long[] {2560});
    assertTrue(check(real, EpTarget.CUDA).passed());
  }

  @Test
  void elementTypesAreChecked() {
    // ORT's CPU Erf takes float only.
    Model model = single(Onnx.ERF, 17, DataType.INT64, new long[] {4});
    assertEquals(List.of("Erf \"/block/Erf\": no kernel for input 0 of type int64 (takes float) on ORT's CPU provider"),
        check(model, EpTarget.CPU).errors());
    assertTrue(check(single(Onnx.ERF, 17, DataType.FLOAT, new long[] {4}), EpTarget.CPU).passed());
  }

  @Test
  void aCpuOnlyKernelOnCudaIsANoteNotAFailure() {
    // Acos has a CPU kernel and no CUDA one: ORT places it on CPU, with copies around it.
    Model model = single(OpType.onnx("Acos"), 17, DataType.FLOAT, new long[] {4});
    EpSupport.Result result = check(model, EpTarget.CUDA);
    assertTrue(result.passed());
    assertEquals(List.of("Acos \"/block/Acos\": runs on the CPU provider (no kernel for ai.onnx:Acos on CUDA)"),
        result.notes());
  }

  @Test
  void layerNormalizationBelowOpset17IsNotOnnxEvenThoughOrtRunsIt() {
    Model model = single(Onnx.LAYER_NORMALIZATION, 14, DataType.FLOAT, new long[] {2, 8}, new long[] {8}, new long[] {8});
    assertEquals(List.of("LayerNormalization \"/block/LayerNormalization\": does not exist in ai.onnx at the imported"
        + " opset 14 (introduced in opset 17)"), StructureCheck.check(model));
    assertEquals(List.of(), StructureCheck.check(single(Onnx.LAYER_NORMALIZATION, 17, DataType.FLOAT,
        new long[] {2, 8}, new long[] {8}, new long[] {8})));
  }

  @Test
  void anUnimportedDomainIsAStructureError() {
    Model model = single(Microsoft.GROUP_NORM, 17, DataType.FLOAT, new long[] {1, 8, 8, 320}, new long[] {320}, new long[] {320});
    model.opsetImports().remove(OpType.MICROSOFT_DOMAIN);
    assertEquals(List.of("GroupNorm \"/block/GroupNorm\": domain \"com.microsoft\" is not imported"), StructureCheck.check(model));
  }
}
