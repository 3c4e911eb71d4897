package dev.kiln.graph;

/**
 * An operator identity: domain plus name. The default ONNX domain is stored as "" whether a file
 * spells it "" or "ai.onnx", so two spellings never make two different operators.
 */
public record OpType(String domain, String name) {
  public static final String DEFAULT_DOMAIN = "";
  public static final String MICROSOFT_DOMAIN = "com.microsoft";

  public OpType {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException("operator name is empty");
    }
    domain = normalizeDomain(domain);
  }

  /** An operator of the default ONNX domain. */
  public static OpType onnx(String name) {
    return new OpType(DEFAULT_DOMAIN, name);
  }

  /** An ONNX Runtime contrib operator (domain com.microsoft). */
  public static OpType microsoft(String name) {
    return new OpType(MICROSOFT_DOMAIN, name);
  }

  public static OpType of(String domain, String name) {
    return new OpType(domain, name);
  }

  /** "" for null, "" and "ai.onnx"; anything else unchanged. */
  public static String normalizeDomain(String domain) {
    return domain == null || domain.equals("ai.onnx") ? DEFAULT_DOMAIN : domain;
  }

  public boolean isDefaultDomain() {
    return domain.isEmpty();
  }

  /** "Add" for the default domain, "com.microsoft:GroupNorm" otherwise (the op-histogram key). */
  public String key() {
    return domain.isEmpty() ? name : domain + ":" + name;
  }

  @Override
  public String toString() {
    return key();
  }
}
