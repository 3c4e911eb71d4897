package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The aten signatures the lowerings read, with their defaults, as data in one place: traced code omits
 * arguments equal to their default ({@code group_norm(x, 32, w, b)} means {@code eps=1e-05}). Written as in
 * {@code native_functions.yaml} (names and defaults), trimmed to what traced diffusion modules call.
 */
public final class AtenSchemas {
  private AtenSchemas() {}

  private static final String[] SIGNATURES = {
    "add(self, other, alpha=1)",
    "sub(self, other, alpha=1)",
    "rsub(self, other, alpha=1)",
    "mul(self, other)",
    "div(self, other, rounding_mode=None)",
    "floor_divide(self, other)",
    "pow(self, exponent)",
    "lt(self, other)",
    "gt(self, other)",
    "eq(self, other)",
    "neg(self)",
    "sqrt(self)",
    "rsqrt(self)",
    "exp(self)",
    "sin(self)",
    "cos(self)",
    "tanh(self)",
    "sigmoid(self)",
    "silu(self)",
    "relu(self)",
    "gelu(self, approximate='none')",
    "softmax(self, dim, dtype=None)",
    "group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True)",
    "layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True)",
    "linear(input, weight, bias=None)",
    "_convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, benchmark=False,"
        + " deterministic=False, cudnn_enabled=True, allow_tf32=True)",
    "matmul(self, other)",
    "bmm(self, mat2)",
    "baddbmm(self, batch1, batch2, beta=1, alpha=1)",
    "einsum(equation, tensors, path=None)",
    "scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None)",
    "reshape(self, shape)",
    "view(self, size)",
    "flatten(self, start_dim=0, end_dim=-1)",
    "permute(self, dims)",
    "transpose(self, dim0, dim1)",
    "unsqueeze(self, dim)",
    "squeeze(self, dim)",
    "slice(self, dim=0, start=None, end=None, step=1)",
    "select(self, dim, index)",
    "cat(tensors, dim=0)",
    "chunk(self, chunks, dim=0)",
    "split(self, split_size, dim=0)",
    "expand(self, size, implicit=False)",
    "contiguous(self, memory_format=0)",
    "detach(self)",
    "clone(self, memory_format=None)",
    "dropout(input, p, train)",
    "upsample_nearest2d(input, output_size, scale_factors)",
    "pad(self, pad, mode='constant', value=None)",
    "constant_pad_nd(self, pad, value=0)",
    "full(size, fill_value, dtype=None, layout=None, device=None, pin_memory=None)",
    "zeros(size, dtype=None, layout=None, device=None, pin_memory=None)",
    "ones(size, dtype=None, layout=None, device=None, pin_memory=None)",
    "empty(size, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None)",
    "masked_fill(self, mask, value)",
    "masked_fill_(self, mask, value)",
    "where(condition, self, other)",
    "argmax(self, dim=None, keepdim=False)",
    "index(self, indices)",
    "embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False)",
    "triu(self, diagonal=0)",
    "mean(self, dim, keepdim=False, dtype=None)",
  };

  /** One signature: parameter names in order and the defaults of the optional ones. */
  public record Schema(String name, List<String> parameters, Map<String, Object> defaults) {}

  private static final Map<String, Schema> SCHEMAS = parseAll();

  public static Schema schema(String op) {
    return SCHEMAS.get(op);
  }

  private static Map<String, Schema> parseAll() {
    Map<String, Schema> schemas = new LinkedHashMap<>();
    for (String signature : SIGNATURES) {
      int open = signature.indexOf('(');
      String name = signature.substring(0, open);
      List<String> parameters = new ArrayList<>();
      Map<String, Object> defaults = new LinkedHashMap<>();
      for (String part : signature.substring(open + 1, signature.length() - 1).split(",")) {
        String parameter = part.strip();
        int equals = parameter.indexOf('=');
        if (equals < 0) {
          parameters.add(parameter);
        } else {
          String parameterName = parameter.substring(0, equals);
          parameters.add(parameterName);
          defaults.put(parameterName, literal(parameter.substring(equals + 1)));
        }
      }
      schemas.put(name, new Schema(name, List.copyOf(parameters), defaults));
    }
    return schemas;
  }

  private static Object literal(String text) {
    if (text.equals("None")) {
      return PickleObjects.NONE;
    }
    if (text.equals("True") || text.equals("False")) {
      return Boolean.valueOf(text.equals("True"));
    }
    if (text.startsWith("'")) {
      return text.substring(1, text.length() - 1);
    }
    if (text.contains(".") || text.contains("e")) {
      return Double.valueOf(text);
    }
    return Long.valueOf(text);
  }
}
