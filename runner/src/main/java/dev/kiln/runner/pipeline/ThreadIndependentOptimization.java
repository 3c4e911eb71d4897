package dev.kiln.runner.pipeline;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;

/**
 * The ORT graph-optimization level of the runner's sessions, chosen so that the output bytes do not depend on
 * the intra-op thread count (Kiln's determinism rule: the same input gives the same bytes across runs and
 * thread counts).
 *
 * <p>On the CPU, ORT's plain (NCHW) Conv kernel is the one that breaks it: MLAS expands the input into columns
 * and multiplies them with the filter in blocks along the reduction dimension (input channels x kernel size),
 * and the block length follows the number of output positions one thread gets. With fewer positions per thread
 * (a batch-1 convolution split over more threads, or a small feature map) the sum is cut into blocks at other
 * places, so the float rounding differs by an ulp or so (measured on the tiny pipeline's UNet and VAE decoder,
 * raw and Kiln-optimized: up to 2.9e-6 per step, 1.2e-5 over 20 steps). {@code session.use_deterministic_compute}
 * does not touch this kernel (it changes nothing on the CPU here). Level ALL adds the layout pass that moves
 * convolutions to the NCHWc kernels, which split the work over output rows and channel blocks and always sum
 * the input channels in the same order; with it every tiny-sd component gives identical bytes at 1, 2 and 4 threads.
 * The price is session creation time: the layout pass reorders every Conv weight once per session, 7-11 s more
 * than EXTENDED for a full-size SD 1.5 UNet on an idle 2-core machine. {@link OptimizedModelCache} keeps ORT's
 * optimized copy of such large models so that later sessions open at EXTENDED's cost, with the same output bytes
 * (bench/session-start.sh; numbers in runner/README.md).
 *
 * <p>CUDA and TensorRT keep EXTENDED: the NCHWc layout applies only to nodes the CPU runs, and GPU kernels'
 * determinism (cuDNN's algorithm choice) is a separate matter that the intra-op thread count does not reach.
 */
final class ThreadIndependentOptimization {
  private ThreadIndependentOptimization() {}

  static OptLevel levelFor(Device device) {
    return device == Device.CPU ? OptLevel.ALL_OPT : OptLevel.EXTENDED_OPT;
  }
}
