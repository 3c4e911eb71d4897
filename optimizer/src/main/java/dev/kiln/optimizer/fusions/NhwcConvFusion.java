package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code Conv(x[N,C,H,W], W[M,C/g,kH,kW], B?)}  ⇒  {@code Transpose → com.microsoft.NhwcConv(xᵀ, W_ohwi, B) →
 * Transpose}, the weight stored pre-transposed to OHWI as ORT's own diffusion fusion stores it.
 *
 * <p>The OHWI copy is a computed tensor, produced only while the writer streams it, so a large external
 * weight is never held twice in memory. The Transposes around each NhwcConv cancel against those of the
 * neighbouring channels-last GroupNorms and NhwcConvs ({@link TransposeCancellation}).
 */
public final class NhwcConvFusion implements Rule {
  @Override
  public String name() {
    return "nhwc-conv";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    return p.op(Onnx.CONV, p.input(Values.X), p.constant(Values.WEIGHT)).withTrailingInputs().as(Nodes.CONV);
  }

  @Override
  public Check check(Match m) {
    Tensor weight = m.constant(Values.WEIGHT);
    if (weight.dims().length != 4) {
      return Check.fail("weight has rank " + weight.dims().length + "; only 2-D convolutions are fused");
    }
    DataType type = m.shapes().dataType(m.value(Values.X));
    if (!ChannelsLast.hasCudaKernelType(type) || weight.dataType() != type) {
      return Check.fail("element types " + type + " / " + weight.dataType() + " have no NhwcConv kernel");
    }
    if (m.node(Nodes.CONV).inputCount() > 3) {
      return Check.fail("Conv has more than three inputs");
    }
    return Check.ok();
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    Node conv = m.node(Nodes.CONV);
    List<Value> inputs = new ArrayList<>();
    inputs.add(ChannelsLast.toNhwc(b, m.value(Values.X)));
    inputs.add(b.initializer(weightName(m.value(Values.WEIGHT)), ChannelsLast.ohwi(m.constant(Values.WEIGHT))));
    if (conv.input(2) != null) {
      inputs.add(conv.input(2));
    }
    Value convolved = b.op(Microsoft.NHWC_CONV, inputs, conv.attributes().toArray(new Attribute[0]));
    return ChannelsLast.toNchw(b, convolved);
  }

  /** "conv_in.weight" → "conv_in.weight_ohwi" (the initializer is named in the site's scope). */
  private static String weightName(Value weight) {
    String name = weight.name();
    int slash = name.lastIndexOf('/');
    return (slash < 0 ? name : name.substring(slash + 1)) + "_ohwi";
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, WEIGHT }
  private enum Nodes implements NodeKey { CONV }
}
