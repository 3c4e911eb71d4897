package dev.kiln.runner.image;

import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * Where a ControlNet put the shape: the control mask the tiny ControlNet was trained on (black, the shape's filled
 * mask in white, edges anti-aliased by 4x4 supersampled coverage, as testdata/tiny/scenes.py draws it), the mask's
 * centroid, and the centroid of the generated image's shape — the largest 4-connected region that differs from
 * the background (the border's median colour) by more than half the largest difference, as the image judge
 * segments its foreground. The demo prints their distance; the runner's and the CLI's tests hold it to 8 px.
 */
public final class ShapePlacement {
  private ShapePlacement() {}

  /** A square control image of {@code size} px: a white disc of {@code radius} at ({@code centreX}, {@code centreY}). */
  public static RgbImage discMask(int size, double centreX, double centreY, double radius) {
    byte[] pixels = new byte[size * size * 3];
    for (int y = 0; y < size; y++) {
      for (int x = 0; x < size; x++) {
        int covered = 0;
        for (int sub = 0; sub < 16; sub++) {
          double dx = x + (sub % 4 + 0.5) / 4 - centreX;
          double dy = y + (sub / 4 + 0.5) / 4 - centreY;
          covered += dx * dx + dy * dy <= radius * radius ? 1 : 0;
        }
        Arrays.fill(pixels, (y * size + x) * 3, (y * size + x) * 3 + 3, (byte) Math.round(covered * 255 / 16.0));
      }
    }
    return new RgbImage(size, size, pixels);
  }

  /** Intensity-weighted centroid {x, y} of a grey mask (red channel), pixel centres at +0.5; null for an all-black mask. */
  public static double[] maskCentroid(RgbImage mask) {
    double total = 0;
    double sumX = 0;
    double sumY = 0;
    for (int y = 0; y < mask.height(); y++) {
      for (int x = 0; x < mask.width(); x++) {
        double weight = mask.red(x, y);
        total += weight;
        sumX += weight * (x + 0.5);
        sumY += weight * (y + 0.5);
      }
    }
    return total == 0 ? null : new double[] {sumX / total, sumY / total};
  }

  /** Centroid {x, y} of the generated image's shape; null when nothing differs from the background by 40 levels. */
  public static double[] shapeCentroid(RgbImage image) {
    int width = image.width();
    int height = image.height();
    double[] background = borderMedian(image);
    double[] distance = new double[width * height];
    double largest = 0;
    for (int index = 0; index < distance.length; index++) {
      double sum = 0;
      for (int channel = 0; channel < 3; channel++) {
        double difference = (image.pixels()[index * 3 + channel] & 0xff) - background[channel];
        sum += difference * difference;
      }
      distance[index] = Math.sqrt(sum);
      largest = Math.max(largest, distance[index]);
    }
    if (largest < 40) {
      return null;
    }
    double threshold = largest / 2;
    boolean[] seen = new boolean[distance.length];
    double[] best = null;
    int bestArea = 0;
    ArrayDeque<Integer> queue = new ArrayDeque<>();
    for (int start = 0; start < distance.length; start++) {
      if (seen[start] || distance[start] <= threshold) {
        continue;
      }
      seen[start] = true;
      queue.add(start);
      int area = 0;
      double sumX = 0;
      double sumY = 0;
      while (!queue.isEmpty()) {
        int index = queue.poll();
        int x = index % width;
        int y = index / width;
        area++;
        sumX += x + 0.5;
        sumY += y + 0.5;
        int[][] neighbours = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
        for (int[] next : neighbours) {
          int at = next[1] * width + next[0];
          if (next[0] >= 0 && next[0] < width && next[1] >= 0 && next[1] < height && !seen[at] && distance[at] > threshold) {
            seen[at] = true;
            queue.add(at);
          }
        }
      }
      if (area > bestArea) {
        bestArea = area;
        best = new double[] {sumX / area, sumY / area};
      }
    }
    return best;
  }

  /** The median of each channel over the 2-pixel border: the background colour. */
  private static double[] borderMedian(RgbImage image) {
    int width = image.width();
    int height = image.height();
    int border = 2;
    double[] background = new double[3];
    for (int channel = 0; channel < 3; channel++) {
      int[] values = new int[width * height];
      int count = 0;
      for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
          if (y < border || y >= height - border || x < border || x >= width - border) {
            values[count++] = image.pixels()[(y * width + x) * 3 + channel] & 0xff;
          }
        }
      }
      int[] sorted = Arrays.copyOf(values, count);
      Arrays.sort(sorted);
      background[channel] = sorted[(count - 1) / 2];
    }
    return background;
  }

  /** Euclidean distance in px; infinite when either centroid is missing. */
  public static double distance(double[] first, double[] second) {
    if (first == null || second == null) {
      return Double.POSITIVE_INFINITY;
    }
    return Math.hypot(first[0] - second[0], first[1] - second[1]);
  }
}
