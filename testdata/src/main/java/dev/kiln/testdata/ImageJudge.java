package dev.kiln.testdata;

import dev.kiln.common.KilnException;
import java.awt.image.BufferedImage;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.Optional;

/**
 * Judges an image of Kiln's tiny pipeline: which colour the foreground shape has, which shape it is, and which
 * background it sits on. Java twin of {@code testdata/tiny/judge.py}, step for step, so that Java pipeline
 * tests can assert "the image for 'a red circle on a white background' is a red circle":
 *
 * <ol>
 *   <li>background = per-channel lower median of the 2-pixel border frame;
 *   <li>every pixel's RGB distance to the background; below 40 everywhere means no foreground;
 *   <li>foreground = distance &gt; max(40, half the largest distance), largest 4-connected component
 *       (first in raster order on ties), at least 12 pixels;
 *   <li>colour = palette colour nearest the mean RGB of the component's core (distance &ge; its lower median),
 *       so anti-aliased edges do not drag the colour towards the background;
 *   <li>shape = template with the best IoU inside the component's bounding box, each template being the
 *       canonical shape of {@code scenes.py} stretched to that box (size and aspect drop out).
 * </ol>
 */
public final class ImageJudge {
  private static final double MIN_DISTANCE = 40.0;
  private static final int MIN_AREA = 12;
  private static final int BORDER = 2;

  // Shape geometry of testdata/tiny/scenes.py, in units of the nominal radius r.
  static final double STAR_OUTER = 1.2;
  static final double STAR_INNER_RATIO = 0.5;
  static final double TRIANGLE_RADIUS = 1.2;
  static final double SQUARE_HALF = 0.85;

  /** What the judge's palettes share: the RGB scenes.py draws (before jitter) and the word prompts use for it. */
  public interface Swatch {
    String name();

    /** The colour as 0xRRGGBB. */
    int rgb();

    /** The word prompts use for it. */
    default String word() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /** The pipeline's shape colours. */
  public enum Colour implements Swatch {
    RED(220, 30, 30), GREEN(30, 180, 40), BLUE(30, 50, 220), YELLOW(240, 220, 30), MAGENTA(220, 40, 220),
    CYAN(30, 210, 220);

    private final int rgb;

    Colour(int red, int green, int blue) {
      this.rgb = (red << 16) | (green << 8) | blue;
    }

    @Override
    public int rgb() {
      return rgb;
    }
  }

  /** The pipeline's backgrounds. */
  public enum Background implements Swatch {
    WHITE(240, 240, 240), BLACK(16, 16, 16), GRAY(128, 128, 128);

    private final int rgb;

    Background(int red, int green, int blue) {
      this.rgb = (red << 16) | (green << 8) | blue;
    }

    @Override
    public int rgb() {
      return rgb;
    }
  }

  /** The pipeline's shapes, in the judge's tie-break order. */
  public enum Shape {
    CIRCLE, SQUARE, TRIANGLE, STAR;

    public String word() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Whether point (x, y) lies inside this shape of radius r centred at (cx, cy). */
    public boolean contains(double cx, double cy, double r, double x, double y) {
      switch (this) {
        case CIRCLE:
          return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r;
        case SQUARE:
          return Math.abs(x - cx) <= SQUARE_HALF * r && Math.abs(y - cy) <= SQUARE_HALF * r;
        case TRIANGLE:
          return insidePolygon(x, y, polygon(cx, cy, r));
        default:
          return insidePolygon(x, y, polygon(cx, cy, r));
      }
    }

    /** The outline of a polygonal shape as {x0, y0, x1, y1, ...}; circles and squares are not polygons here. */
    public double[] polygon(double cx, double cy, double r) {
      if (this == TRIANGLE) {
        double radius = TRIANGLE_RADIUS * r;
        double[] angles = {-Math.PI / 2, Math.PI / 6, 5 * Math.PI / 6};
        double[] points = new double[6];
        for (int i = 0; i < 3; i++) {
          points[2 * i] = cx + radius * Math.cos(angles[i]);
          points[2 * i + 1] = cy + radius * Math.sin(angles[i]);
        }
        return points;
      }
      if (this == STAR) {
        double outer = STAR_OUTER * r;
        double inner = STAR_INNER_RATIO * outer;
        double[] points = new double[20];
        for (int i = 0; i < 10; i++) {
          double angle = -Math.PI / 2 + i * Math.PI / 5;
          double radius = i % 2 == 0 ? outer : inner;
          points[2 * i] = cx + radius * Math.cos(angle);
          points[2 * i + 1] = cy + radius * Math.sin(angle);
        }
        return points;
      }
      throw new IllegalStateException(this + " has no polygon");
    }

    /** Bounding box {minX, maxX, minY, maxY} of the canonical shape (centre 0, radius 1). */
    double[] canonicalBounds() {
      if (this == CIRCLE) {
        return new double[] {-1, 1, -1, 1};
      }
      if (this == SQUARE) {
        return new double[] {-SQUARE_HALF, SQUARE_HALF, -SQUARE_HALF, SQUARE_HALF};
      }
      double[] points = polygon(0, 0, 1);
      double[] bounds = {Double.MAX_VALUE, -Double.MAX_VALUE, Double.MAX_VALUE, -Double.MAX_VALUE};
      for (int i = 0; i < points.length; i += 2) {
        bounds[0] = Math.min(bounds[0], points[i]);
        bounds[1] = Math.max(bounds[1], points[i]);
        bounds[2] = Math.min(bounds[2], points[i + 1]);
        bounds[3] = Math.max(bounds[3], points[i + 1]);
      }
      return bounds;
    }
  }

  /**
   * What the judge saw. Colour and shape are empty when no foreground was found.
   *
   * @param area pixels in the foreground component
   * @param ious IoU of the component with each shape's template (empty without a foreground)
   */
  public record Verdict(
      Optional<Colour> colour, Optional<Shape> shape, Background background, int area, Map<Shape, Double> ious) {
    /** True when the image shows this colour and this shape. */
    public boolean shows(Colour expectedColour, Shape expectedShape) {
      return colour.equals(Optional.of(expectedColour)) && shape.equals(Optional.of(expectedShape));
    }

    @Override
    public String toString() {
      return colour.map(Colour::word).orElse("none") + " " + shape.map(Shape::word).orElse("none") + " on "
          + background.word() + " (" + area + " px)";
    }
  }

  private ImageJudge() {}

  /** Judges a {@link BufferedImage} (any type; alpha is ignored). */
  public static Verdict judge(BufferedImage image) {
    int width = image.getWidth();
    int height = image.getHeight();
    return judge(image.getRGB(0, 0, width, height, null, 0, width), width, height);
  }

  /**
   * Judges a decoded VAE output as the pipeline produces it: float [3, height, width] (planar, batch of one),
   * values in about [-1, 1], converted to pixels as diffusers does: round(clamp(x / 2 + 0.5, 0, 1) * 255).
   */
  public static Verdict judgePlanar(float[] chw, int width, int height) {
    int plane = width * height;
    if (chw.length != 3 * plane) {
      throw new KilnException.BadInput("image judge: expected 3 x " + height + " x " + width + " = " + 3 * plane
          + " floats, got " + chw.length);
    }
    int[] pixels = new int[plane];
    for (int i = 0; i < plane; i++) {
      pixels[i] = (toByte(chw[i]) << 16) | (toByte(chw[plane + i]) << 8) | toByte(chw[2 * plane + i]);
    }
    return judge(pixels, width, height);
  }

  /** Converts one decoded value to a byte value the way diffusers' postprocess does. */
  static int toByte(float value) {
    double scaled = Math.min(1.0, Math.max(0.0, value / 2.0 + 0.5)) * 255.0;
    return (int) Math.rint(scaled);
  }

  /** Judges packed 0xRRGGBB pixels in row-major order (the upper byte is ignored). */
  public static Verdict judge(int[] pixels, int width, int height) {
    if (width <= 2 * BORDER || height <= 2 * BORDER || pixels.length != width * height) {
      throw new KilnException.BadInput("image judge: expected " + width + " x " + height
          + " pixels (both sides > " + 2 * BORDER + "), got " + pixels.length);
    }
    int count = width * height;
    int[][] channels = new int[3][count];
    for (int i = 0; i < count; i++) {
      channels[0][i] = (pixels[i] >> 16) & 0xFF;
      channels[1][i] = (pixels[i] >> 8) & 0xFF;
      channels[2][i] = pixels[i] & 0xFF;
    }
    double[] background = new double[3];
    for (int c = 0; c < 3; c++) {
      int[] border = new int[2 * BORDER * width + 2 * BORDER * (height - 2 * BORDER)];
      int n = 0;
      for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
          if (y < BORDER || y >= height - BORDER || x < BORDER || x >= width - BORDER) {
            border[n++] = channels[c][y * width + x];
          }
        }
      }
      Arrays.sort(border);
      background[c] = border[(n - 1) / 2];
    }
    Background backgroundName = nearest(Background.values(), background);
    double[] distance = new double[count];
    double largest = 0;
    for (int i = 0; i < count; i++) {
      double dr = channels[0][i] - background[0];
      double dg = channels[1][i] - background[1];
      double db = channels[2][i] - background[2];
      distance[i] = Math.sqrt(dr * dr + dg * dg + db * db);
      largest = Math.max(largest, distance[i]);
    }
    Verdict none = new Verdict(Optional.empty(), Optional.empty(), backgroundName, 0, Collections.emptyMap());
    if (largest < MIN_DISTANCE) {
      return none;
    }
    double threshold = Math.max(MIN_DISTANCE, 0.5 * largest);
    boolean[] component = largestComponent(distance, threshold, width, height);
    int area = 0;
    for (boolean inside : component) {
      area += inside ? 1 : 0;
    }
    if (area < MIN_AREA) {
      return new Verdict(Optional.empty(), Optional.empty(), backgroundName, area, Collections.emptyMap());
    }

    double[] componentDistances = new double[area];
    int n = 0;
    int minX = width;
    int maxX = -1;
    int minY = height;
    int maxY = -1;
    for (int i = 0; i < count; i++) {
      if (component[i]) {
        componentDistances[n++] = distance[i];
        minX = Math.min(minX, i % width);
        maxX = Math.max(maxX, i % width);
        minY = Math.min(minY, i / width);
        maxY = Math.max(maxY, i / width);
      }
    }
    Arrays.sort(componentDistances);
    double coreThreshold = componentDistances[(area - 1) / 2];
    double[] mean = new double[3];
    int core = 0;
    for (int i = 0; i < count; i++) {
      if (component[i] && distance[i] >= coreThreshold) {
        for (int c = 0; c < 3; c++) {
          mean[c] += channels[c][i];
        }
        core++;
      }
    }
    for (int c = 0; c < 3; c++) {
      mean[c] /= core;
    }
    Colour colour = nearest(Colour.values(), mean);

    int boxWidth = maxX - minX + 1;
    int boxHeight = maxY - minY + 1;
    Map<Shape, Double> ious = new EnumMap<>(Shape.class);
    Shape best = null;
    double bestIou = -1;
    for (Shape shape : Shape.values()) {
      double[] bounds = shape.canonicalBounds();
      int intersection = 0;
      int union = 0;
      for (int y = minY; y <= maxY; y++) {
        double v = (y + 0.5 - minY) / boxHeight;
        double canonicalY = bounds[2] + v * (bounds[3] - bounds[2]);
        for (int x = minX; x <= maxX; x++) {
          double u = (x + 0.5 - minX) / boxWidth;
          boolean template = shape.contains(0, 0, 1, bounds[0] + u * (bounds[1] - bounds[0]), canonicalY);
          boolean observed = component[y * width + x];
          intersection += template && observed ? 1 : 0;
          union += template || observed ? 1 : 0;
        }
      }
      double iou = (double) intersection / union;
      ious.put(shape, iou);
      if (iou > bestIou) {
        best = shape;
        bestIou = iou;
      }
    }
    return new Verdict(Optional.of(colour), Optional.of(best), backgroundName, area,
        Collections.unmodifiableMap(ious));
  }

  private static boolean[] largestComponent(double[] distance, double threshold, int width, int height) {
    int count = width * height;
    int[] labels = new int[count];
    int bestLabel = 0;
    int bestSize = 0;
    int current = 0;
    ArrayDeque<Integer> stack = new ArrayDeque<>();
    for (int start = 0; start < count; start++) {
      if (distance[start] <= threshold || labels[start] != 0) {
        continue;
      }
      current++;
      labels[start] = current;
      stack.push(start);
      int size = 0;
      while (!stack.isEmpty()) {
        int index = stack.pop();
        size++;
        int x = index % width;
        int y = index / width;
        int[] neighbours = {y > 0 ? index - width : -1, y < height - 1 ? index + width : -1,
            x > 0 ? index - 1 : -1, x < width - 1 ? index + 1 : -1};
        for (int neighbour : neighbours) {
          if (neighbour >= 0 && distance[neighbour] > threshold && labels[neighbour] == 0) {
            labels[neighbour] = current;
            stack.push(neighbour);
          }
        }
      }
      if (size > bestSize) {
        bestLabel = current;
        bestSize = size;
      }
    }
    boolean[] component = new boolean[count];
    for (int i = 0; i < count; i++) {
      component[i] = bestSize > 0 && labels[i] == bestLabel;
    }
    return component;
  }

  /** The candidate whose colour is nearest {@code rgb} (first in declaration order on ties). */
  private static <T extends Swatch> T nearest(T[] candidates, double[] rgb) {
    T best = null;
    double bestDistance = Double.MAX_VALUE;
    for (T candidate : candidates) {
      int packed = candidate.rgb();
      double d = distance(rgb, (packed >> 16) & 0xff, (packed >> 8) & 0xff, packed & 0xff);
      if (d < bestDistance) {
        best = candidate;
        bestDistance = d;
      }
    }
    return best;
  }

  private static double distance(double[] rgb, int red, int green, int blue) {
    double dr = rgb[0] - red;
    double dg = rgb[1] - green;
    double db = rgb[2] - blue;
    return Math.sqrt(dr * dr + dg * dg + db * db);
  }

  static boolean insidePolygon(double x, double y, double[] points) {
    boolean inside = false;
    int vertices = points.length / 2;
    for (int i = 0; i < vertices; i++) {
      double x1 = points[2 * i];
      double y1 = points[2 * i + 1];
      double x2 = points[(2 * ((i + 1) % vertices))];
      double y2 = points[(2 * ((i + 1) % vertices)) + 1];
      if ((y1 > y) != (y2 > y)) {
        double xAt = x1 + (y - y1) * (x2 - x1) / (y2 - y1);
        if (x < xAt) {
          inside = !inside;
        }
      }
    }
    return inside;
  }
}
