import CLinux

/// Kernel randomness for secrets and tokens. getrandom(2) without flags blocks until the pool is seeded (early
/// boot on a board without an RTC), which is the point: there is no weaker fallback to reach for.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0)
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        out.withUnsafeMutableBytes { buffer in
            while filled < count {
                let n = getrandom(buffer.baseAddress! + filled, count - filled, 0)
                if n > 0 { filled += n; continue }
                let error = clinux_errno()
                if n < 0 && error == EINTR { continue }
                fatalError("getrandom failed: errno \(error)")
            }
        }
        return out
    }

    public static func hex(_ count: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(count * 2)
        for b in bytes(count) {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
