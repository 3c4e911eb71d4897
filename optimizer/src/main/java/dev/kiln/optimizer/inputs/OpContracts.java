package dev.kiln.optimizer.inputs;

import static dev.kiln.graph.Attribute.Kind.FLOAT;
import static dev.kiln.graph.Attribute.Kind.FLOATS;
import static dev.kiln.graph.Attribute.Kind.INT;
import static dev.kiln.graph.Attribute.Kind.INTS;
import static dev.kiln.graph.Attribute.Kind.SPARSE_TENSOR;
import static dev.kiln.graph.Attribute.Kind.STRING;
import static dev.kiln.graph.Attribute.Kind.STRINGS;
import static dev.kiln.graph.Attribute.Kind.TENSOR;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Input/output counts and attribute kinds of the operators the optimizer's rules, passes and shape inference
 * read (from the ONNX and ONNX Runtime contrib operator specifications). Ranges are the union over every opset
 * version (Clip had its bounds as attributes before opset 11, as inputs after), so a valid model of any
 * version passes, while a node the rules would misread (an Add with three inputs, a Conv whose group is a
 * string) is refused before a rule reads it.
 */
final class OpContracts {
  static final int MANY = Integer.MAX_VALUE;

  /** What one operator accepts. */
  record Contract(int minInputs, int maxInputs, int minOutputs, int maxOutputs, Map<String, Set<Attribute.Kind>> attributes) {}

  private static final Map<OpType, Contract> CONTRACTS = new HashMap<>();

  private OpContracts() {}

  static Contract of(OpType type) {
    return CONTRACTS.get(type);
  }

  private static void define(List<OpType> types, int minInputs, int maxInputs, int minOutputs, int maxOutputs, Object... attributes) {
    Map<String, Set<Attribute.Kind>> kinds = new HashMap<>();
    for (int index = 0; index < attributes.length; index += 2) {
      Object kind = attributes[index + 1];
      kinds.put((String) attributes[index], kind instanceof Attribute.Kind single ? EnumSet.of(single) : castKinds(kind));
    }
    for (OpType type : types) {
      CONTRACTS.put(type, new Contract(minInputs, maxInputs, minOutputs, maxOutputs, Map.copyOf(kinds)));
    }
  }

  @SuppressWarnings("unchecked")
  private static Set<Attribute.Kind> castKinds(Object kinds) {
    return (Set<Attribute.Kind>) kinds;
  }

  static {
    define(List.of(Onnx.ABS, Onnx.NEG, Onnx.SQRT, Onnx.RECIPROCAL, Onnx.FLOOR, Onnx.CEIL, Onnx.EXP, Onnx.LOG, Onnx.SIN, Onnx.COS,
        Onnx.TANH, Onnx.SIGMOID, Onnx.RELU, Onnx.ERF, Onnx.SIGN, Onnx.NOT, Onnx.SOFTPLUS, Onnx.MISH, Onnx.IDENTITY, Onnx.ROUND,
        Onnx.HARD_SWISH), 1, 1, 1, 1);
    define(List.of(Onnx.ADD, Onnx.SUB, Onnx.MUL, Onnx.DIV, Onnx.POW, Onnx.AND, Onnx.OR, Onnx.XOR, Onnx.EQUAL, Onnx.LESS,
        Onnx.GREATER, Onnx.LESS_OR_EQUAL, Onnx.GREATER_OR_EQUAL, Onnx.P_RELU), 2, 2, 1, 1, "broadcast", INT, "axis", INT);
    define(List.of(Onnx.MOD), 2, 2, 1, 1, "fmod", INT);
    define(List.of(Onnx.SUM, Onnx.MEAN, Onnx.MAX, Onnx.MIN), 1, MANY, 1, 1);
    define(List.of(Onnx.WHERE), 3, 3, 1, 1);
    define(List.of(Onnx.MAT_MUL), 2, 2, 1, 1);
    define(List.of(Onnx.GEMM), 2, 3, 1, 1, "alpha", FLOAT, "beta", FLOAT, "transA", INT, "transB", INT, "broadcast", INT);
    define(List.of(Onnx.CONV, Microsoft.NHWC_CONV), 2, 3, 1, 1, "auto_pad", STRING, "dilations", INTS, "group", INT, "kernel_shape",
        INTS, "pads", INTS, "strides", INTS);
    define(List.of(Onnx.RESHAPE), 1, 2, 1, 1, "shape", INTS, "allowzero", INT);
    define(List.of(Onnx.TRANSPOSE), 1, 1, 1, 1, "perm", INTS);
    define(List.of(Onnx.SHAPE), 1, 1, 1, 1, "start", INT, "end", INT);
    // Cast's "to" was a type name (STRING) before opset 6.
    define(List.of(Onnx.CAST), 1, 1, 1, 1, "to", EnumSet.of(INT, STRING), "saturate", INT);
    define(List.of(Onnx.REDUCE_MEAN, Onnx.REDUCE_SUM, Onnx.REDUCE_MAX, Onnx.REDUCE_MIN, Onnx.REDUCE_PROD, Onnx.REDUCE_L1,
        Onnx.REDUCE_L2, Onnx.REDUCE_SUM_SQUARE, Onnx.REDUCE_LOG_SUM_EXP), 1, 2, 1, 1, "axes", INTS, "keepdims", INT,
        "noop_with_empty_axes", INT);
    define(List.of(Onnx.CONSTANT), 0, 0, 1, 1, "value", TENSOR, "value_float", FLOAT, "value_floats", FLOATS, "value_int", INT,
        "value_ints", INTS, "value_string", STRING, "value_strings", STRINGS, "sparse_value", SPARSE_TENSOR);
    define(List.of(Onnx.UNSQUEEZE, Onnx.SQUEEZE), 1, 2, 1, 1, "axes", INTS);
    define(List.of(Onnx.SOFTMAX, Onnx.LOG_SOFTMAX), 1, 1, 1, 1, "axis", INT);
    define(List.of(Onnx.SLICE), 1, 5, 1, 1, "starts", INTS, "ends", INTS, "axes", INTS);
    define(List.of(Onnx.LAYER_NORMALIZATION), 2, 3, 1, 3, "axis", INT, "epsilon", FLOAT, "stash_type", INT);
    define(List.of(Onnx.GATHER), 2, 2, 1, 1, "axis", INT);
    define(List.of(Onnx.SPLIT), 1, 2, 1, MANY, "axis", INT, "split", INTS, "num_outputs", INT);
    define(List.of(Onnx.INSTANCE_NORMALIZATION), 3, 3, 1, 1, "epsilon", FLOAT);
    define(List.of(Onnx.GROUP_NORMALIZATION), 3, 3, 1, 1, "epsilon", FLOAT, "num_groups", INT, "stash_type", INT);
    define(List.of(Onnx.BATCH_NORMALIZATION), 5, 5, 1, 5, "epsilon", FLOAT, "momentum", FLOAT, "spatial", INT, "training_mode", INT,
        "is_test", INT);
    define(List.of(Onnx.TRILU), 1, 2, 1, 1, "upper", INT);
    define(List.of(Onnx.RANGE), 3, 3, 1, 1);
    define(List.of(Onnx.CONSTANT_OF_SHAPE), 1, 1, 1, 1, "value", TENSOR);
    define(List.of(Onnx.CONCAT), 1, MANY, 1, 1, "axis", INT);
    define(List.of(Onnx.CLIP), 1, 3, 1, 1, "min", FLOAT, "max", FLOAT);
    define(List.of(Onnx.DROPOUT), 1, 3, 1, 2, "ratio", FLOAT, "seed", INT, "is_test", INT);
    define(List.of(Onnx.CUM_SUM), 2, 2, 1, 1, "exclusive", INT, "reverse", INT);
    define(List.of(Onnx.GELU), 1, 1, 1, 1, "approximate", STRING);
    define(List.of(Onnx.LEAKY_RELU, Onnx.ELU), 1, 1, 1, 1, "alpha", FLOAT);
    define(List.of(Onnx.HARD_SIGMOID), 1, 1, 1, 1, "alpha", FLOAT, "beta", FLOAT);
    define(List.of(Onnx.ARG_MAX, Onnx.ARG_MIN), 1, 1, 1, 1, "axis", INT, "keepdims", INT, "select_last_index", INT);
    define(List.of(Onnx.EXPAND), 2, 2, 1, 1);

    define(List.of(Microsoft.ATTENTION), 1, 7, 1, 2, "num_heads", INT, "unidirectional", INT, "qkv_hidden_sizes", INTS, "scale", FLOAT,
        "mask_filter_value", FLOAT);
    define(List.of(Microsoft.MULTI_HEAD_ATTENTION), 1, 10, 1, 4, "num_heads", INT, "mask_filter_value", FLOAT, "scale", FLOAT,
        "unidirectional", INT);
    define(List.of(Microsoft.SKIP_LAYER_NORMALIZATION), 3, 5, 1, 4, "epsilon", FLOAT);
    define(List.of(Microsoft.SKIP_SIMPLIFIED_LAYER_NORMALIZATION), 3, 4, 1, 4, "epsilon", FLOAT);
    define(List.of(Microsoft.SIMPLIFIED_LAYER_NORMALIZATION), 2, 2, 1, 2, "axis", INT, "epsilon", FLOAT, "stash_type", INT);
    define(List.of(Microsoft.GELU), 1, 1, 1, 1);
    define(List.of(Microsoft.QUICK_GELU), 1, 1, 1, 1, "alpha", FLOAT);
    define(List.of(Microsoft.FAST_GELU), 1, 2, 1, 1);
    define(List.of(Microsoft.BIAS_GELU, Microsoft.BIAS_SPLIT_GELU), 2, 2, 1, 1);
    define(List.of(Microsoft.BIAS_ADD), 3, 3, 1, 1);
    define(List.of(Microsoft.GROUP_NORM), 3, 3, 1, 1, "activation", INT, "channels_last", INT, "epsilon", FLOAT, "groups", INT);
    define(List.of(Microsoft.SKIP_GROUP_NORM), 4, 5, 1, 2, "activation", INT, "channels_last", INT, "epsilon", FLOAT, "groups", INT);
  }
}
