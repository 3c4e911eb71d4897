package dev.kiln.exporter.lowering;

import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.PickleObjects;
import dev.kiln.exporter.archive.PickleObjects.ModuleObject;
import dev.kiln.exporter.archive.PickleObjects.TensorRecord;
import dev.kiln.exporter.archive.TorchArchive;
import dev.kiln.exporter.code.ClassDef;
import dev.kiln.exporter.code.Expr;
import dev.kiln.exporter.code.Method;
import dev.kiln.exporter.code.Statement;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs the traced code symbolically: each statement's calls become nodes through the lowerings, module
 * attributes become initializers (pointing into the archive, never read), sizes read through {@code aten::size}
 * become symbolic ints. Nothing from the archive is executed; unknown functions are refused with their line.
 */
public final class Interpreter {
  /** Constants up to this many elements are folded (their values read); larger ones stay initializers. */
  private static final long FOLD_LIMIT = 4096;

  private final TorchArchive archive;
  private final Map<String, ClassDef> classes;
  private final Emitter emitter;
  private final Map<TensorRecord, TensorValue> parameters = new IdentityHashMap<>();
  private final Map<Integer, Object> constants = new HashMap<>();
  private final List<String> warnings = new ArrayList<>();
  private final Map<String, Integer> opCounts = new LinkedHashMap<>();
  private int depth;

  public Interpreter(TorchArchive archive, Map<String, ClassDef> classes, Emitter emitter) {
    this.archive = archive;
    this.classes = classes;
    this.emitter = emitter;
  }

  public List<String> warnings() {
    List<String> all = new ArrayList<>(warnings);
    all.addAll(emitter.bakedConstants().warnings());
    return all;
  }

  /** How often each aten/prim op was lowered. */
  public Map<String, Integer> opCounts() {
    return opCounts;
  }

  /** Calls {@code method} of {@code module} with {@code arguments} (self excluded). */
  public Object call(ModuleRef module, String methodName, List<Object> arguments) {
    ClassDef definition = classes.get(module.object().className());
    if (definition == null) {
      throw new KilnException.BadInput(archive.file() + ": no code for class " + module.object().className() + " (module "
          + (module.path().isEmpty() ? "<root>" : module.path()) + ")");
    }
    Method method = definition.methods().get(methodName);
    if (method == null) {
      throw new KilnException.BadInput(archive.file() + ": class " + definition.qualifiedName() + " has no method " + methodName);
    }
    if (method.parameters().size() != arguments.size() + 1) {
      throw new KilnException.BadInput(archive.file() + ": " + method.file() + ":" + method.line() + ": " + methodName + " takes "
          + (method.parameters().size() - 1) + " arguments, called with " + arguments.size());
    }
    if (++depth > 200) {
      throw new KilnException.Unsupported("unsupported: module calls nested deeper than 200 at " + method.file() + ":" + method.line());
    }
    Map<String, Object> environment = new HashMap<>();
    environment.put(method.parameters().get(0), module);
    for (int index = 0; index < arguments.size(); index++) {
      environment.put(method.parameters().get(index + 1), arguments.get(index));
    }
    List<String> previousScope = emitter.enterScope(module.scope());
    try {
      for (Statement statement : method.body()) {
        emitter.bakedConstants().at(method.file() + ":" + statement.line() + " in module " + describe(module));
        try {
          if (statement instanceof Statement.Return returned) {
            return evaluate(returned.value(), environment, module);
          }
          Statement.Assign assign = (Statement.Assign) statement;
          Object value = evaluate(assign.value(), environment, module);
          if (assign.unpack()) {
            List<?> items = sequence(value);
            if (items.size() != assign.targets().size()) {
              throw new LoweringException("unpacks " + items.size() + " values into " + assign.targets().size() + " names");
            }
            for (int index = 0; index < items.size(); index++) {
              environment.put(assign.targets().get(index), items.get(index));
            }
          } else if (assign.targets().size() == 1) {
            environment.put(assign.targets().get(0), value);
          }
        } catch (LoweringException e) {
          throw new KilnException.Unsupported("unsupported: " + e.getMessage() + " in module " + describe(module) + " at " + method.file()
              + ":" + statement.line());
        } catch (KilnException | java.io.UncheckedIOException e) {
          throw e;
        } catch (RuntimeException e) {
          // A statement the subset parser accepted but whose arguments no lowering expects (a call with too few
          // arguments, a list where a tensor belongs): named with its line, never a stack trace.
          throw new KilnException.Unsupported("unsupported: " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : " (" + e.getMessage() + ")")
              + " while lowering module " + describe(module) + " at " + method.file() + ":" + statement.line());
        }
      }
      return PickleObjects.NONE;
    } finally {
      emitter.enterScope(previousScope);
      depth--;
    }
  }

  private static String describe(ModuleRef module) {
    String path = module.path().isEmpty() ? "<root>" : module.path();
    String className = module.object().className();
    return path + " (" + className.substring(className.lastIndexOf('.') + 1) + ")";
  }

  private static List<?> sequence(Object value) {
    if (value instanceof PickleObjects.Tuple tuple) {
      return tuple.items();
    }
    if (value instanceof List<?> list) {
      return list;
    }
    throw new LoweringException("cannot unpack " + Values.describe(value));
  }

  private Object evaluate(Expr expression, Map<String, Object> environment, ModuleRef self) {
    if (expression instanceof Expr.Name name) {
      Object value = environment.get(name.identifier());
      if (value == null) {
        throw new LoweringException("name '" + name.identifier() + "' is read before it is assigned");
      }
      return value;
    }
    if (expression instanceof Expr.IntLiteral literal) {
      return literal.value();
    }
    if (expression instanceof Expr.FloatLiteral literal) {
      return literal.value();
    }
    if (expression instanceof Expr.StringLiteral literal) {
      return literal.value();
    }
    if (expression instanceof Expr.BoolLiteral literal) {
      return literal.value();
    }
    if (expression instanceof Expr.NoneLiteral) {
      return PickleObjects.NONE;
    }
    if (expression instanceof Expr.ListLiteral list) {
      List<Object> items = new ArrayList<>();
      for (Expr item : list.items()) {
        items.add(evaluate(item, environment, self));
      }
      return items;
    }
    if (expression instanceof Expr.TupleLiteral tuple) {
      List<Object> items = new ArrayList<>();
      for (Expr item : tuple.items()) {
        items.add(evaluate(item, environment, self));
      }
      return new PickleObjects.Tuple(items);
    }
    if (expression instanceof Expr.Attribute attribute) {
      return attribute(attribute, environment, self);
    }
    if (expression instanceof Expr.Call call) {
      return call(call, environment, self);
    }
    throw new LoweringException("subscript outside a type annotation");
  }

  private Object attribute(Expr.Attribute attribute, Map<String, Object> environment, ModuleRef self) {
    if (attribute.target() instanceof Expr.Name name && name.identifier().equals("CONSTANTS") && !environment.containsKey("CONSTANTS")) {
      return constant(attribute.name());
    }
    Object target = evaluate(attribute.target(), environment, self);
    if (target instanceof ModuleRef module) {
      return member(module, attribute.name());
    }
    throw new LoweringException("attribute '" + attribute.name() + "' of " + Values.describe(target));
  }

  private Object member(ModuleRef module, String name) {
    if (!module.object().state().containsKey(name)) {
      throw new LoweringException("module " + describe(module) + " has no attribute '" + name + "'");
    }
    Object value = module.object().state().get(name);
    if (value instanceof ModuleObject child) {
      return module.child(name, child);
    }
    if (value instanceof TensorRecord record) {
      return parameter(record, module.path().isEmpty() ? name : module.path() + "." + name);
    }
    if (value instanceof Long || value instanceof Double || value instanceof Boolean || value instanceof String || value == PickleObjects.NONE) {
      return value;
    }
    throw new LoweringException("attribute '" + name + "' of module " + describe(module) + " is a " + value.getClass().getSimpleName());
  }

  private TensorValue parameter(TensorRecord record, String name) {
    return parameters.computeIfAbsent(record, key -> {
      Tensor tensor = archive.tensor(key, name);
      Value value = emitter.graph().addInitializer(emitter.reserveName(name), tensor);
      return TensorValue.of(value, tensor.dataType(), key.sizes().length);
    });
  }

  /** The archive tensor behind a parameter value, for lowerings that re-shape weights (same bytes, new dims). */
  public static Tensor initializer(TensorValue value) {
    Value graphValue = value.valueOrNull();
    return graphValue == null ? null : graphValue.initializer();
  }

  private Object constant(String name) {
    if (!name.matches("c[0-9]+")) {
      throw new LoweringException("CONSTANTS." + name + " is not a constant name");
    }
    int index = Integer.parseInt(name.substring(1));
    if (index >= archive.constants().size()) {
      throw new LoweringException("CONSTANTS." + name + " is past the " + archive.constants().size() + " constants in constants.pkl");
    }
    return constants.computeIfAbsent(index, key -> {
      Object value = archive.constants().get(key);
      if (value instanceof TensorRecord record) {
        if (record.numel() <= FOLD_LIMIT) {
          ByteBuffer bytes = archive.smallTensorBytes(record, "CONSTANTS." + name);
          double[] values = new double[(int) record.numel()];
          DataType type = record.storage().dataType();
          for (int element = 0; element < values.length; element++) {
            values[element] = switch (type) {
              case FLOAT -> bytes.getFloat();
              case DOUBLE -> bytes.getDouble();
              case INT64 -> bytes.getLong();
              case INT32 -> bytes.getInt();
              case BOOL, UINT8 -> bytes.get() & 0xFF;
              case INT8 -> bytes.get();
              default -> throw new LoweringException("constant " + name + " has type " + type);
            };
          }
          return TensorValue.constant(type, record.sizes(), values);
        }
        Tensor tensor = archive.tensor(record, "CONSTANTS." + name);
        Value graphValue = emitter.graph().addInitializer(emitter.reserveName("constants." + name), tensor);
        return TensorValue.of(graphValue, tensor.dataType(), record.sizes().length);
      }
      if (value instanceof Long || value instanceof Double || value instanceof Boolean || value instanceof String) {
        return value;
      }
      throw new LoweringException("CONSTANTS." + name + " is a " + Values.describe(value));
    });
  }

  private Object call(Expr.Call call, Map<String, Object> environment, ModuleRef self) {
    Expr function = call.function();
    if (function instanceof Expr.Name name) {
      switch (name.identifier()) {
        case "getattr" -> {
          Object target = evaluate(call.arguments().get(0), environment, self);
          Object key = evaluate(call.arguments().get(1), environment, self);
          if (target instanceof ModuleRef module && key instanceof String text) {
            return member(module, text);
          }
          throw new LoweringException("getattr on " + Values.describe(target));
        }
        case "annotate" -> {
          return evaluate(call.arguments().get(1), environment, self);
        }
        case "int", "float", "bool" -> {
          return convert(name.identifier(), evaluate(call.arguments().get(0), environment, self));
        }
        default -> throw new LoweringException("call of '" + name.identifier() + "' (a scripted function, not a traced op)");
      }
    }
    if (function instanceof Expr.Attribute attribute) {
      String namespace = namespace(attribute.target());
      if ("torch".equals(namespace)) {
        return aten(attribute.name(), call, environment, self);
      }
      if ("ops.prim".equals(namespace)) {
        return prim(attribute.name(), call, environment, self);
      }
      if (namespace == null && attribute.name().startsWith("forward")) {
        Object target = evaluate(attribute.target(), environment, self);
        if (target instanceof ModuleRef module) {
          List<Object> arguments = new ArrayList<>();
          for (Expr argument : call.arguments()) {
            arguments.add(evaluate(argument, environment, self));
          }
          return call(module, attribute.name(), arguments);
        }
      }
      throw new LoweringException("call of '" + render(function) + "'");
    }
    throw new LoweringException("call of an expression");
  }

  private static String namespace(Expr expression) {
    if (expression instanceof Expr.Name name && (name.identifier().equals("torch") || name.identifier().equals("ops"))) {
      return name.identifier();
    }
    if (expression instanceof Expr.Attribute attribute) {
      String outer = namespace(attribute.target());
      return outer == null ? null : outer + "." + attribute.name();
    }
    return null;
  }

  private static String render(Expr expression) {
    if (expression instanceof Expr.Name name) {
      return name.identifier();
    }
    if (expression instanceof Expr.Attribute attribute) {
      return render(attribute.target()) + "." + attribute.name();
    }
    return "<expression>";
  }

  private Object aten(String op, Expr.Call call, Map<String, Object> environment, ModuleRef self) {
    if (op.equals("device")) {
      return new Device(String.valueOf(evaluate(call.arguments().get(0), environment, self)));
    }
    // Arguments first: in nested calls the innermost unknown op is the one named, as torch would run it first.
    List<Object> positional = new ArrayList<>();
    for (Expr argument : call.arguments()) {
      positional.add(evaluate(argument, environment, self));
    }
    Map<String, Object> keywords = new LinkedHashMap<>();
    for (Expr.Keyword keyword : call.keywords()) {
      keywords.put(keyword.name(), evaluate(keyword.value(), environment, self));
    }
    Lowering lowering = AtenOps.lowering(op);
    if (lowering == null) {
      throw new LoweringException("aten op 'torch." + op + "' has no ONNX lowering");
    }
    opCounts.merge("aten::" + op, 1, Integer::sum);
    return lowering.lower(new Arguments(op, positional, keywords), emitter);
  }

  private Object prim(String op, Expr.Call call, Map<String, Object> environment, ModuleRef self) {
    opCounts.merge("prim::" + op, 1, Integer::sum);
    if (op.equals("NumToTensor") && call.arguments().size() == 1) {
      Object value = evaluate(call.arguments().get(0), environment, self);
      if (value instanceof SymbolicInt symbolic) {
        return TensorValue.of(symbolic.value(), DataType.INT64, 0);
      }
      return Values.asTensor(value, emitter);
    }
    throw new LoweringException("prim op 'ops.prim." + op + "' has no ONNX lowering");
  }

  private Object convert(String kind, Object value) {
    if (kind.equals("int")) {
      if (value instanceof Long || value instanceof SymbolicInt) {
        return value;
      }
      if (value instanceof TensorValue tensor && tensor.rank() == 0) {
        if (tensor.isConstant()) {
          return (long) tensor.constantValues()[0];
        }
        return new SymbolicInt(Values.cast(tensor, DataType.INT64, emitter).value(emitter), null);
      }
      if (value instanceof Double number) {
        return (long) number.doubleValue();
      }
    }
    if (kind.equals("float")) {
      if (value instanceof Double) {
        return value;
      }
      if (value instanceof Long number) {
        return number.doubleValue();
      }
      if (value instanceof TensorValue tensor && tensor.rank() == 0) {
        if (tensor.isConstant()) {
          return tensor.constantValues()[0];
        }
        // A traced float stays a 0-d tensor: every consumer accepts one.
        return Values.cast(tensor, DataType.FLOAT, emitter);
      }
    }
    if (kind.equals("bool") && value instanceof Boolean) {
      return value;
    }
    throw new LoweringException(kind + "() of " + Values.describe(value));
  }
}
