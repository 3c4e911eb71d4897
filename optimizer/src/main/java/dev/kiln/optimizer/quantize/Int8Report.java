package dev.kiln.optimizer.quantize;

import java.util.List;
import java.util.Map;

/**
 * What {@code --precision int8} did to one model: the scheme, how many nodes compute in int8, hold int8 weights only,
 * or stay float (each kept layer with its reason), the QuantizeLinear/DequantizeLinear added, initializer bytes
 * before and after, the calibration set used, the int8 kernels ORT's CPU provider selected for the result, parity
 * per output against float32 on held-out inputs, and (when measured) the error each layer adds quantized alone.
 *
 * @param int8Nodes convolutions and MatMuls with int8 weights and int8 activations
 * @param weightOnlyNodes convolutions and MatMuls with int8 weights feeding float arithmetic
 * @param floatNodes every other node of the quantized graph, the kept layers included (Q/DQ nodes not counted)
 */
public record Int8Report(String scheme, String ranges, String activations, int int8Nodes, int weightOnlyNodes,
    int floatNodes, int quantizeNodes, int dequantizeNodes, long bytesBefore, long bytesAfter,
    CalibrationUsed calibration, Map<String, KeptLayer> floatKept, Map<String, Double> parity,
    Map<String, Integer> ortKernels, List<LayerError> layerErrors, List<String> notes) {

  /** The calibration inputs: the sets ranges came from and the held-out sets parity was measured on. */
  public record CalibrationUsed(String source, List<String> calibrationSets, List<String> heldOutSets, boolean heldOut,
      int tensors) {}

  public record KeptLayer(String op, String reason) {}

  /**
   * One candidate layer quantized alone (as the scheme would treat it) in the float32 graph: the largest
   * max|int8 − fp32| / max|fp32| over outputs and held-out sets.
   */
  public record LayerError(String node, String op, String treatment, double addedError, boolean keptByDefault) {}
}
