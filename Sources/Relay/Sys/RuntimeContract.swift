import CSupport

/// The Swift runtime entry points whose contract the compiler relies on, checked on the runtime this binary really
/// links. The product's Embedded runtime broke one (`swift_bridgeObjectRetain` returned a masked value and corrupted
/// small strings on aarch64: Sources/CSupport/EmbeddedRuntimeFixes.c); `sluice` checks at every start and refuses to
/// run on a runtime that breaks it again, rather than crash later on a user's request.
public enum RuntimeContract {
    /// nil when every check holds; else which one failed.
    public static func violation() -> String? {
        // built at run time: the small (inline) and the heap representation of String
        for length in [0, 1, 9, 15, 16, 40] {
            let text = digits(length)
            let words = unsafeBitCast(text, to: (UInt, UInt).self)
            guard let object = UnsafeMutableRawPointer(bitPattern: words.1) else { continue }
            let returned = csupport_bridge_object_retain(object)
            csupport_bridge_object_release(object)
            guard UInt(bitPattern: returned) == words.1 else {
                return "the Swift runtime's swift_bridgeObjectRetain changes the value it retains "
                    + "(a \(length)-byte string); this build is unsafe to run"
            }
            guard text.utf8.count == length else { return "a \(length)-byte string lost its length" }
        }
        return nil
    }

    @inline(never)
    static func digits(_ count: Int) -> String {
        var bytes: [UInt8] = []
        for i in 0..<count { bytes.append(UInt8(0x30 + (i * 7 + 1) % 10)) }  // odd last digits: bit 0 is set
        return String(decoding: bytes, as: UTF8.self)
    }
}
