package dev.kiln.graph.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kiln.graph.Shape;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DimExpressionsTest {
  @Test
  void evaluatesMonomialsAndWindowFormulas() {
    assertEquals(24L, DimExpressions.evaluate(Shape.symbolic("4*height:8"), Map.of("height:8", 6L)));
    assertEquals(25L, DimExpressions.evaluate(Shape.symbolic("((h+0-1)/2+1)"), Map.of("h", 49L)));
    assertEquals(-3L, DimExpressions.evaluate(Shape.symbolic("(a-b)"), Map.of("a", 2L, "b", 5L)));
    assertEquals(7L, DimExpressions.evaluate(Shape.known(7), Map.of()));
    assertNull(DimExpressions.evaluate(Shape.symbolic("2*h"), Map.of()));
    assertNull(DimExpressions.evaluate(Shape.UNKNOWN, Map.of()));
    assertEquals(Set.of("batch", "height:8"), DimExpressions.atoms(Shape.symbolic("2*batch*height:8")));
  }

  @Test
  void aStrideTwoWindowHalvesAMultipleOfTwoExactly() {
    // 3x3, stride 2, padding 1: floor((8h + 2 - 2 - 1) / 2) + 1 = 4h.
    assertEquals(Shape.symbolic("4*h"), DimArithmetic.window(Shape.symbolic("8*h"), 3, 2, 1, 1, 1));
    // 2x2, stride 2, no padding (pooling): 8h/2 = 4h as well.
    assertEquals(Shape.symbolic("4*h"), DimArithmetic.window(Shape.symbolic("8*h"), 2, 2, 0, 0, 1));
    // An odd multiple keeps the formula.
    assertEquals(Shape.symbolic("((h+0-1)/2+1)"), DimArithmetic.window(Shape.symbolic("h"), 3, 2, 1, 1, 1));
  }
}
