package dev.kiln.graph;

/** ONNX Runtime contrib operators (domain com.microsoft) that Kiln reads or emits. */
public final class Microsoft {
  private Microsoft() {}

  public static final OpType ATTENTION = OpType.microsoft("Attention");
  public static final OpType BIAS_ADD = OpType.microsoft("BiasAdd");
  public static final OpType BIAS_GELU = OpType.microsoft("BiasGelu");
  public static final OpType BIAS_SPLIT_GELU = OpType.microsoft("BiasSplitGelu");
  public static final OpType FAST_GELU = OpType.microsoft("FastGelu");
  public static final OpType GELU = OpType.microsoft("Gelu");
  public static final OpType GROUP_NORM = OpType.microsoft("GroupNorm");
  public static final OpType MULTI_HEAD_ATTENTION = OpType.microsoft("MultiHeadAttention");
  public static final OpType NHWC_CONV = OpType.microsoft("NhwcConv");
  public static final OpType QUICK_GELU = OpType.microsoft("QuickGelu");
  public static final OpType SKIP_GROUP_NORM = OpType.microsoft("SkipGroupNorm");
  public static final OpType SKIP_LAYER_NORMALIZATION = OpType.microsoft("SkipLayerNormalization");
  public static final OpType SKIP_SIMPLIFIED_LAYER_NORMALIZATION = OpType.microsoft("SkipSimplifiedLayerNormalization");
  public static final OpType SIMPLIFIED_LAYER_NORMALIZATION = OpType.microsoft("SimplifiedLayerNormalization");
  public static final OpType ROTARY_EMBEDDING = OpType.microsoft("RotaryEmbedding");
  public static final OpType GROUP_QUERY_ATTENTION = OpType.microsoft("GroupQueryAttention");
  public static final OpType PACKED_ATTENTION = OpType.microsoft("PackedAttention");
  public static final OpType PACKED_MULTI_HEAD_ATTENTION = OpType.microsoft("PackedMultiHeadAttention");
  public static final OpType FUSED_CONV = OpType.microsoft("FusedConv");
  public static final OpType FUSED_MAT_MUL = OpType.microsoft("FusedMatMul");
  // ORT's int8 kernels its QDQ fusions select on CPU (Kiln counts them in ORT's optimized graph).
  public static final OpType MAT_MUL_INTEGER_TO_FLOAT = OpType.microsoft("MatMulIntegerToFloat");
  public static final OpType DYNAMIC_QUANTIZE_MAT_MUL = OpType.microsoft("DynamicQuantizeMatMul");
  public static final OpType Q_GEMM = OpType.microsoft("QGemm");
  public static final OpType Q_LINEAR_CONV = OpType.microsoft("QLinearConv");
  public static final OpType Q_LINEAR_ADD = OpType.microsoft("QLinearAdd");
  public static final OpType Q_LINEAR_MUL = OpType.microsoft("QLinearMul");
}
