package dev.kiln.runner.pipeline;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.kiln.common.KilnException;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.noise.TorchGenerator;
import dev.kiln.runner.scheduler.Scheduler;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Text-to-image and image-to-image for SD 1.x, 2.x (incl. v-prediction), Turbo/LCM and SDXL pipelines on
 * ONNX Runtime. Sessions are created once in {@link #open} and closed by {@link #close}; a generation is
 * tokenize → text encoder(s) → UNet per step with classifier-free guidance (both branches in one batch) →
 * VAE decoder, each stage timed.
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
  private final List<AutoCloseable> owned = new ArrayList<>();
  private final TextEncoder textEncoder;
  private final TextEncoder textEncoder2;
  private final OnnxModel unet;
  private final OnnxModel vaeDecoder;
  /** Opened on the first img2img request (under {@link #lazyLock}), then read without locking. */
  private volatile OnnxModel vaeEncoder;
  private final Object lazyLock = new Object();
  private final StageTimings loadTimings = new StageTimings();
  private final String unetOutput;
  private final GenerationLimits limits;

  private StableDiffusionPipeline(PipelineFolder folder, Device requested, int threads, Consumer<String> warnings) {
    this.folder = folder;
    // FATAL: ORT's own coloured log lines (warnings, and errors it also throws) would break Kiln's one-line output.
    this.environment = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
    this.options = new OrtSession.SessionOptions();
    owned.add(options);
    try {
      options.setIntraOpNumThreads(threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
      // EXTENDED, not ALL: on CPU the layout pass of ALL costs ~10 s of session creation for ~1.5 % speed.
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
      this.device = configureDevice(requested, warnings);
      this.textEncoder = new TextEncoder(load("text_encoder"), ClipTokenizer.load(folder.root().resolve("tokenizer")));
      if (folder.xl()) {
        this.textEncoder2 = new TextEncoder(load("text_encoder_2"), ClipTokenizer.load(folder.root().resolve("tokenizer_2")));
      } else {
        this.textEncoder2 = null;
      }
      this.unet = load("unet");
      this.vaeDecoder = load("vae_decoder");
      this.unetOutput = unet.outputs().containsKey("out_sample") ? "out_sample" : unet.outputs().keySet().iterator().next();
      checkUnet();
      this.limits = GenerationLimits.ofThisMachine(folder, textEncoder.hiddenWidth() + (textEncoder2 == null ? 0 : textEncoder2.hiddenWidth()));
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
    return new StableDiffusionPipeline(folder, device, threads, warnings);
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
    OnnxModel model = OnnxModel.open(component, folder.model(component), environment, options, device);
    synchronized (lazyLock) {
      owned.add(model);
      loadTimings.add("load_" + component, model.creationNanos());
    }
    return model;
  }

  /** The VAE encoder, opened once on first use; concurrent first uses open it once. */
  private OnnxModel vaeEncoder() {
    OnnxModel encoder = vaeEncoder;
    if (encoder != null) {
      return encoder;
    }
    synchronized (lazyLock) {
      if (vaeEncoder == null) {
        if (!folder.hasVaeEncoder()) {
          throw new InvalidRequest("initImage", "needs " + folder.model("vae_encoder") + ", which this pipeline does not have");
        }
        vaeEncoder = load("vae_encoder");
      }
      return vaeEncoder;
    }
  }

  private void checkUnet() {
    for (String required : List.of("sample", "timestep", "encoder_hidden_states")) {
      if (!unet.hasInput(required)) {
        throw new KilnException.Unsupported("unet model " + folder.model("unet") + " has no '" + required + "' input (inputs: " + unet.inputs().keySet() + ")");
      }
    }
    long channels = unet.inputShape("sample")[1];
    if (channels > 0 && channels != folder.latentChannels()) {
      throw new KilnException.Unsupported("unet sample input has " + channels + " channels but the VAE has " + folder.latentChannels()
          + " latent channels (inpainting UNets are not supported)");
    }
    if (folder.xl() && (!unet.hasInput("text_embeds") || !unet.hasInput("time_ids"))) {
      throw new KilnException.Unsupported("SDXL unet " + folder.model("unet") + " lacks text_embeds/time_ids inputs");
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
    return unet;
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
    int width = request.width() != null ? request.width() : request.initImage() != null ? request.initImage().width()
        : folder.staticWidth() > 0 ? folder.staticWidth() : folder.defaultSize();
    int height = request.height() != null ? request.height() : request.initImage() != null ? request.initImage().height()
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
            + (request.width() == null && request.height() == null && request.initImage() != null ? " (the init image's size)" : ""));
      }
    }
    SchedulerKind kind = request.scheduler() != null ? request.scheduler() : folder.defaultScheduler();
    int steps = request.steps() != null ? request.steps() : kind.usualSteps();
    // LCM-distilled UNets take the guidance as an embedding and run no unconditional branch; LCM-LoRA UNets run unguided.
    boolean guidanceEmbedded = unet.hasInput("timestep_cond");
    double guidance = request.guidance() != null ? request.guidance()
        : kind == SchedulerKind.LCM ? (guidanceEmbedded ? LCM_EMBEDDED_GUIDANCE : 1.0) : GenerationRequest.DEFAULT_GUIDANCE;
    boolean guided = guidance > 1.0 && !(kind == SchedulerKind.LCM && guidanceEmbedded);
    int batch = request.batch();
    long declaredBatch = unet.inputShape("sample")[0];
    limits.check(width, height, batch, guided, request.initImage() != null, declaredBatch, device == Device.CPU);
    Scheduler scheduler = kind.create(folder.schedulerConfig(), steps);
    String negative = request.negativePrompt() == null ? "" : request.negativePrompt();
    if (!guided && !negative.isEmpty()) {
      notes.add("the negative prompt is ignored: guidance " + plain(guidance) + (kind == SchedulerKind.LCM && guidanceEmbedded
          ? " goes to the LCM UNet's guidance embedding, which runs no unconditional branch" : " <= 1 runs no unconditional branch"));
    }

    Conditioning conditioning = encodePrompts(request, guided, batch, width, height, timings, notes);
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
      Tensor clean = encodeImage(request.initImage().resized(width, height), batch, timings);
      float[] noise = generator.randn(clean.data().length);
      latents = scheduler.addNoise(clean.data(), noise, firstStep);
    } else {
      latents = generator.randn((int) (latentShape[0] * latentShape[1] * latentShape[2] * latentShape[3]));
      double sigma = scheduler.initNoiseSigma();
      for (int index = 0; index < latents.length; index++) {
        latents[index] = (float) (latents[index] * sigma);
      }
    }
    double[] timesteps = scheduler.timesteps();
    // PNDM evaluates the UNet once more than its step count; every other scheduler once per step.
    int evaluations = timesteps.length;
    for (int step = firstStep; step < evaluations; step++) {
      long start = System.nanoTime();
      float[] input = scheduler.scaleModelInput(latents, step);
      float[] noisePrediction = predictNoise(new Tensor(input, latentShape), timesteps[step], conditioning, guided, guidance, listener, step);
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
      images.add(timings.time("vae_decoder", () -> decode(row)));
      parameters.add(GenerationParameters.format(request, kind, steps, guidance, width, height, folder.name(), batch, image));
    }
    return new GenerationResult(images, parameters, finalLatents, timings, kind, steps, width, height, request.seed(), guidance, List.copyOf(notes));
  }

  /** diffusers' LatentConsistencyModelPipeline default: the scale the LCM UNet's guidance embedding was distilled around. */
  static final double LCM_EMBEDDED_GUIDANCE = 8.5;

  private static String plain(double value) {
    return value == Math.rint(value) ? String.valueOf((long) value) : String.valueOf(value);
  }

  /** Embeddings for the UNet: [uncond x batch ; cond x batch] when guided, [cond x batch] otherwise. */
  private record Conditioning(Tensor hidden, Tensor pooled, Tensor timeIds) {}

  private Conditioning encodePrompts(GenerationRequest request, boolean guided, int batch, int width, int height, StageTimings timings,
      List<String> notes) {
    String negative = request.negativePrompt() == null ? "" : request.negativePrompt();
    noteTruncation("prompt", request.prompt(), notes);
    if (guided) {
      noteTruncation("negative prompt", negative, notes);
    }
    Tensor[] positive = encodeOne(request.prompt(), request.clipSkip(), timings, false);
    Tensor hidden = positive[0].repeat(batch);
    Tensor pooled = positive[1] == null ? null : positive[1].repeat(batch);
    Tensor timeIds = folder.xl() ? timeIds(width, height, false).repeat(batch) : null;
    if (guided) {
      boolean zeros = folder.xl() && negative.isEmpty() && folder.forceZerosForEmptyPrompt();
      Tensor[] unconditional = encodeOne(negative, request.clipSkip(), timings, zeros);
      hidden = Tensor.concatenate(List.of(unconditional[0].repeat(batch), hidden));
      if (pooled != null) {
        pooled = Tensor.concatenate(List.of(unconditional[1].repeat(batch), pooled));
      }
      if (timeIds != null) {
        timeIds = Tensor.concatenate(List.of(timeIds(width, height, true).repeat(batch), timeIds));
      }
    }
    return new Conditioning(hidden, pooled, timeIds);
  }

  /** CLIP reads 77 tokens (75 and start/end); the rest of a longer prompt is dropped, and the user is told what. */
  private void noteTruncation(String which, String prompt, List<String> notes) {
    ClipTokenizer tokenizer = textEncoder.tokenizer();
    List<Integer> content = tokenizer.contentIds(prompt);
    int room = tokenizer.maxLength() - 2;
    if (content.size() > room) {
      String dropped = tokenizer.decode(content.subList(room, content.size()));
      notes.add("the " + which + " is " + content.size() + " tokens; the text encoder reads the first " + room + ", so \""
          + (dropped.length() > 200 ? dropped.substring(0, 197) + "..." : dropped) + "\" was dropped");
    }
  }

  /** {hidden [1, T, D], pooled [1, P] or null}; SDXL concatenates both encoders' hidden states along D. */
  private Tensor[] encodeOne(String prompt, int requestedClipSkip, StageTimings timings, boolean zeros) {
    int clipSkip = folder.bakedClipSkip() >= 0 ? TextEncoder.BAKED : requestedClipSkip;
    if (!folder.xl()) {
      return new Tensor[] {textEncoder.encode(prompt, clipSkip, false, timings).hidden(), null};
    }
    TextEncoder.Encoded first = textEncoder.encode(prompt, clipSkip, true, timings);
    TextEncoder.Encoded second = textEncoder2.encode(prompt, clipSkip, true, timings);
    if (second.pooled() == null) {
      throw new KilnException.Unsupported("SDXL text_encoder_2 exports no text_embeds output");
    }
    Tensor hidden = concatenateLastAxis(first.hidden(), second.hidden());
    Tensor pooled = second.pooled();
    if (zeros) {
      hidden = new Tensor(new float[hidden.data().length], hidden.shape());
      pooled = new Tensor(new float[pooled.data().length], pooled.shape());
    }
    return new Tensor[] {hidden, pooled};
  }

  private static Tensor concatenateLastAxis(Tensor left, Tensor right) {
    int rows = (int) (left.data().length / left.dimension(-1));
    int leftWidth = (int) left.dimension(-1);
    int rightWidth = (int) right.dimension(-1);
    if (rows != right.data().length / rightWidth) {
      throw new KilnException.Unsupported("SDXL text encoders disagree on sequence length: " + java.util.Arrays.toString(left.shape())
          + " vs " + java.util.Arrays.toString(right.shape()));
    }
    float[] data = new float[rows * (leftWidth + rightWidth)];
    for (int row = 0; row < rows; row++) {
      System.arraycopy(left.data(), row * leftWidth, data, row * (leftWidth + rightWidth), leftWidth);
      System.arraycopy(right.data(), row * rightWidth, data, row * (leftWidth + rightWidth) + leftWidth, rightWidth);
    }
    long[] shape = left.shape().clone();
    shape[shape.length - 1] = leftWidth + rightWidth;
    return new Tensor(data, shape);
  }

  /**
   * SDXL's micro-conditioning: (original size, crop top-left, target size) = (H, W, 0, 0, H, W); a refiner
   * (5 values) takes an aesthetic score instead of the target size: 6.0 for the prompt, 2.5 for the negative.
   */
  private Tensor timeIds(int width, int height, boolean negative) {
    long declared = unet.inputShape("time_ids")[unet.inputShape("time_ids").length - 1];
    float[] values = declared == 5
        ? new float[] {height, width, 0, 0, negative ? 2.5f : 6.0f}
        : new float[] {height, width, 0, 0, height, width};
    return new Tensor(values, new long[] {1, values.length});
  }

  private float[] predictNoise(Tensor input, double timestep, Conditioning conditioning, boolean guided, double guidance,
      StepListener listener, int step) {
    int batch = (int) input.dimension(0);
    Tensor modelInput = guided ? Tensor.concatenate(List.of(input, input)) : input;
    int rows = (int) modelInput.dimension(0);
    long declaredBatch = unet.inputShape("sample")[0];
    int chunk = declaredBatch > 0 ? (int) declaredBatch : rows;
    if (rows % chunk != 0) {
      throw new InvalidRequest("batch", "cannot run: the unet was exported for batch " + declaredBatch + " but this generation runs " + rows
          + " rows (batch " + batch + (guided ? " x 2 for guidance" : "") + ")");
    }
    List<Tensor> outputs = new ArrayList<>();
    for (int from = 0; from < rows; from += chunk) {
      Map<String, ModelInput> inputs = new HashMap<>();
      inputs.put("sample", ModelInput.of(modelInput.rows(from, from + chunk)));
      inputs.put("timestep", timestepInput(timestep, chunk));
      inputs.put("encoder_hidden_states", ModelInput.of(conditioning.hidden().rows(from, from + chunk)));
      if (conditioning.pooled() != null) {
        inputs.put("text_embeds", ModelInput.of(conditioning.pooled().rows(from, from + chunk)));
        inputs.put("time_ids", ModelInput.of(conditioning.timeIds().rows(from, from + chunk)));
      }
      if (unet.hasInput("timestep_cond")) {
        inputs.put("timestep_cond", ModelInput.of(guidanceEmbedding(guidance, chunk)));
      }
      listener.unetInputs(step, inputs);
      outputs.add(unet.run(inputs, List.of(unetOutput)).get(unetOutput));
    }
    Tensor prediction = Tensor.concatenate(outputs);
    if (!guided) {
      return prediction.data();
    }
    float[] all = prediction.data();
    int half = all.length / 2;
    float[] guidedPrediction = new float[half];
    double scale = guidance;
    for (int index = 0; index < half; index++) {
      float unconditional = all[index];
      float conditional = all[half + index];
      guidedPrediction[index] = (float) (unconditional + scale * (conditional - unconditional));
    }
    return guidedPrediction;
  }

  /** The timestep in the shape the export declares: a scalar, [1] or [batch]; the element type is converted later. */
  private ModelInput timestepInput(double timestep, int rows) {
    long[] declared = unet.inputShape("timestep");
    if (declared.length == 0) {
      return ModelInput.doubles(new double[] {timestep});
    }
    int count = declared[0] > 0 ? (int) declared[0] : rows;
    double[] values = new double[count];
    java.util.Arrays.fill(values, timestep);
    return ModelInput.doubles(values, count);
  }

  /** LCM-distilled UNets take the guidance scale as a sinusoidal embedding (w - 1) * 1000, sin then cos. */
  private Tensor guidanceEmbedding(double guidance, int rows) {
    long[] declared = unet.inputShape("timestep_cond");
    int dimension = (int) declared[declared.length - 1];
    if (dimension <= 0) {
      throw new KilnException.Unsupported("unet timestep_cond has a dynamic embedding size");
    }
    int half = dimension / 2;
    double w = (guidance - 1) * 1000.0;
    float[] row = new float[dimension];
    double rate = Math.log(10000.0) / (half - 1);
    for (int index = 0; index < half; index++) {
      double angle = w * Math.exp(-rate * index);
      row[index] = (float) Math.sin(angle);
      row[half + index] = (float) Math.cos(angle);
    }
    return new Tensor(row, new long[] {1, dimension}).repeat(rows);
  }

  private RgbImage decode(Tensor latents) {
    float[] scaled = latents.data().clone();
    float inverse = (float) (1.0 / folder.vaeScalingFactor());
    for (int index = 0; index < scaled.length; index++) {
      scaled[index] *= inverse;
    }
    String input = vaeDecoder.hasInput("latent_sample") ? "latent_sample" : vaeDecoder.inputs().keySet().iterator().next();
    String output = vaeDecoder.outputs().containsKey("sample") ? "sample" : vaeDecoder.outputs().keySet().iterator().next();
    Tensor image = vaeDecoder.run(Map.of(input, ModelInput.of(new Tensor(scaled, latents.shape()))), List.of(output)).get(output);
    int height = (int) image.dimension(2);
    int width = (int) image.dimension(3);
    int plane = width * height;
    float[] data = image.data();
    byte[] pixels = new byte[plane * 3];
    for (int pixel = 0; pixel < plane; pixel++) {
      for (int channel = 0; channel < 3; channel++) {
        // diffusers: (x / 2 + 0.5).clamp(0, 1), then (x * 255).round()
        double value = Math.min(1.0, Math.max(0.0, data[channel * plane + pixel] / 2.0 + 0.5));
        pixels[pixel * 3 + channel] = (byte) Math.rint(value * 255.0);
      }
    }
    return new RgbImage(width, height, pixels);
  }

  /** img2img: the VAE posterior mean of the image (first half of latent_parameters when mean and log-variance come together), scaled. */
  private Tensor encodeImage(RgbImage image, int batch, StageTimings timings) {
    OnnxModel vaeEncoder = vaeEncoder();
    int plane = image.width() * image.height();
    float[] pixels = new float[plane * 3];
    for (int pixel = 0; pixel < plane; pixel++) {
      for (int channel = 0; channel < 3; channel++) {
        pixels[channel * plane + pixel] = (image.pixels()[pixel * 3 + channel] & 0xff) / 255.0f * 2.0f - 1.0f;
      }
    }
    String input = vaeEncoder.hasInput("sample") ? "sample" : vaeEncoder.inputs().keySet().iterator().next();
    String output = vaeEncoder.outputs().keySet().iterator().next();
    Tensor encoded = timings.time("vae_encoder", () -> vaeEncoder.run(
        Map.of(input, ModelInput.of(new Tensor(pixels, new long[] {1, 3, image.height(), image.width()}))), List.of(output)).get(output));
    int channels = folder.latentChannels();
    long encodedChannels = encoded.dimension(1);
    if (encodedChannels != channels && encodedChannels != 2L * channels) {
      throw new KilnException.Unsupported("vae_encoder output '" + output + "' has " + encodedChannels + " channels, expected "
          + channels + " (latents) or " + 2 * channels + " (mean and log-variance)");
    }
    int latentPlane = (int) (encoded.dimension(2) * encoded.dimension(3));
    float[] mean = new float[channels * latentPlane];
    float scaling = (float) folder.vaeScalingFactor();
    for (int index = 0; index < mean.length; index++) {
      mean[index] = encoded.data()[index] * scaling;
    }
    return new Tensor(mean, new long[] {1, channels, encoded.dimension(2), encoded.dimension(3)}).repeat(batch);
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
