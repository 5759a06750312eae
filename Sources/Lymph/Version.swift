/// Lymph's version, as `lymph --version` prints it.
public enum Lymph { public static let version = "0.1.0" }
