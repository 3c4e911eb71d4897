package dev.kiln.optimizer.precision;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.TensorInfo;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.StagedFolder;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Tensor;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.GenerationResult;
import dev.kiln.runner.pipeline.ModelInput;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.runner.pipeline.StepListener;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Real calibration inputs for every component of a pipeline folder, recorded from Kiln's own runner: a fixed list of
 * prompts (short and long, with and without negative prompts) goes through the tokenizer and text encoder(s) as
 * {@code kiln generate} feeds them; the UNet's inputs are taken from the denoising loop at its early, middle and late
 * steps (classifier-free guidance batched [negative; prompt], as the runner runs it); the VAE decoder's latents are
 * the loop's final ones; and, where the pipeline has a VAE encoder, the decoded images go back through the runner's
 * image-to-image path, whose encoder input is recorded. Every prompt runs at each size (three by default, see
 * {@link #defaultSizes}: the pipeline's own capped at 32 × 32 latents, a non-square one a quarter lower, and the
 * smallest, twice the size multiple), seeded, on one ORT thread: the sets are byte-identical from run to run and
 * machine to machine.
 *
 * <p>Prompts at even positions make the held-in sets (what mixed precision measures ranges on), those at odd
 * positions the held-out sets (what it verifies on), so verification sees other prompts and seeds than calibration,
 * at every size and step.
 *
 * <p>Size: per generation three UNet sets, one VAE decoder set per image, one encoder set per distinct prompt. The
 * defaults (4 prompts × 3 sizes, batch 1, 10 steps) give 36 UNet sets; on the full-size SD 1.5 UNet at 512 × 512
 * one set is 1.2 MB of inputs (the cost is in the calibration run, which exposes every intermediate: keep sizes
 * modest).
 */
public final class PipelineCalibration {
  private PipelineCalibration() {}

  /** A prompt and the negative prompt beside it ("" = none: the unconditional branch encodes the empty prompt). */
  public record Prompt(String text, String negative) {}

  /** An image size in pixels. */
  public record Size(int width, int height) {
    @Override
    public String toString() {
      return width + "x" + height;
    }
  }

  /**
   * What to generate.
   *
   * @param prompts at least two: even positions calibrate, odd positions verify
   * @param sizes image sizes; empty = {@link #defaultSizes}
   * @param steps scheduler steps per generation
   * @param seed prompt i runs with seed {@code seed + i}
   * @param batch images per prompt (the UNet runs twice that under guidance)
   * @param scheduler null = the pipeline's default scheduler
   * @param imageToImage record the VAE encoder's input through the runner's img2img path (where there is an encoder)
   * @param smallestSeeds noise seeds per prompt at the smallest of two or more sizes (see {@link #DEFAULT_SMALLEST_SEEDS})
   */
  public record Options(List<Prompt> prompts, List<Size> sizes, int steps, long seed, int batch, SchedulerKind scheduler,
      boolean imageToImage, int smallestSeeds) {
    public Options {
      prompts = List.copyOf(prompts);
      sizes = List.copyOf(sizes);
      if (prompts.size() < 2) {
        throw new KilnException.BadInput("calibration needs at least two prompts (one to calibrate on, one to verify on), got "
            + prompts.size());
      }
      if (steps < 3) {
        throw new KilnException.BadInput("calibration needs at least 3 steps (early, middle and late), got " + steps);
      }
      if (batch < 1) {
        throw new KilnException.BadInput("calibration batch must be at least 1, got " + batch);
      }
      if (smallestSeeds < 1) {
        throw new KilnException.BadInput("calibration needs at least one seed per prompt at the smallest size, got " + smallestSeeds);
      }
    }

    public static Options defaults() {
      return new Options(DEFAULT_PROMPTS, List.of(), 10, 0, 1, null, true, DEFAULT_SMALLEST_SEEDS);
    }

    public Options withPrompts(List<Prompt> value) {
      return new Options(value, sizes, steps, seed, batch, scheduler, imageToImage, smallestSeeds);
    }

    public Options withSizes(List<Size> value) {
      return new Options(prompts, value, steps, seed, batch, scheduler, imageToImage, smallestSeeds);
    }

    public Options withSteps(int value) {
      return new Options(prompts, sizes, value, seed, batch, scheduler, imageToImage, smallestSeeds);
    }

    public Options withSeed(long value) {
      return new Options(prompts, sizes, steps, value, batch, scheduler, imageToImage, smallestSeeds);
    }

    public Options withBatch(int value) {
      return new Options(prompts, sizes, steps, seed, value, scheduler, imageToImage, smallestSeeds);
    }

    public Options withScheduler(SchedulerKind value) {
      return new Options(prompts, sizes, steps, seed, batch, value, imageToImage, smallestSeeds);
    }

    public Options withImageToImage(boolean value) {
      return new Options(prompts, sizes, steps, seed, batch, scheduler, value, smallestSeeds);
    }

    public Options withSmallestSeeds(int value) {
      return new Options(prompts, sizes, steps, seed, batch, scheduler, imageToImage, value);
    }
  }

  /**
   * Kiln's fixed calibration prompts, written for it: two in the caption grammar of the tiny trained pipeline
   * ({@code testdata/tiny/scenes.py}: colour, shape, size, position, background), two in the style SD users write
   * (subject, medium, light, quality tags), one of them longer than CLIP's 77 tokens so that truncation is exercised;
   * negative prompts are comma-separated quality tags as SD users write them, or none.
   */
  public static final List<Prompt> DEFAULT_PROMPTS = List.of(
      new Prompt("a red circle on a white background", ""),
      new Prompt("a small blue square in the top left, black background", "blurry, low quality"),
      new Prompt("a highly detailed photograph of an old lighthouse on a rocky coast at dusk, dramatic clouds, waves "
          + "crashing on the rocks, warm light in the windows, seagulls in the sky, long exposure, sharp focus, wide angle "
          + "lens, award winning landscape photography, intricate details, golden hour, volumetric light, 8k",
          "lowres, watermark, text, jpeg artifacts, oversaturated"),
      new Prompt("an oil painting of a cat sitting on a windowsill next to a vase of sunflowers, soft morning light",
          "deformed, ugly, extra limbs"));

  /**
   * Noise seeds per prompt at the smallest size (when there are two sizes or more). float16's rounding error at the
   * first denoising step varies from noise to noise with a long tail, and most at the smallest size, where outputs
   * have few elements: on the SD 1.5 fixture UNet's mixed conversion at 64 px, 24 noises gave 2.8e-3 to 9.9e-3 at
   * t = 901 but up to 2.1e-2 at t = 801, while 128 to 256 px stayed under 8.3e-3. One noise per prompt there verified
   * on two first steps and missed the tail; more noises are cheap at the smallest size (a quarter of the largest
   * calibration size's pixels for SD 1.5, a sixteenth for the fixtures) and give the search the tail to refine against.
   */
  public static final int DEFAULT_SMALLEST_SEEDS = 4;

  /** Held-in sets (ranges are measured on them) and held-out sets (verification runs on them). */
  public record Sets(List<CalibrationSets.Set> heldIn, List<CalibrationSets.Set> heldOut) {
    public Sets {
      heldIn = List.copyOf(heldIn);
      heldOut = List.copyOf(heldOut);
    }

    /** Both, interleaved held-in, held-out, ... (the order {@link #write} stores them in). */
    public List<CalibrationSets.Set> interleaved() {
      List<CalibrationSets.Set> all = new ArrayList<>();
      for (int index = 0; index < Math.max(heldIn.size(), heldOut.size()); index++) {
        if (index < heldIn.size()) {
          all.add(heldIn.get(index));
        }
        if (index < heldOut.size()) {
          all.add(heldOut.get(index));
        }
      }
      return all;
    }
  }

  /**
   * The recorded sets per component sub-folder (text_encoder, text_encoder_2, unet, vae_decoder, vae_encoder), and
   * how they were made.
   */
  public record Capture(Map<String, Sets> components, List<Size> sizes, int steps, String scheduler, int prompts,
      long seed, int batch, int smallestSeeds) {
    public Capture {
      components = java.util.Collections.unmodifiableMap(new TreeMap<>(components));
      sizes = List.copyOf(sizes);
    }

    /** The sets of one component sub-folder; null when the pipeline has no such component or it was never called. */
    public Sets component(String folder) {
      return components.get(folder);
    }

    /** One line for reports: where the sets came from. */
    public String describe() {
      StringBuilder counts = new StringBuilder();
      components.forEach((name, sets) -> counts.append(counts.length() == 0 ? "" : ", ").append(name).append(' ')
          .append(sets.heldIn().size()).append('+').append(sets.heldOut().size()));
      String seeds = smallestSeeds > 1 ? String.format(Locale.ROOT, "seeds %d..%d (%d per prompt at the smallest size)", seed,
          seed + (long) prompts * smallestSeeds - 1, smallestSeeds) : String.format(Locale.ROOT, "seeds %d..%d", seed, seed + prompts - 1);
      return String.format(Locale.ROOT, "calibrated from the runner's denoising loop: %d prompts (odd ones held out), "
          + "sizes %s, batch %d, %d %s steps (early, middle and late UNet inputs), %s; sets held-in+held-out: %s",
          prompts, sizes, batch, steps, scheduler, seeds, counts);
    }
  }

  /** Told after each generation (long on full-size models). */
  @FunctionalInterface
  public interface Listener {
    Listener NONE = (done, total) -> {};

    void generationDone(int done, int total);
  }

  public static Capture capture(Path pipeline, Options options) {
    return capture(pipeline, options, Listener.NONE);
  }

  /** The last capture and what it was made from: optimizing one folder for several targets records it once. */
  private static Object lastKey;
  private static Capture lastCapture;

  /**
   * Runs the pipeline in {@code pipeline} (float32, on the CPU, one thread) and records its components' inputs. The
   * result depends only on the folder's files and the options, so the last one is reused while neither changed.
   */
  public static Capture capture(Path pipeline, Options options, Listener listener) {
    Object key = List.of(options, contentKey(pipeline));
    synchronized (PipelineCalibration.class) {
      if (key.equals(lastKey)) {
        return lastCapture;
      }
    }
    Capture capture = record(pipeline, options, listener);
    synchronized (PipelineCalibration.class) {
      lastKey = key;
      lastCapture = capture;
    }
    return capture;
  }

  /** Every file under the folder (links followed) with its size and modification time. */
  private static List<String> contentKey(Path pipeline) {
    List<String> files = new ArrayList<>();
    try (java.util.stream.Stream<Path> paths = Files.walk(pipeline, java.nio.file.FileVisitOption.FOLLOW_LINKS)) {
      for (Path path : (Iterable<Path>) paths.sorted()::iterator) {
        if (Files.isRegularFile(path)) {
          files.add(path.toRealPath() + ":" + Files.size(path) + ":" + Files.getLastModifiedTime(path).toMillis());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read pipeline folder " + pipeline + ": " + e.getMessage(), e);
    }
    return files;
  }

  /** A fresh recording (no reuse). */
  static Capture record(Path pipeline, Options options, Listener listener) {
    PipelineFolder folder = PipelineFolder.open(pipeline);
    List<Size> sizes = options.sizes().isEmpty() ? defaultSizes(folder) : options.sizes();
    Recorder recorder = new Recorder();
    // One thread: ORT's CPU kernels may split reductions by thread count; the sets must not depend on the machine.
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(folder, Device.CPU, 1, warning -> {})) {
      runner.listenToModelCalls(recorder::record);
      Size smallest = smallest(sizes);
      int prompts = options.prompts().size();
      int total = prompts * (sizes.size() + (smallest == null ? 0 : options.smallestSeeds() - 1));
      int done = 0;
      String schedulerName = null;
      for (int index = 0; index < prompts; index++) {
        Prompt prompt = options.prompts().get(index);
        boolean heldOut = index % 2 == 1;
        for (Size size : sizes) {
          for (int noise = 0; noise < (size.equals(smallest) ? options.smallestSeeds() : 1); noise++) {
            // Prompt i's seeds: seed + i, then seed + i + prompts, ... (distinct from every other prompt's).
            long seed = options.seed() + index + (long) noise * prompts;
            String label = String.format(Locale.ROOT, noise == 0 ? "prompt %d, %s" : "prompt %d, %s, seed %d", index, size, seed);
            GenerationRequest request = GenerationRequest.of(prompt.text(), seed)
                .withNegativePrompt(prompt.negative()).withSteps(options.steps()).withSize(size.width(), size.height())
                .withBatch(options.batch());
            if (options.scheduler() != null) {
              request = request.withScheduler(options.scheduler());
            }
            recorder.begin(label, heldOut);
            GenerationResult result = runner.generate(request, recorder.steps());
            recorder.endGeneration();
            schedulerName = result.scheduler().cliName();
            if (options.imageToImage() && folder.hasVaeEncoder()) {
              // The encoder's input as img2img feeds it: this generation's first image. One noised step is enough (only
              // the encoder's call is kept; the UNet's inputs come from the text-to-image loops).
              recorder.begin(label + ", img2img", heldOut);
              recorder.only("vae_encoder");
              runner.generate(request.withInitImage(result.images().get(0), 0.5).withSteps(2).withBatch(1)
                  .withScheduler(SchedulerKind.DDIM), StepListener.NONE);
              recorder.endGeneration();
            }
            listener.generationDone(++done, total);
          }
        }
      }
      return new Capture(recorder.sets(), sizes, options.steps(), schedulerName, options.prompts().size(), options.seed(),
          options.batch(), smallest == null ? 1 : options.smallestSeeds());
    }
  }

  /** The smallest size by area where there are two or more sizes and it is smaller than another; else null. */
  static Size smallest(List<Size> sizes) {
    Size smallest = null;
    long largest = 0;
    for (Size size : sizes) {
      long area = (long) size.width() * size.height();
      largest = Math.max(largest, area);
      if (smallest == null || area < (long) smallest.width() * smallest.height()) {
        smallest = size;
      }
    }
    return smallest != null && (long) smallest.width() * smallest.height() < largest ? smallest : null;
  }

  /**
   * The largest latent area calibration runs at by default: 32 × 32 latents (256 × 256 pixels for SD 1.5). The
   * calibration run exposes every intermediate at once; at 64 × 64 latents the SD 1.5 UNet's attention scores alone
   * are 1 GB per layer. Activation peaks of a diffusion model depend on the content far more than on the size.
   */
  static final int LATENT_AREA_BUDGET = 32 * 32;

  /**
   * The sizes calibration records at, each with held-in and held-out prompts, so that mixed precision verifies at the
   * ends of the range users generate at, not only at one size: the pipeline's default size (capped at
   * {@link #LATENT_AREA_BUDGET}; the largest), a non-square one a quarter lower, and the smallest, twice the size
   * multiple square (the deepest UNet level at 2 × 2 latents; below it that level is a single latent).
   * Activation peaks hardly depend on the size, but float16's rounding error does: at the smallest sizes every
   * GroupNorm averages over few values and attention over few tokens, so the same float16 nodes that pass at the
   * default size miss at the smallest (the SD 1.5 fixture UNet: 3.4e-3 at 128 px, 1.2e-2 at 64 px). All multiples of
   * what the UNet divides by; duplicates dropped (a small pipeline's default may be its smallest). A folder
   * specialized by {@code --static} runs at its one size.
   */
  static List<Size> defaultSizes(PipelineFolder folder) {
    if (folder.staticWidth() > 0 && folder.staticHeight() > 0) {
      return List.of(new Size(folder.staticWidth(), folder.staticHeight()));
    }
    int multiple = folder.sizeMultiple();
    int factor = folder.vaeScaleFactor();
    int size = folder.defaultSize();
    while (size > multiple && (long) (size / factor) * (size / factor) > LATENT_AREA_BUDGET) {
      size = Math.max(multiple, (size / 2) / multiple * multiple);
    }
    int lower = Math.max(multiple, (size * 3 / 4) / multiple * multiple);
    if (lower == size) {
      lower = size + multiple;
    }
    int smallest = Math.min(size, 2 * multiple);
    java.util.LinkedHashSet<Size> sizes = new java.util.LinkedHashSet<>(
        List.of(new Size(size, size), new Size(size, lower), new Size(smallest, smallest)));
    return List.copyOf(sizes);
  }

  /**
   * Writes the sets in the ONNX test-data layout, one sub-folder per component ({@code unet/test_data_set_N/input_K.pb},
   * K in the model's input order, each tensor named after its input), the layout {@code --calibration DIR} reads.
   * Sets are interleaved held-in, held-out: mixed precision's split of a user folder (even sets calibrate, odd sets
   * verify) gives the same halves back. Staged and swapped whole, as {@code target}'s rules say.
   */
  public static void write(Capture capture, OutputTarget target) {
    target.check();
    try (StagedFolder staged = target.stageFolder()) {
      write(capture, staged.path());
      staged.commit();
    }
  }

  /** Writes into {@code folder} (an empty staging folder). */
  public static void write(Capture capture, Path folder) {
    try {
      for (Map.Entry<String, Sets> component : capture.components().entrySet()) {
        List<CalibrationSets.Set> sets = component.getValue().interleaved();
        for (int index = 0; index < sets.size(); index++) {
          Path set = folder.resolve(component.getKey()).resolve("test_data_set_" + index);
          Files.createDirectories(set);
          int input = 0;
          for (Map.Entry<String, CalibrationSets.Feed> feed : sets.get(index).feeds().entrySet()) {
            Files.write(set.resolve("input_" + input++ + ".pb"), ModelWriter.tensorBytes(tensor(feed.getValue()), feed.getKey()));
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write calibration sets to " + folder + ": " + e.getMessage(), e);
    }
  }

  private static Tensor tensor(CalibrationSets.Feed feed) {
    if (feed.values() instanceof float[] floats) {
      return Tensor.ofFloats(feed.shape(), floats);
    }
    if (feed.values() instanceof long[] longs) {
      return Tensor.ofLongs(feed.shape(), longs);
    }
    return Tensor.ofInts(feed.shape(), (int[]) feed.values());
  }

  /** Records the calls of one generation at a time and keeps what calibration needs. */
  private static final class Recorder {
    private final Map<String, List<CalibrationSets.Set>> heldIn = new TreeMap<>();
    private final Map<String, List<CalibrationSets.Set>> heldOut = new TreeMap<>();
    /** Every set kept per component by fingerprint: a prompt encoded again (another size) is kept once. */
    private final Map<String, Map<String, List<CalibrationSets.Set>>> seen = new TreeMap<>();
    private final List<Call> unetCalls = new ArrayList<>();
    private String label;
    private boolean heldOutNow;
    private String onlyComponent;
    private int step = -1;

    private record Call(int step, CalibrationSets.Set set) {}

    void begin(String label, boolean heldOut) {
      this.label = label;
      this.heldOutNow = heldOut;
      this.onlyComponent = null;
      this.step = -1;
      unetCalls.clear();
    }

    void only(String component) {
      onlyComponent = component;
    }

    StepListener steps() {
      return new StepListener() {
        @Override
        public void unetInputs(int index, Map<String, ModelInput> inputs) {
          step = index;
        }
      };
    }

    void record(String component, Map<String, OnnxTensor> feeds) {
      if (onlyComponent != null && !onlyComponent.equals(component)) {
        return;
      }
      Map<String, CalibrationSets.Feed> copy = new LinkedHashMap<>();
      feeds.forEach((name, tensor) -> copy.put(name, feed(component, name, tensor)));
      if (component.equals("unet")) {
        unetCalls.add(new Call(step, new CalibrationSets.Set(label + ", step " + step, copy)));
      } else {
        keep(component, new CalibrationSets.Set(label, copy));
      }
    }

    /** The UNet's calls at the loop's first, middle and last step (every chunk of those steps). */
    void endGeneration() {
      TreeSet<Integer> steps = new TreeSet<>();
      unetCalls.forEach(call -> steps.add(call.step()));
      if (!steps.isEmpty()) {
        List<Integer> ordered = new ArrayList<>(steps);
        java.util.Set<Integer> chosen = new TreeSet<>(List.of(ordered.get(0), ordered.get(ordered.size() / 2),
            ordered.get(ordered.size() - 1)));
        for (Call call : unetCalls) {
          if (chosen.contains(call.step()) && onlyComponent == null) {
            keep("unet", call.set());
          }
        }
      }
      unetCalls.clear();
    }

    private void keep(String component, CalibrationSets.Set set) {
      List<CalibrationSets.Set> alike = seen.computeIfAbsent(component, key -> new java.util.HashMap<>())
          .computeIfAbsent(fingerprint(set), key -> new ArrayList<>());
      // A fingerprint is a hash: the same one is a repeat only when every value is equal too.
      if (alike.stream().anyMatch(other -> sameValues(other, set))) {
        return;
      }
      alike.add(set);
      (heldOutNow ? heldOut : heldIn).computeIfAbsent(component, key -> new ArrayList<>()).add(set);
    }

    Map<String, Sets> sets() {
      Map<String, Sets> result = new TreeMap<>();
      TreeSet<String> components = new TreeSet<>(heldIn.keySet());
      components.addAll(heldOut.keySet());
      for (String component : components) {
        result.put(component, new Sets(heldIn.getOrDefault(component, List.of()), heldOut.getOrDefault(component, List.of())));
      }
      return result;
    }
  }

  private static boolean sameValues(CalibrationSets.Set a, CalibrationSets.Set b) {
    if (!a.feeds().keySet().equals(b.feeds().keySet())) {
      return false;
    }
    for (Map.Entry<String, CalibrationSets.Feed> entry : a.feeds().entrySet()) {
      CalibrationSets.Feed other = b.feeds().get(entry.getKey());
      if (!Arrays.equals(entry.getValue().shape(), other.shape())
          || !Arrays.deepEquals(new Object[] {entry.getValue().values()}, new Object[] {other.values()})) {
        return false;
      }
    }
    return true;
  }

  /** Shapes and values of every feed (a prompt repeated at another size encodes to the same set). */
  private static String fingerprint(CalibrationSets.Set set) {
    StringBuilder text = new StringBuilder();
    set.feeds().forEach((name, feed) -> {
      text.append(name).append(Arrays.toString(feed.shape()));
      if (feed.values() instanceof float[] floats) {
        text.append(Arrays.hashCode(floats)).append(':').append(floats.length);
      } else if (feed.values() instanceof long[] longs) {
        text.append(Arrays.toString(longs));
      } else {
        text.append(Arrays.toString((int[]) feed.values()));
      }
    });
    return text.toString();
  }

  /** A copy of what ORT was fed; calibration measures float32 graphs, so float16 or float64 inputs are refused. */
  private static CalibrationSets.Feed feed(String component, String name, OnnxTensor tensor) {
    TensorInfo info = tensor.getInfo();
    long[] shape = info.getShape();
    int count = Math.toIntExact(info.getNumElements());
    ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
    if (info.type == OnnxJavaType.FLOAT) {
      float[] values = new float[count];
      bytes.asFloatBuffer().get(values);
      return new CalibrationSets.Feed(shape, values);
    }
    if (info.type == OnnxJavaType.INT64) {
      long[] values = new long[count];
      bytes.asLongBuffer().get(values);
      return new CalibrationSets.Feed(shape, values);
    }
    if (info.type == OnnxJavaType.INT32) {
      int[] values = new int[count];
      bytes.asIntBuffer().get(values);
      return new CalibrationSets.Feed(shape, values);
    }
    throw new KilnException.Unsupported(component + " input " + dev.kiln.common.Printable.quoted(name) + " is " + info.type
        + ": calibration records float32 pipelines (float, int64 and int32 inputs); calibrate the float32 export");
  }
}
