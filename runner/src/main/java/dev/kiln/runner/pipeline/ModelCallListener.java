package dev.kiln.runner.pipeline;

import ai.onnxruntime.OnnxTensor;
import java.util.Map;

/**
 * Told of every model call a pipeline makes, with the tensors exactly as ONNX Runtime receives them (after the
 * conversion to the element types the model declares), in the model's input order. Calibration records real
 * inputs this way. The tensors are closed when the call returns: copy what you keep.
 */
@FunctionalInterface
public interface ModelCallListener {
  ModelCallListener NONE = (component, feeds) -> {};

  /** {@code component} is the pipeline sub-folder the model came from (text_encoder, unet, vae_decoder...). */
  void modelCalled(String component, Map<String, OnnxTensor> feeds);
}
