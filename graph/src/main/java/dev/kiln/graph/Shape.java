package dev.kiln.graph;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A tensor shape whose rank is known: each dimension is a number, a symbol shared by name (e.g. "batch"),
 * or unknown. An unknown rank is represented by the absence of a Shape (null), not by a Shape.
 */
public final class Shape {
  /** One dimension of a shape. */
  public sealed interface Dim permits Known, Symbolic, Unknown {}

  /** A dimension with a fixed size. */
  public record Known(long value) implements Dim {
    @Override
    public String toString() {
      return Long.toString(value);
    }
  }

  /** A dimension named by a symbol; equal symbols mean equal sizes. */
  public record Symbolic(String name) implements Dim {
    public Symbolic {
      if (name == null) {
        throw new IllegalArgumentException("symbol name is null");
      }
    }

    @Override
    public String toString() {
      return "'" + name + "'";
    }
  }

  /** A dimension nothing is known about. */
  public record Unknown() implements Dim {
    @Override
    public String toString() {
      return "?";
    }
  }

  public static final Dim UNKNOWN = new Unknown();
  public static final Shape SCALAR = new Shape(List.of());

  private final List<Dim> dims;

  private Shape(List<Dim> dims) {
    this.dims = dims;
  }

  public static Shape of(long... sizes) {
    List<Dim> dims = new ArrayList<>(sizes.length);
    for (long size : sizes) {
      dims.add(new Known(size));
    }
    return new Shape(Collections.unmodifiableList(dims));
  }

  public static Shape of(List<? extends Dim> dims) {
    for (Dim dim : dims) {
      if (dim == null) {
        throw new IllegalArgumentException("null dimension; use Shape.UNKNOWN");
      }
    }
    return new Shape(List.copyOf(dims));
  }

  public static Shape of(Dim... dims) {
    return of(List.of(dims));
  }

  public static Known known(long value) {
    return new Known(value);
  }

  public static Symbolic symbolic(String name) {
    return new Symbolic(name);
  }

  public List<Dim> dims() {
    return dims;
  }

  public Dim dim(int index) {
    return dims.get(index);
  }

  public int rank() {
    return dims.size();
  }

  /** True when every dimension is a number. */
  public boolean isFullyKnown() {
    for (Dim dim : dims) {
      if (!(dim instanceof Known)) {
        return false;
      }
    }
    return true;
  }

  /** The sizes, when every dimension is known; otherwise an {@link IllegalStateException}. */
  public long[] sizes() {
    long[] sizes = new long[dims.size()];
    for (int i = 0; i < sizes.length; i++) {
      if (!(dims.get(i) instanceof Known known)) {
        throw new IllegalStateException("shape " + this + " has a non-numeric dimension " + i);
      }
      sizes[i] = known.value();
    }
    return sizes;
  }

  /** Element count when fully known. */
  public long elementCount() {
    long count = 1;
    for (long size : sizes()) {
      count = Math.multiplyExact(count, size);
    }
    return count;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Shape shape && shape.dims.equals(dims);
  }

  @Override
  public int hashCode() {
    return dims.hashCode();
  }

  @Override
  public String toString() {
    StringBuilder text = new StringBuilder("[");
    for (int i = 0; i < dims.size(); i++) {
      if (i > 0) {
        text.append(',');
      }
      text.append(dims.get(i));
    }
    return text.append(']').toString();
  }
}
