package dev.kiln.runner.pipeline;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.kiln.common.ExternalDataRules;
import dev.kiln.common.HalfFloats;
import dev.kiln.common.KilnException;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One ORT session for one pipeline component, created once and closed with the pipeline. It knows the
 * declared inputs and outputs, checks a caller's shapes against static dimensions before ORT sees them
 * (so the error names the flag to change), and converts values to and from the declared element types.
 */
public final class OnnxModel implements AutoCloseable {
  private final String component;
  private final Path file;
  private final OrtEnvironment environment;
  private final OrtSession session;
  private final Map<String, TensorInfo> inputs = new LinkedHashMap<>();
  private final Map<String, TensorInfo> outputs = new LinkedHashMap<>();
  private final long creationNanos;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();
  private volatile ModelCallListener callListener = ModelCallListener.NONE;

  private OnnxModel(String component, Path file, OrtEnvironment environment, OrtSession session, long creationNanos) throws OrtException {
    this.component = component;
    this.file = file;
    this.environment = environment;
    this.session = session;
    this.creationNanos = creationNanos;
    for (Map.Entry<String, NodeInfo> entry : session.getInputInfo().entrySet()) {
      inputs.put(entry.getKey(), tensorInfo(entry.getValue()));
    }
    for (Map.Entry<String, NodeInfo> entry : session.getOutputInfo().entrySet()) {
      outputs.put(entry.getKey(), tensorInfo(entry.getValue()));
    }
  }

  private TensorInfo tensorInfo(NodeInfo node) {
    if (!(node.getInfo() instanceof TensorInfo info)) {
      throw new KilnException.Unsupported(component + " model " + file + ": '" + node.getName() + "' is not a tensor");
    }
    return info;
  }

  /** Opens {@code file} (by path, so external data next to it loads) with the given options, on the CPU. */
  static OnnxModel open(String component, Path file, OrtEnvironment environment, OrtSession.SessionOptions options) {
    return open(component, file, environment, options, Device.CPU);
  }

  /**
   * ORT's contrib operators that Kiln's cuda profile emits and that ONNX Runtime implements only for CUDA (and
   * ROCm): a model holding them was optimized for a GPU and cannot open on the CPU.
   */
  static final Set<String> GPU_ONLY_OPERATORS = Set.of("NhwcConv", "GroupNorm", "SkipGroupNorm", "BiasSplitGelu", "BiasAdd");
  private static final Pattern MISSING_KERNEL = Pattern.compile("Could not find an implementation for (\\w+)\\((\\d+)\\) node with name '([^']*)'");

  /**
   * Opens {@code file} for {@code device}. The model is checked first, before ORT reads anything: its external
   * data must obey {@link ExternalDataRules}, and on the CPU it must not hold operators only CUDA implements.
   */
  static OnnxModel open(String component, Path file, OrtEnvironment environment, OrtSession.SessionOptions options, Device device) {
    return open(component, file, environment, options, device, null);
  }

  /**
   * {@link #open(String, Path, OrtEnvironment, OrtSession.SessionOptions, Device)} through {@code cache} (null: none)
   * on the CPU: a large model opens from ORT's optimized copy, which {@code options} must optimize at the cache's
   * level; a copy ORT cannot open is discarded and the original opened.
   */
  static OnnxModel open(String component, Path file, OrtEnvironment environment, OrtSession.SessionOptions options, Device device,
      OptimizedModelCache cache) {
    if (!Files.isRegularFile(file)) {
      throw new KilnException.BadInput("missing " + component + " model " + file);
    }
    // ORT reads external data wherever the model points; the same rules as graph's reader apply first.
    Set<String> gpuOnly = new TreeSet<>();
    boolean[] hasConv = {false};
    Set<Path> externalFiles = ExternalDataRules.checkModelFiles(file, (domain, type) -> {
      if (domain.equals("com.microsoft") && GPU_ONLY_OPERATORS.contains(type)) {
        gpuOnly.add(type);
      }
      if ((domain.isEmpty() || domain.equals("ai.onnx")) && type.equals("Conv")) {
        hasConv[0] = true;
      }
    });
    if (device == Device.CPU && !gpuOnly.isEmpty()) {
      throw new KilnException.Unsupported(component + " model " + file + " was optimized for CUDA: it uses com.microsoft "
          + String.join(", ", gpuOnly) + ", which ONNX Runtime implements only on NVIDIA GPUs; run it with --device cuda on a machine"
          + " with one, or optimize the original model with --target cpu");
    }
    long start = System.nanoTime();
    try {
      OrtSession session = null;
      OptimizedModelCache.Entry cached = device == Device.CPU && cache != null ? cache.optimized(file, externalFiles, hasConv[0], environment) : null;
      if (cached != null) {
        try {
          session = environment.createSession(cached.model().toString(), options);
        } catch (OrtException e) {
          cache.discard(cached);
        }
      }
      if (session == null) {
        session = environment.createSession(file.toString(), options);
      }
      try {
        return new OnnxModel(component, file, environment, session, System.nanoTime() - start);
      } catch (RuntimeException | OrtException e) {
        session.close();
        throw e;
      }
    } catch (OrtException e) {
      Matcher missing = MISSING_KERNEL.matcher(String.valueOf(e.getMessage()));
      if (missing.find()) {
        throw new KilnException.Unsupported(component + " model " + file + ": ONNX Runtime has no " + device.cliName() + " kernel for "
            + missing.group(1) + " (opset " + missing.group(2) + ", node '" + printable(missing.group(3)) + "'); the model was built for"
            + " another target: run it on the device it was optimized for, or optimize the original model for --target "
            + device.cliName(), e);
      }
      throw new KilnException.BadInput("cannot load " + component + " model " + file + ": "
          + printable(String.valueOf(e.getMessage()).lines().findFirst().orElse("")), e);
    }
  }

  /** ORT quotes node names from the model, which may hold control characters; they are shown escaped. */
  private static String printable(String text) {
    StringBuilder result = new StringBuilder();
    text.codePoints().forEach(point -> {
      if (Character.isISOControl(point)) {
        result.append(String.format("\\u%04x", point));
      } else {
        result.appendCodePoint(point);
      }
    });
    return result.toString();
  }

  public String component() {
    return component;
  }

  public long creationNanos() {
    return creationNanos;
  }

  public boolean hasInput(String name) {
    return inputs.containsKey(name);
  }

  public Map<String, TensorInfo> inputs() {
    return inputs;
  }

  public Map<String, TensorInfo> outputs() {
    return outputs;
  }

  /** The declared shape of an input: -1 where a dimension is symbolic. */
  public long[] inputShape(String name) {
    return inputs.get(name).getShape();
  }

  public OnnxJavaType inputType(String name) {
    return inputs.get(name).type;
  }

  /** Tells {@code listener} of every later {@link #run} (calibration records real inputs). */
  void listen(ModelCallListener listener) {
    callListener = listener == null ? ModelCallListener.NONE : listener;
  }

  /** Runs the model; inputs the model does not declare are skipped, declared ones that are missing fail. */
  public Map<String, Tensor> run(Map<String, ModelInput> values, List<String> wanted) {
    List<OnnxTensor> created = new ArrayList<>();
    try {
      Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
      for (Map.Entry<String, TensorInfo> declared : inputs.entrySet()) {
        ModelInput value = values.get(declared.getKey());
        if (value == null) {
          throw new KilnException.Unsupported(component + " model " + file + " has input '" + declared.getKey() + "' "
              + declared.getValue().type + Arrays.toString(declared.getValue().getShape()) + " that Kiln does not know how to feed");
        }
        checkShape(declared.getKey(), declared.getValue().getShape(), value.shape());
        OnnxTensor tensor = convert(value, declared.getValue().type, declared.getKey());
        created.add(tensor);
        feeds.put(declared.getKey(), tensor);
      }
      callListener.modelCalled(component, java.util.Collections.unmodifiableMap(feeds));
      java.util.Set<String> requested = new java.util.LinkedHashSet<>(wanted.isEmpty() ? outputs.keySet() : wanted);
      try (OrtSession.Result result = session.run(feeds, requested)) {
        Map<String, Tensor> produced = new LinkedHashMap<>();
        for (String name : requested) {
          OnnxValue output = result.get(name).orElseThrow();
          produced.put(name, toTensor((OnnxTensor) output, name));
        }
        return produced;
      }
    } catch (OrtException e) {
      throw new KilnException.BadInput(component + " model " + file + " failed to run: " + e.getMessage(), e);
    } finally {
      for (OnnxTensor tensor : created) {
        tensor.close();
      }
    }
  }

  private void checkShape(String name, long[] declared, long[] given) {
    boolean rankMismatch = declared.length != given.length;
    boolean dimensionMismatch = false;
    for (int axis = 0; !rankMismatch && axis < declared.length; axis++) {
      dimensionMismatch |= declared[axis] > 0 && declared[axis] != given[axis];
    }
    if (rankMismatch || dimensionMismatch) {
      throw new KilnException.BadInput(component + " model " + file + ": input '" + name + "' is declared "
          + Arrays.toString(declared) + " (-1 = dynamic) but this generation needs " + Arrays.toString(given)
          + (name.equals("sample") || name.equals("latent_sample")
              ? "; use the --width/--height (and --batch) the model was exported for, or export it with dynamic axes" : ""));
    }
  }

  private OnnxTensor convert(ModelInput value, OnnxJavaType type, String name) throws OrtException {
    int count = value.length();
    long[] shape = value.shape();
    switch (type) {
      case FLOAT -> {
        float[] data = value.data() instanceof float[] floats ? floats : new float[count];
        if (!(value.data() instanceof float[])) {
          for (int index = 0; index < count; index++) {
            data[index] = (float) value.valueAt(index);
          }
        }
        return OnnxTensor.createTensor(environment, FloatBuffer.wrap(data), shape);
      }
      case FLOAT16 -> {
        short[] data = new short[count];
        for (int index = 0; index < count; index++) {
          data[index] = HalfFloats.toFloat16((float) value.valueAt(index));
        }
        return OnnxTensor.createTensor(environment, ShortBuffer.wrap(data), shape, OnnxJavaType.FLOAT16);
      }
      case DOUBLE -> {
        double[] data = new double[count];
        for (int index = 0; index < count; index++) {
          data[index] = value.valueAt(index);
        }
        return OnnxTensor.createTensor(environment, DoubleBuffer.wrap(data), shape);
      }
      case INT64 -> {
        long[] data = value.data() instanceof long[] longs ? longs : new long[count];
        if (!(value.data() instanceof long[])) {
          // Truncation, as numpy's astype(int64) in the diffusers ONNX pipelines does for float timesteps.
          for (int index = 0; index < count; index++) {
            data[index] = (long) value.valueAt(index);
          }
        }
        return OnnxTensor.createTensor(environment, LongBuffer.wrap(data), shape);
      }
      case INT32 -> {
        int[] data = new int[count];
        for (int index = 0; index < count; index++) {
          data[index] = (int) value.valueAt(index);
        }
        return OnnxTensor.createTensor(environment, IntBuffer.wrap(data), shape);
      }
      default -> throw new KilnException.Unsupported(component + " model " + file + ": input '" + name + "' has element type "
          + type + ", which Kiln does not feed");
    }
  }

  private Tensor toTensor(OnnxTensor tensor, String name) {
    TensorInfo info = tensor.getInfo();
    long[] shape = info.getShape();
    float[] data = new float[(int) info.getNumElements()];
    switch (info.type) {
      case FLOAT -> tensor.getFloatBuffer().get(data);
      case FLOAT16 -> {
        ShortBuffer halves = tensor.getShortBuffer();
        for (int index = 0; index < data.length; index++) {
          data[index] = HalfFloats.fromFloat16(halves.get(index));
        }
      }
      case DOUBLE -> {
        DoubleBuffer doubles = tensor.getDoubleBuffer();
        for (int index = 0; index < data.length; index++) {
          data[index] = (float) doubles.get(index);
        }
      }
      default -> throw new KilnException.Unsupported(component + " model " + file + ": output '" + name + "' has element type "
          + info.type + ", expected a float type");
    }
    return new Tensor(data, shape);
  }

  /** Closes the session once; a stage and its pipeline may both close it. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      session.close();
    } catch (OrtException e) {
      throw new IllegalStateException("cannot close " + component + " session: " + e.getMessage(), e);
    }
  }
}
