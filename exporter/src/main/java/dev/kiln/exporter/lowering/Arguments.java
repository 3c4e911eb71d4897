package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects;
import java.util.List;
import java.util.Map;

/** A call's arguments bound to its aten schema: by name, with the schema's defaults where the trace left one out. */
public final class Arguments {
  private final String op;
  private final List<Object> positional;
  private final Map<String, Object> keywords;
  private final AtenSchemas.Schema schema;

  public Arguments(String op, List<Object> positional, Map<String, Object> keywords) {
    this.op = op;
    this.positional = positional;
    this.keywords = keywords;
    this.schema = AtenSchemas.schema(op);
    if (schema != null && positional.size() > schema.parameters().size()) {
      throw new LoweringException("torch." + op + " takes at most " + schema.parameters().size() + " arguments, got " + positional.size());
    }
    if (schema != null) {
      for (String keyword : keywords.keySet()) {
        if (!schema.parameters().contains(keyword)) {
          throw new LoweringException("torch." + op + " has no argument '" + keyword + "'");
        }
      }
    }
  }

  public String op() {
    return op;
  }

  public List<Object> positional() {
    return positional;
  }

  public Map<String, Object> keywords() {
    return keywords;
  }

  public int count() {
    return positional.size();
  }

  public Object get(String name) {
    int index = schema.parameters().indexOf(name);
    if (index < 0) {
      throw new IllegalArgumentException("schema of " + op + " has no " + name);
    }
    if (index < positional.size()) {
      return positional.get(index);
    }
    if (keywords.containsKey(name)) {
      return keywords.get(name);
    }
    if (schema.defaults().containsKey(name)) {
      return schema.defaults().get(name);
    }
    throw new LoweringException("torch." + op + " is missing its argument '" + name + "'");
  }

  public boolean isNone(String name) {
    return get(name) == PickleObjects.NONE;
  }

  public TensorValue tensor(String name) {
    Object value = get(name);
    if (value instanceof TensorValue tensor) {
      return tensor;
    }
    throw new LoweringException("torch." + op + " expects a tensor for '" + name + "', got " + Values.describe(value));
  }

  /** A compile-time integer (a literal or a constant); symbolic ints are refused here. */
  public long constantLong(String name) {
    Object value = get(name);
    Long constant = Values.constantLong(value);
    if (constant == null) {
      throw new LoweringException("torch." + op + " needs a constant integer for '" + name + "', got " + Values.describe(value));
    }
    return constant;
  }

  public double constantDouble(String name) {
    Object value = get(name);
    if (value instanceof Double number) {
      return number;
    }
    if (value instanceof Long number) {
      return number;
    }
    if (value instanceof Boolean flag) {
      return flag ? 1 : 0;
    }
    if (value instanceof TensorValue tensor && tensor.isConstant() && tensor.constantValues().length == 1) {
      return tensor.constantValues()[0];
    }
    throw new LoweringException("torch." + op + " needs a constant number for '" + name + "', got " + Values.describe(value));
  }

  public long[] constantLongs(String name) {
    Object value = get(name);
    if (value instanceof List<?> list) {
      long[] result = new long[list.size()];
      for (int index = 0; index < result.length; index++) {
        Long constant = Values.constantLong(list.get(index));
        if (constant == null) {
          throw new LoweringException("torch." + op + " needs constant integers for '" + name + "'");
        }
        result[index] = constant;
      }
      return result;
    }
    Long single = Values.constantLong(value);
    if (single != null) {
      return new long[] {single};
    }
    throw new LoweringException("torch." + op + " needs a list of integers for '" + name + "', got " + Values.describe(value));
  }

  public boolean constantBool(String name) {
    Object value = get(name);
    if (value instanceof Boolean flag) {
      return flag;
    }
    Long number = Values.constantLong(value);
    if (number != null) {
      return number != 0;
    }
    throw new LoweringException("torch." + op + " needs a boolean for '" + name + "'");
  }
}
