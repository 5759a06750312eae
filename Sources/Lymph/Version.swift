public enum Lymph { public static let version = "0.1.0" }
