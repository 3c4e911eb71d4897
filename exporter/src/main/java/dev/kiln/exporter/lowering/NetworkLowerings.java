package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Layers: linear, convolution, matrix products, attention, normalizations, embedding, upsampling. */
final class NetworkLowerings {
  private NetworkLowerings() {}

  /**
   * torch's Linear export: {@code Gemm(x, W, b, transB=1)} on 2-D input, else {@code MatMul(x, Wᵀ)} then
   * {@code Add(b, ·)}. Wᵀ is an initializer transposed lazily while the model is written, one tensor at a time.
   */
  static Object linear(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("input");
    TensorValue weight = arguments.tensor("weight");
    boolean hasBias = !arguments.isNone("bias");
    if (input.rank() == 2 && hasBias) {
      Value result = emitter.op(Onnx.GEMM, List.of(input.value(emitter), weight.value(emitter), arguments.tensor("bias").value(emitter)),
          Attribute.ofFloat("alpha", 1f), Attribute.ofFloat("beta", 1f), Attribute.ofInt("transB", 1));
      return TensorValue.of(result, input.dataType(), 2);
    }
    Value product = emitter.op(Onnx.MAT_MUL, List.of(input.value(emitter), transposedWeight(weight, emitter)));
    if (!hasBias) {
      return TensorValue.of(product, input.dataType(), input.rank());
    }
    Value result = emitter.op(Onnx.ADD, List.of(arguments.tensor("bias").value(emitter), product));
    return TensorValue.of(result, input.dataType(), input.rank());
  }

  private static Value transposedWeight(TensorValue weight, Emitter emitter) {
    Tensor source = Interpreter.initializer(weight);
    if (source == null || source.dims().length != 2) {
      return emitter.op(Onnx.TRANSPOSE, List.of(weight.value(emitter)), Attribute.ofInts("perm", 1, 0));
    }
    long rows = source.dims()[0];
    long columns = source.dims()[1];
    int elementBytes = source.dataType().bitWidth() / 8;
    // Computed when the model is written, one weight at a time: read with positional reads (not a map that would
    // stay resident), transposed, handed to the writer and dropped.
    Tensor transposed = Tensor.computed(source.dataType(), new long[] {columns, rows}, () -> transpose(source, rows, columns, elementBytes));
    return emitter.graph().addInitializer(emitter.reserveName(weight.value(emitter).name() + ".transposed"), transposed);
  }

  private static ByteBuffer transpose(Tensor source, long rows, long columns, int elementBytes) {
    ByteBuffer from = readFully(source);
    ByteBuffer to = ByteBuffer.allocate((int) (rows * columns * elementBytes)).order(ByteOrder.LITTLE_ENDIAN);
    if (elementBytes == 4) {
      java.nio.IntBuffer input = from.asIntBuffer();
      java.nio.IntBuffer output = to.asIntBuffer();
      for (int row = 0; row < rows; row++) {
        for (int column = 0; column < columns; column++) {
          output.put((int) (column * rows + row), input.get((int) (row * columns + column)));
        }
      }
      return to;
    }
    byte[] element = new byte[elementBytes];
    for (long row = 0; row < rows; row++) {
      for (long column = 0; column < columns; column++) {
        from.get((int) ((row * columns + column) * elementBytes), element);
        to.put((int) ((column * rows + row) * elementBytes), element);
      }
    }
    return to;
  }

  private static ByteBuffer readFully(Tensor source) {
    if (!(source instanceof ExternalTensor external)) {
      return source.bytes().order(ByteOrder.LITTLE_ENDIAN);
    }
    ByteBuffer buffer = ByteBuffer.allocate((int) external.length()).order(ByteOrder.LITTLE_ENDIAN);
    try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(external.file(), java.nio.file.StandardOpenOption.READ)) {
      while (buffer.hasRemaining()) {
        if (channel.read(buffer, external.offset() + buffer.position()) < 0) {
          throw new java.io.UncheckedIOException(new java.io.EOFException(external.file() + " ends inside a weight"));
        }
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException("cannot read " + external.file() + ": " + e.getMessage(), e);
    }
    return buffer.flip();
  }

  static Object convolution(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("input");
    TensorValue weight = arguments.tensor("weight");
    Tensor weightTensor = Interpreter.initializer(weight);
    if (weightTensor == null) {
      throw new LoweringException("convolution with a computed weight");
    }
    long[] kernel = Arrays.copyOfRange(weightTensor.dims(), 2, weightTensor.dims().length);
    long[] padding = arguments.constantLongs("padding");
    long[] pads = new long[2 * padding.length];
    for (int axis = 0; axis < padding.length; axis++) {
      pads[axis] = padding[axis];
      pads[padding.length + axis] = padding[axis];
    }
    List<Value> inputs = new ArrayList<>(List.of(input.value(emitter), weight.value(emitter)));
    if (!arguments.isNone("bias")) {
      inputs.add(arguments.tensor("bias").value(emitter));
    }
    List<Attribute> attributes = new ArrayList<>(List.of(Attribute.ofInts("dilations", arguments.constantLongs("dilation")),
        Attribute.ofInt("group", arguments.constantLong("groups")), Attribute.ofInts("kernel_shape", kernel), Attribute.ofInts("pads", pads),
        Attribute.ofInts("strides", arguments.constantLongs("stride"))));
    boolean transposed = arguments.constantBool("transposed");
    if (transposed) {
      attributes.add(Attribute.ofInts("output_padding", arguments.constantLongs("output_padding")));
    }
    Value result = emitter.op(transposed ? Onnx.CONV_TRANSPOSE : Onnx.CONV, inputs, attributes.toArray(new Attribute[0]));
    return TensorValue.of(result, input.dataType(), input.rank());
  }

  static Object matmul(Arguments arguments, Emitter emitter, String otherName) {
    TensorValue left = arguments.tensor("self");
    TensorValue right = arguments.tensor(otherName);
    // A 1-D operand loses its dim in the product, as in numpy's matmul.
    int rank = left.rank() == 1 || right.rank() == 1 ? Math.max(left.rank(), right.rank()) - 1 : Math.max(left.rank(), right.rank());
    if (left.rank() == 1 && right.rank() == 1) {
      rank = 0;
    }
    Value result = emitter.op(Onnx.MAT_MUL, List.of(left.value(emitter), right.value(emitter)));
    return TensorValue.of(result, left.dataType(), rank);
  }

  /** torch's export: {@code Add(Mul(input, β), Mul(MatMul(b1, b2), α))}. */
  static Object baddbmm(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    TensorValue first = arguments.tensor("batch1");
    DataType type = first.dataType();
    Value product = emitter.op(Onnx.MAT_MUL, List.of(first.value(emitter), arguments.tensor("batch2").value(emitter)));
    double alpha = arguments.constantDouble("alpha");
    double beta = arguments.constantDouble("beta");
    Value scaledProduct = alpha == 1 ? product : emitter.op(Onnx.MUL, List.of(product, emitter.scalarFloat(type, alpha)));
    Value scaledInput = beta == 1 ? input.value(emitter) : emitter.op(Onnx.MUL, List.of(input.value(emitter), emitter.scalarFloat(type, beta)));
    return TensorValue.of(emitter.op(Onnx.ADD, List.of(scaledInput, scaledProduct)), type, 3);
  }

  static Object einsum(Arguments arguments, Emitter emitter) {
    String equation = String.valueOf(arguments.get("equation")).replace(" ", "");
    Object tensors = arguments.get("tensors");
    if (!(tensors instanceof List<?> list)) {
      throw new LoweringException("einsum without a tensor list");
    }
    List<Value> inputs = new ArrayList<>();
    DataType type = null;
    for (Object item : list) {
      TensorValue tensor = Values.asTensor(item, emitter);
      type = type == null ? tensor.dataType() : type;
      inputs.add(tensor.value(emitter));
    }
    if (equation.contains("...")) {
      throw new LoweringException("einsum with an ellipsis");
    }
    int rank;
    int arrow = equation.indexOf("->");
    if (arrow >= 0) {
      rank = equation.length() - arrow - 2;
    } else {
      // Implicit output: the letters that appear once, in alphabetical order.
      rank = 0;
      for (char letter = 'A'; letter <= 'z'; letter++) {
        final char candidate = letter;
        if (Character.isLetter(letter) && equation.chars().filter(character -> character == candidate).count() == 1) {
          rank++;
        }
      }
    }
    return TensorValue.of(emitter.op(Onnx.EINSUM, inputs, Attribute.ofString("equation", equation)), type, rank);
  }

  /**
   * {@code softmax(q·kᵀ·scale + mask)·v}; scale defaults to {@code 1/√E} read from q's last dim, a causal mask is
   * built from the query and key lengths.
   */
  static Object scaledDotProductAttention(Arguments arguments, Emitter emitter) {
    TensorValue query = arguments.tensor("query");
    TensorValue key = arguments.tensor("key");
    TensorValue value = arguments.tensor("value");
    DataType type = query.dataType();
    if (arguments.constantDouble("dropout_p") != 0) {
      throw new LoweringException("scaled_dot_product_attention with dropout (export an eval-mode module)");
    }
    TensorValue keyTransposed = ShapeLowerings.transpose(key, -2, -1, emitter);
    Value scores = emitter.op(Onnx.MAT_MUL, List.of(query.value(emitter), keyTransposed.value(emitter)));
    Value scale;
    if (arguments.isNone("scale")) {
      Value depth = emitter.dim(query.value(emitter), query.rank() - 1, null).value();
      Value depthFloat = emitter.op(Onnx.CAST, List.of(depth), Attribute.ofInt("to", type.number()));
      scale = emitter.op(Onnx.DIV, List.of(emitter.scalarFloat(type, 1), emitter.op(Onnx.SQRT, depthFloat)));
    } else {
      scale = emitter.scalarFloat(type, arguments.constantDouble("scale"));
    }
    scores = emitter.op(Onnx.MUL, List.of(scores, scale));
    int rank = Math.max(query.rank(), key.rank());
    if (arguments.constantBool("is_causal")) {
      Value queryLength = emitter.op(Onnx.UNSQUEEZE, List.of(emitter.dim(query.value(emitter), query.rank() - 2, null).value(), emitter.constantLongs(0)));
      Value keyLength = emitter.op(Onnx.UNSQUEEZE, List.of(emitter.dim(key.value(emitter), key.rank() - 2, null).value(), emitter.constantLongs(0)));
      Value size = emitter.op(Onnx.CONCAT, List.of(queryLength, keyLength), Attribute.ofInt("axis", 0));
      Value ones = emitter.op(Onnx.CONSTANT_OF_SHAPE, List.of(size), Attribute.ofTensor("value", Emitter.tensor(DataType.FLOAT, new long[] {1}, new double[] {1})));
      Value lower = emitter.op(Onnx.TRILU, List.of(ones), Attribute.ofInt("upper", 0));
      Value allowed = emitter.op(Onnx.CAST, List.of(lower), Attribute.ofInt("to", DataType.BOOL.number()));
      scores = emitter.op(Onnx.WHERE, List.of(allowed, scores, emitter.scalarFloat(type, Double.NEGATIVE_INFINITY)));
    }
    Object mask = arguments.get("attn_mask");
    if (mask != PickleObjects.NONE) {
      TensorValue maskTensor = Values.asTensor(mask, emitter);
      if (maskTensor.dataType() == DataType.BOOL) {
        scores = emitter.op(Onnx.WHERE, List.of(maskTensor.value(emitter), scores, emitter.scalarFloat(type, Double.NEGATIVE_INFINITY)));
      } else {
        scores = emitter.op(Onnx.ADD, List.of(scores, Values.cast(maskTensor, type, emitter).value(emitter)));
      }
      rank = Math.max(rank, maskTensor.rank());
    }
    Value probabilities = emitter.op(Onnx.SOFTMAX, List.of(scores), Attribute.ofInt("axis", -1));
    return TensorValue.of(emitter.op(Onnx.MAT_MUL, List.of(probabilities, value.value(emitter))), type, rank);
  }

  /**
   * torch's GroupNorm export: {@code Reshape[0,G,-1] → InstanceNormalization(ones[G], zeros[G], ε) →
   * Reshape(Shape(x)) → Mul(γ[C,1,1]) → Add(β[C,1,1])}, the form the optimizer's GroupNorm fusion reads.
   */
  static Object groupNorm(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("input");
    long groups = arguments.constantLong("num_groups");
    double epsilon = arguments.constantDouble("eps");
    DataType type = input.dataType();
    Value x = input.value(emitter);
    Value grouped = emitter.op(Onnx.RESHAPE, List.of(x, emitter.constantLongs(0, groups, -1)));
    double[] ones = new double[(int) groups];
    Arrays.fill(ones, 1);
    Value scale = emitter.constant(type, new long[] {groups}, ones);
    Value bias = emitter.constant(type, new long[] {groups}, new double[(int) groups]);
    Value normalized = emitter.op(Onnx.INSTANCE_NORMALIZATION, List.of(grouped, scale, bias), Attribute.ofFloat("epsilon", (float) epsilon));
    Value restored = emitter.op(Onnx.RESHAPE, List.of(normalized, emitter.shapeOf(x)));
    Value result = restored;
    if (!arguments.isNone("weight")) {
      result = emitter.op(Onnx.MUL, List.of(result, perChannel(arguments.tensor("weight"), input.rank(), emitter)));
    }
    if (!arguments.isNone("bias")) {
      result = emitter.op(Onnx.ADD, List.of(result, perChannel(arguments.tensor("bias"), input.rank(), emitter)));
    }
    return TensorValue.of(result, type, input.rank());
  }

  /** γ[C] as γ[C,1,1] (for rank-4 input): the same archive bytes with new dims, or Unsqueeze for computed ones. */
  private static Value perChannel(TensorValue parameter, int inputRank, Emitter emitter) {
    int trailing = inputRank - 2;
    Tensor tensor = Interpreter.initializer(parameter);
    if (tensor instanceof ExternalTensor external && tensor.dims().length == 1) {
      long[] dims = new long[1 + trailing];
      Arrays.fill(dims, 1);
      dims[0] = tensor.dims()[0];
      Tensor reshaped = ExternalTensor.of(external.file(), external.offset(), external.length(), external.dataType(), dims);
      return emitter.graph().addInitializer(emitter.reserveName(parameter.value(emitter).name() + ".per_channel"), reshaped);
    }
    long[] axes = new long[trailing];
    for (int axis = 0; axis < trailing; axis++) {
      axes[axis] = axis + 1;
    }
    return emitter.op(Onnx.UNSQUEEZE, List.of(parameter.value(emitter), emitter.constantLongs(axes)));
  }

  /** Opset 17: one LayerNormalization; before it, torch's decomposition over the normalized dims. */
  static Object layerNorm(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("input");
    long[] normalizedShape = arguments.constantLongs("normalized_shape");
    double epsilon = arguments.constantDouble("eps");
    DataType type = input.dataType();
    int axis = input.rank() - normalizedShape.length;
    Value x = input.value(emitter);
    if (emitter.opset() >= 17) {
      List<Value> inputs = new ArrayList<>(List.of(x));
      if (arguments.isNone("weight")) {
        inputs.add(emitter.op(Onnx.CONSTANT_OF_SHAPE, List.of(emitter.constantLongs(normalizedShape)),
            Attribute.ofTensor("value", Emitter.tensor(type, new long[] {1}, new double[] {1}))));
      } else {
        inputs.add(arguments.tensor("weight").value(emitter));
      }
      if (!arguments.isNone("bias")) {
        inputs.add(arguments.tensor("bias").value(emitter));
      }
      Value result = emitter.op(Onnx.LAYER_NORMALIZATION, inputs, Attribute.ofInt("axis", -normalizedShape.length),
          Attribute.ofFloat("epsilon", (float) epsilon));
      return TensorValue.of(result, type, input.rank());
    }
    long[] axes = new long[normalizedShape.length];
    for (int index = 0; index < axes.length; index++) {
      axes[index] = -(normalizedShape.length - index);
    }
    Value mean = emitter.op(Onnx.REDUCE_MEAN, List.of(x), Attribute.ofInts("axes", axes));
    Value centered = emitter.op(Onnx.SUB, List.of(x, mean));
    Value squared = emitter.op(Onnx.POW, List.of(centered, emitter.scalarFloat(type, 2)));
    Value variance = emitter.op(Onnx.REDUCE_MEAN, List.of(squared), Attribute.ofInts("axes", axes));
    Value shifted = emitter.op(Onnx.ADD, List.of(variance, emitter.scalarFloat(type, epsilon)));
    Value deviation = emitter.op(Onnx.SQRT, shifted);
    Value result = emitter.op(Onnx.DIV, List.of(centered, deviation));
    if (!arguments.isNone("weight")) {
      result = emitter.op(Onnx.MUL, List.of(result, arguments.tensor("weight").value(emitter)));
    }
    if (!arguments.isNone("bias")) {
      result = emitter.op(Onnx.ADD, List.of(result, arguments.tensor("bias").value(emitter)));
    }
    assert axis >= 0;
    return TensorValue.of(result, type, input.rank());
  }

  static Object embedding(Arguments arguments, Emitter emitter) {
    TensorValue weight = arguments.tensor("weight");
    TensorValue indices = arguments.tensor("indices");
    Value result = emitter.op(Onnx.GATHER, List.of(weight.value(emitter), indices.value(emitter)), Attribute.ofInt("axis", 0));
    return TensorValue.of(result, weight.dataType(), indices.rank() + 1);
  }

  /** {@code Resize(nearest, asymmetric, floor)} by scales [1,1,s,s] or to a size, as torch exports it. */
  static Object upsampleNearest2d(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("input");
    Value x = input.value(emitter);
    Value roi = emitter.constant(DataType.FLOAT, new long[] {0}, new double[0]);
    Attribute[] attributes = {Attribute.ofString("coordinate_transformation_mode", "asymmetric"), Attribute.ofString("mode", "nearest"),
        Attribute.ofString("nearest_mode", "floor")};
    Object scales = arguments.get("scale_factors");
    Value result;
    if (scales instanceof List<?> list && !list.isEmpty()) {
      double[] values = new double[2 + list.size()];
      values[0] = 1;
      values[1] = 1;
      for (int index = 0; index < list.size(); index++) {
        Object item = list.get(index);
        values[2 + index] = item instanceof Double number ? number : item instanceof Long number ? number : Double.NaN;
      }
      Value scaleValue = emitter.constant(DataType.FLOAT, new long[] {values.length}, values);
      result = emitter.op(Onnx.RESIZE, List.of(x, roi, scaleValue), attributes);
    } else {
      Value leading = emitter.op(Onnx.SLICE, List.of(emitter.shapeOf(x), emitter.constantLongs(0), emitter.constantLongs(2), emitter.constantLongs(0)));
      Value sizes = emitter.op(Onnx.CONCAT, List.of(leading, Values.intList(arguments.get("output_size"), emitter)), Attribute.ofInt("axis", 0));
      Value noScales = emitter.constant(DataType.FLOAT, new long[] {0}, new double[0]);
      result = emitter.op(Onnx.RESIZE, List.of(x, roi, noScales, sizes), attributes);
    }
    return TensorValue.of(result, input.dataType(), input.rank());
  }
}
