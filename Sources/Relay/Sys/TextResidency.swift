import CSupport

/// The binary's text kept off huge pages (issue #17; the measurements are in Sources/CSupport/TextResidency.c and
/// docs/benchmarks.md): `FilePmdMapped` stays 0 kB where read-only file THP is on.
public enum TextResidency {
    /// At the very start, before most of the code has run.
    public static func keepOffHugePages() { _ = csupport_text_no_huge_pages() }
}
