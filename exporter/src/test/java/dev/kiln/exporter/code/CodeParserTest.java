package dev.kiln.exporter.code;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The traced-code subset: what torch writes parses to the expected tree; what it never writes is refused by line. */
class CodeParserTest {
  private static final String FILE = "code/__torch__/models/___torch_mangle_7.py";

  private static Method forward(String body) {
    String source = "class Block(Module):\n  __parameters__ = []\n  conv : __torch__.torch.nn.modules.conv.Conv2d\n"
        + "  def forward(self: __torch__.models.___torch_mangle_7.Block,\n    argument_1: Tensor,\n    x: Tensor) -> Tensor:\n" + body;
    Map<String, ClassDef> classes = CodeParser.parse(Map.of(FILE, source));
    ClassDef block = classes.get("__torch__.models.___torch_mangle_7.Block");
    assertEquals(List.of("self", "argument_1", "x"), block.methods().get("forward").parameters());
    return block.methods().get("forward");
  }

  @Test
  void parsesCallsKeywordsLiteralsAndUnpacking() {
    Method method = forward("    _0, _1, = torch.chunk((self.conv).forward1(x, ), 2, -1)\n"
        + "    _2 = torch.full([int(_0), 3], -3.4028234663852886e+38, dtype=6, device=torch.device(\"cpu\"))\n"
        + "    _3 = annotate(List[Optional[Tensor]], [_2, None])\n"
        + "    return (_0, _3)\n");
    assertEquals(4, method.body().size());
    Statement.Assign unpack = (Statement.Assign) method.body().get(0);
    assertEquals(List.of("_0", "_1"), unpack.targets());
    assertTrue(unpack.unpack());
    assertEquals(7, unpack.line());
    Expr.Call chunk = (Expr.Call) unpack.value();
    assertEquals(new Expr.Attribute(new Expr.Name("torch"), "chunk"), chunk.function());
    assertEquals(new Expr.IntLiteral(-1), chunk.arguments().get(2));
    Expr.Call forward1 = (Expr.Call) chunk.arguments().get(0);
    assertEquals("forward1", ((Expr.Attribute) forward1.function()).name());
    Expr.Call full = (Expr.Call) ((Statement.Assign) method.body().get(1)).value();
    assertEquals(new Expr.FloatLiteral(-3.4028234663852886e+38), full.arguments().get(1));
    assertEquals(List.of("dtype", "device"), full.keywords().stream().map(Expr.Keyword::name).toList());
    assertEquals(new Expr.TupleLiteral(List.of(new Expr.Name("_0"), new Expr.Name("_3"))), ((Statement.Return) method.body().get(3)).value());
  }

  @Test
  void refusesOperatorsAndAttributeMutation() {
    KilnException operator = assertThrows(KilnException.class, () -> forward("    _0 = x + 1\n    return _0\n"));
    assertEquals("unsupported: operator '+' (traced code calls torch ops instead) at " + FILE + ":7", operator.getMessage());
    KilnException mutation = assertThrows(KilnException.class, () -> forward("    self.conv = x\n    return x\n"));
    assertEquals("unsupported: assignment to 'self.conv' at " + FILE + ":7", mutation.getMessage());
  }

  @Test
  void whileIsScriptedControlFlow() {
    KilnException failure = assertThrows(KilnException.class, () -> forward("    while bool(x):\n      x = x\n    return x\n"));
    assertEquals("unsupported: scripted control flow at " + FILE + ":7 (export a torch.jit.trace of the module, not torch.jit.script)",
        failure.getMessage());
  }
}
