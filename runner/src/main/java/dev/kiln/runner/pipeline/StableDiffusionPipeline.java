package dev.kiln.runner.pipeline;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.kiln.common.KilnException;
import dev.kiln.common.PipelineLayout;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.noise.TorchGenerator;
import dev.kiln.runner.scheduler.Scheduler;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Text-to-image and image-to-image for SD 1.x, 2.x (incl. v-prediction), Turbo/LCM and SDXL pipelines on
 * ONNX Runtime, composed of its stages: {@link PromptEncoder} (tokenizers and text encoders) → {@link Unet}
 * per scheduler step with classifier-free guidance (both branches in one batch) → {@link VaeDecoder}, and
 * {@link VaeEncoder} for img2img. Sessions are created once in {@link #open} and closed by {@link #close}; this
 * class decides sizes, defaults and the sampling loop, each stage timed.
 *
 * <p><b>Thread safety.</b> One open pipeline may serve {@link #generate} calls from any number of threads at
 * once, and each call returns exactly the bytes it would return alone: the ORT sessions are shared (their
 * {@code run} is thread-safe), everything that belongs to one generation (scheduler, noise generator, buffers,
 * timings) is created per call, and the state created lazily on first use (the VAE encoder session, the text
 * encoder's recovered final LayerNorm, recovered from a fixed probe prompt) is created once under a lock and
 * published only when complete. {@link #close} must not overlap a running generation.
 */
public final class StableDiffusionPipeline implements AutoCloseable {
  private final PipelineFolder folder;
  private final OrtEnvironment environment;
  private final OrtSession.SessionOptions options;
  private final Device device;
  /** ORT's optimized copies of large CPU models (null on a GPU, or when KILN_ORT_CACHE=off). */
  private final OptimizedModelCache modelCache;
  private final List<AutoCloseable> owned = new ArrayList<>();
  private final PromptEncoder promptEncoder;
  private final Unet unet;
  /** The pipeline's own controlnet/ (when it has one), then each extra ControlNet folder, in the order controls pair with. */
  private final List<ControlNet> controlNets = new ArrayList<>();
  private final VaeDecoder vaeDecoder;
  /** Opened on the first img2img request (under {@link #lazyLock}), then read without locking. */
  private volatile VaeEncoder vaeEncoder;
  private final Object lazyLock = new Object();
  private final StageTimings loadTimings = new StageTimings();
  private final GenerationLimits limits;
  private volatile ModelCallListener callListener = ModelCallListener.NONE;

  private StableDiffusionPipeline(PipelineFolder folder, Device requested, int threads, Consumer<String> warnings, List<Path> extraControlNets) {
    this.folder = folder;
    // FATAL: ORT's own coloured log lines (warnings, and errors it also throws) would break Kiln's one-line output.
    this.environment = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
    this.options = new OrtSession.SessionOptions();
    owned.add(options);
    try {
      options.setIntraOpNumThreads(threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
      this.device = configureDevice(requested, warnings);
      options.setOptimizationLevel(ThreadIndependentOptimization.levelFor(device));
      OptimizedModelCache cache = device == Device.CPU ? OptimizedModelCache.standard(ThreadIndependentOptimization.levelFor(device)) : null;
      this.modelCache = cache == null ? null : cache.withNotices(warnings);
      TextEncoder first = new TextEncoder(load(PipelineLayout.TEXT_ENCODER), ClipTokenizer.load(folder.root().resolve(PipelineLayout.TOKENIZER)));
      TextEncoder second = folder.xl()
          ? new TextEncoder(load(PipelineLayout.TEXT_ENCODER_2), ClipTokenizer.load(folder.root().resolve(PipelineLayout.TOKENIZER_2))) : null;
      this.promptEncoder = new PromptEncoder(first, second, folder.forceZerosForEmptyPrompt());
      this.unet = new Unet(load(PipelineLayout.UNET), folder);
      if (folder.hasControlNet()) {
        controlNets.add(new ControlNet(load(PipelineLayout.CONTROLNET), folder.model(PipelineLayout.CONTROLNET), unet));
      }
      for (Path extra : extraControlNets) {
        Path file = Files.isDirectory(extra) ? extra.resolve(PipelineLayout.MODEL_FILE) : extra;
        if (!Files.isRegularFile(file)) {
          throw new KilnException.BadInput("controlnet " + extra + " has no " + PipelineLayout.MODEL_FILE
              + " (expected a folder holding model.onnx and config.json)");
        }
        OnnxModel model = OnnxModel.open(PipelineLayout.CONTROLNET, file, environment, options, device, modelCache);
        synchronized (lazyLock) {
          owned.add(model);
          loadTimings.add("load_" + PipelineLayout.CONTROLNET, model.creationNanos());
        }
        controlNets.add(new ControlNet(model, file, unet));
      }
      this.vaeDecoder = new VaeDecoder(load(PipelineLayout.VAE_DECODER), folder.vaeScalingFactor());
      this.limits = GenerationLimits.ofThisMachine(folder, promptEncoder.hiddenWidth());
    } catch (OrtException e) {
      close();
      throw new KilnException.BadInput("cannot configure ONNX Runtime: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** Opens every session of the pipeline once. {@code threads} 0 means one per core. */
  public static StableDiffusionPipeline open(PipelineFolder folder, Device device, int threads, Consumer<String> warnings) {
    return new StableDiffusionPipeline(folder, device, threads, warnings, List.of());
  }

  /**
   * Opens the pipeline with extra ControlNets (folders holding model.onnx, or the model files), which follow the
   * pipeline's own controlnet/ in the order a request's controls pair with them.
   */
  public static StableDiffusionPipeline open(PipelineFolder folder, Device device, int threads, Consumer<String> warnings,
      List<Path> extraControlNets) {
    return new StableDiffusionPipeline(folder, device, threads, warnings, List.copyOf(extraControlNets));
  }

  private Device configureDevice(Device requested, Consumer<String> warnings) throws OrtException {
    if (requested == Device.CPU) {
      return Device.CPU;
    }
    if (!Device.gpuPresent()) {
      warnings.accept("kiln: --device " + requested.cliName() + " requested but no NVIDIA GPU is visible; running on CPU");
      return Device.CPU;
    }
    try {
      if (requested == Device.TENSORRT) {
        options.addTensorrt(0);
      }
      options.addCUDA(0);
      return requested;
    } catch (OrtException e) {
      warnings.accept("kiln: cannot enable " + requested.cliName() + " (" + e.getMessage().lines().findFirst().orElse("") + "); running on CPU");
      return Device.CPU;
    }
  }

  private OnnxModel load(String component) {
    OnnxModel model = OnnxModel.open(component, folder.model(component), environment, options, device, modelCache);
    synchronized (lazyLock) {
      model.listen(callListener);
      owned.add(model);
      loadTimings.add("load_" + component, model.creationNanos());
    }
    return model;
  }

  /** The VAE encoder, opened once on first use; concurrent first uses open it once. */
  private VaeEncoder vaeEncoder() {
    VaeEncoder encoder = vaeEncoder;
    if (encoder != null) {
      return encoder;
    }
    synchronized (lazyLock) {
      if (vaeEncoder == null) {
        if (!folder.hasVaeEncoder()) {
          throw new InvalidRequest("initImage", "needs " + folder.model(PipelineLayout.VAE_ENCODER) + ", which this pipeline does not have");
        }
        vaeEncoder = new VaeEncoder(load(PipelineLayout.VAE_ENCODER), folder.vaeScalingFactor(), folder.latentChannels());
      }
      return vaeEncoder;
    }
  }

  /** Tells {@code listener} of every model call from now on, the lazily opened VAE encoder's included (calibration). */
  public void listenToModelCalls(ModelCallListener listener) {
    synchronized (lazyLock) {
      callListener = listener == null ? ModelCallListener.NONE : listener;
      for (AutoCloseable each : owned) {
        if (each instanceof OnnxModel model) {
          model.listen(callListener);
        }
      }
    }
  }

  public PipelineFolder folder() {
    return folder;
  }

  public Device device() {
    return device;
  }

  public StageTimings loadTimings() {
    return loadTimings;
  }

  OnnxModel unet() {
    return unet.model();
  }

  /** The ControlNets a request's controls pair with, in order (the pipeline's own first); empty when it has none. */
  public List<Path> controlNets() {
    return controlNets.stream().map(ControlNet::file).toList();
  }

  public GenerationResult generate(GenerationRequest request) {
    return generate(request, StepListener.NONE);
  }

  public GenerationResult generate(GenerationRequest request, StepListener listener) {
    request.validate();
    int baked = folder.bakedClipSkip();
    if (baked >= 0) {
      if (request.clipSkip() != 0 && request.clipSkip() != baked) {
        throw new InvalidRequest("clipSkip", "must be " + baked + " (or left out): this pipeline's text encoders were pruned to clip "
            + "skip " + baked + " by `kiln optimize --clip-skip`, got " + request.clipSkip());
      }
      // The pruned encoders give the state of that clip skip directly; the request (and the PNG) say which it is.
      request = request.withClipSkip(baked);
    }
    StageTimings timings = new StageTimings();
    List<String> notes = new ArrayList<>();
    int factor = folder.vaeScaleFactor();
    int multiple = folder.sizeMultiple();
    checkControls(request);
    // As diffusers: the init image's size, else the (first) control image's, else the pipeline's.
    RgbImage sizing = request.initImage() != null ? request.initImage() : request.controls().isEmpty() ? null : request.controls().get(0).image();
    int width = request.width() != null ? request.width() : sizing != null ? sizing.width()
        : folder.staticWidth() > 0 ? folder.staticWidth() : folder.defaultSize();
    int height = request.height() != null ? request.height() : sizing != null ? sizing.height()
        : folder.staticHeight() > 0 ? folder.staticHeight() : folder.defaultSize();
    for (String side : List.of("width", "height")) {
      int fixed = side.equals("width") ? folder.staticWidth() : folder.staticHeight();
      int value = side.equals("width") ? width : height;
      if (fixed > 0 && value != fixed) {
        throw new InvalidRequest(side, "must be " + fixed + ": this pipeline was specialized to " + folder.staticWidth() + "x"
            + folder.staticHeight() + " by `kiln optimize --static`, got " + value + " (optimize the original folder without --static "
            + "for other sizes)");
      }
    }
    for (String side : List.of("width", "height")) {
      int value = side.equals("width") ? width : height;
      if (value <= 0 || value % multiple != 0) {
        throw new InvalidRequest(side, "must be one of the positive multiples of " + multiple + " for this pipeline (VAE scale factor " + factor
            + (multiple != factor ? " x UNet downsampling " + multiple / factor : "") + "), got " + value
            + (request.width() == null && request.height() == null && sizing != null
                ? (request.initImage() != null ? " (the init image's size)" : " (the control image's size)") : ""));
      }
    }
    SchedulerKind kind = request.scheduler() != null ? request.scheduler() : folder.defaultScheduler();
    int steps = request.steps() != null ? request.steps() : kind.usualSteps();
    // LCM-distilled UNets take the guidance as an embedding and run no unconditional branch; LCM-LoRA UNets run unguided.
    boolean guidanceEmbedded = unet.guidanceEmbedded();
    double guidance = request.guidance() != null ? request.guidance()
        : kind == SchedulerKind.LCM ? (guidanceEmbedded ? LCM_EMBEDDED_GUIDANCE : 1.0) : GenerationRequest.DEFAULT_GUIDANCE;
    boolean guided = guidance > 1.0 && !(kind == SchedulerKind.LCM && guidanceEmbedded);
    int batch = request.batch();
    limits.check(width, height, batch, guided, request.initImage() != null, unet.declaredBatch(), device == Device.CPU);
    Scheduler scheduler = kind.create(folder.schedulerConfig(), steps);
    String negative = request.negativePrompt() == null ? "" : request.negativePrompt();
    if (!guided && !negative.isEmpty()) {
      notes.add("the negative prompt is ignored: guidance " + plain(guidance) + (kind == SchedulerKind.LCM && guidanceEmbedded
          ? " goes to the LCM UNet's guidance embedding, which runs no unconditional branch" : " <= 1 runs no unconditional branch"));
    }

    // A pruned folder's encoders already give the baked clip skip's state: read last_hidden_state as it is.
    int clipSkip = folder.bakedClipSkip() >= 0 ? TextEncoder.BAKED : request.clipSkip();
    PromptEncoder.Embeddings embeddings = promptEncoder.encode(request.prompt(), negative, clipSkip, guided, batch, timings, notes);
    Unet.Conditioning conditioning = unet.condition(embeddings, width, height, batch, guided);
    TorchGenerator generator = new TorchGenerator(request.seed());
    long[] latentShape = {batch, folder.latentChannels(), height / factor, width / factor};
    int firstStep = 0;
    float[] latents;
    if (request.initImage() != null) {
      int noisedSteps = Math.min((int) (steps * request.strength()), steps);
      if (noisedSteps == 0) {
        throw new InvalidRequest("strength", "must be at least 1/steps = " + plain(1.0 / steps) + " to run any of the " + steps
            + " steps, got " + plain(request.strength()));
      }
      firstStep = steps - noisedSteps;
      Tensor clean = vaeEncoder().encode(request.initImage().resized(width, height), batch, timings);
      float[] noise = generator.randn(clean.data().length);
      latents = scheduler.addNoise(clean.data(), noise, firstStep);
    } else {
      latents = generator.randn((int) (latentShape[0] * latentShape[1] * latentShape[2] * latentShape[3]));
      double sigma = scheduler.initNoiseSigma();
      for (int index = 0; index < latents.length; index++) {
        latents[index] = (float) (latents[index] * sigma);
      }
    }
    List<Tensor> controlImages = new ArrayList<>();
    for (ControlImage control : request.controls()) {
      controlImages.add(controlTensor(control.image().resized(width, height)));
    }
    double[] timesteps = scheduler.timesteps();
    // PNDM evaluates the UNet once more than its step count; every other scheduler once per step.
    int evaluations = timesteps.length;
    for (int step = firstStep; step < evaluations; step++) {
      long start = System.nanoTime();
      float[] input = scheduler.scaleModelInput(latents, step);
      Tensor sample = new Tensor(input, latentShape);
      Residuals residuals = controlResiduals(request, controlImages, sample, timesteps[step], conditioning, guided, timings);
      float[] noisePrediction = unet.predict(sample, timesteps[step], conditioning, residuals, guided, guidance, listener, step);
      latents = scheduler.step(noisePrediction, step, latents, generator);
      timings.add("unet_step", System.nanoTime() - start);
      listener.latentsAfterStep(step, latents);
      listener.stepDone(step - firstStep + 1, evaluations - firstStep);
    }
    Tensor finalLatents = new Tensor(latents, latentShape);
    List<RgbImage> images = new ArrayList<>();
    List<String> parameters = new ArrayList<>();
    for (int image = 0; image < batch; image++) {
      Tensor row = finalLatents.rows(image, image + 1);
      images.add(timings.time("vae_decoder", () -> vaeDecoder.decode(row)));
      parameters.add(GenerationParameters.format(request, kind, steps, guidance, width, height, folder.name(), batch, image,
          controlNetNames()));
    }
    return new GenerationResult(images, parameters, finalLatents, timings, kind, steps, width, height, request.seed(), guidance, List.copyOf(notes));
  }

  /** Refuses controls this pipeline cannot honour: none of its own, or not one per ControlNet. */
  private void checkControls(GenerationRequest request) {
    int given = request.controls().size();
    if (given == 0) {
      return;
    }
    if (controlNets.isEmpty()) {
      throw new InvalidRequest("controls", "needs a ControlNet: pipeline " + folder.root() + " has no " + PipelineLayout.CONTROLNET
          + "/model.onnx and none was added (a ControlNet pipeline's unet takes " + Unet.DOWN_RESIDUAL + "K inputs; this one's "
          + (unet.takesResiduals() ? "does" : "does not") + ")");
    }
    if (given != controlNets.size()) {
      throw new InvalidRequest("controls", "must give one control image per ControlNet: " + controlNets.size() + " ControlNet"
          + (controlNets.size() == 1 ? "" : "s") + " (" + controlNets.stream().map(net -> net.file().toString()).toList() + "), got "
          + given + " image" + (given == 1 ? "" : "s"));
    }
  }

  /** The ControlNets' folder names, for the PNG's parameters. */
  private List<String> controlNetNames() {
    return controlNets.stream().map(net -> net.file().getParent() == null ? net.file().toString()
        : net.file().getParent().getFileName().toString()).toList();
  }

  /** A control image as diffusers' ControlNet image processor gives it: [1, 3, H, W] RGB in [0, 1], not normalized to [-1, 1]. */
  static Tensor controlTensor(RgbImage image) {
    int plane = image.width() * image.height();
    float[] values = new float[3 * plane];
    byte[] pixels = image.pixels();
    for (int pixel = 0; pixel < plane; pixel++) {
      for (int channel = 0; channel < 3; channel++) {
        values[channel * plane + pixel] = (pixels[pixel * 3 + channel] & 0xff) / 255f;
      }
    }
    return new Tensor(values, new long[] {1, 3, image.height(), image.width()});
  }

  /**
   * The summed residuals of every ControlNet for this step, as diffusers' StableDiffusionControlNetPipeline: each net on
   * its own image at its own scale over both guidance halves, or in guess mode over the conditional half only (the
   * unconditional half gets zeros) with its residuals scaled by logspace(-1, 0, N + 1) times the scale. Null without
   * controls: the UNet then gets zero residuals, exactly the UNet without control.
   */
  private Residuals controlResiduals(GenerationRequest request, List<Tensor> images, Tensor input, double timestep,
      Unet.Conditioning conditioning, boolean guided, StageTimings timings) {
    if (request.controls().isEmpty()) {
      return null;
    }
    long start = System.nanoTime();
    int batch = (int) input.dimension(0);
    boolean guess = request.guessMode();
    boolean bothHalves = guided && !guess;
    Tensor sample = bothHalves ? Tensor.concatenate(List.of(input, input)) : input;
    int rows = (int) sample.dimension(0);
    int conditioningFrom = guided && guess ? batch : 0;
    List<long[]> expected = unet.residualShapes(input.dimension(2), input.dimension(3));
    Residuals sum = null;
    for (int index = 0; index < controlNets.size(); index++) {
      float scale = (float) request.controls().get(index).scale();
      Residuals residuals = controlNets.get(index).run(sample, timestep, conditioning, conditioningFrom, images.get(index).repeat(rows),
          guess ? 1f : scale, expected);
      if (guess) {
        residuals = residuals.scaled(guessFactors(expected.size(), scale));
      }
      sum = sum == null ? residuals : sum.plus(residuals);
    }
    if (guided && guess) {
      sum = sum.afterZeroRows();
    }
    timings.add("controlnet", System.nanoTime() - start);
    return sum;
  }

  /** Guess mode's per-residual scales: torch.logspace(-1, 0, count) (0.1 for down_0 up to 1 for mid), each times {@code scale}. */
  static float[] guessFactors(int count, float scale) {
    float[] factors = new float[count];
    for (int index = 0; index < count; index++) {
      float base = (float) Math.pow(10, -1 + (double) index / (count - 1));
      factors[index] = base * scale;
    }
    return factors;
  }

  /** diffusers' LatentConsistencyModelPipeline default: the scale the LCM UNet's guidance embedding was distilled around. */
  static final double LCM_EMBEDDED_GUIDANCE = 8.5;

  private static String plain(double value) {
    return value == Math.rint(value) ? String.valueOf((long) value) : String.valueOf(value);
  }

  @Override
  public void close() {
    RuntimeException failure = null;
    for (int index = owned.size() - 1; index >= 0; index--) {
      try {
        owned.get(index).close();
      } catch (Exception e) {
        if (failure == null) {
          failure = new IllegalStateException("cannot close pipeline session: " + e.getMessage(), e);
        }
      }
    }
    owned.clear();
    if (failure != null) {
      throw failure;
    }
  }
}
