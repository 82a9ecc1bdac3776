/// The version written into config.json, checkpoints and reports.
public enum JEMVersion {
    public static let string = "0.1.0"
}
