// Issue #25's second Embedded defect, library side: SOCKS5.greeting as Sources/Relay/Protocols/SOCKS5.swift had it
// before its workaround (git 661bb1a): two constant answers of the same size, [5, 0xFF] and [5, 0]. With
// -D PAIRS_AT_RUN_TIME it builds them at run time as SOCKS5.pair does now (the workaround).
public enum Step: Equatable {
    case needMore
    case greeted(reply: [UInt8], consumed: Int)
    case reject(reply: [UInt8])
    case connect(host: String, port: UInt16, consumed: Int)
}

#if PAIRS_AT_RUN_TIME
@inline(never)
func pair(_ first: UInt8, _ second: UInt8) -> [UInt8] {
    var result = [UInt8](repeating: first, count: 2)
    result[1] = second
    return result
}
#endif

public enum Greeting {
    public static func greeting(_ bytes: ArraySlice<UInt8>) -> Step {
        guard bytes.count >= 2 else { return .needMore }
        let base = bytes.startIndex
#if PAIRS_AT_RUN_TIME
        guard bytes[base] == 5 else { return .reject(reply: pair(5, 0xFF)) }
        let count = Int(bytes[base + 1])
        guard bytes.count >= 2 + count else { return .needMore }
        let methods = bytes[(base + 2)..<(base + 2 + count)]
        guard methods.contains(0) else { return .reject(reply: pair(5, 0xFF)) }
        return .greeted(reply: pair(5, 0), consumed: 2 + count)
#else
        guard bytes[base] == 5 else { return .reject(reply: [5, 0xFF]) }
        let count = Int(bytes[base + 1])
        guard bytes.count >= 2 + count else { return .needMore }
        let methods = bytes[(base + 2)..<(base + 2 + count)]
        guard methods.contains(0) else { return .reject(reply: [5, 0xFF]) }
        return .greeted(reply: [5, 0], consumed: 2 + count)
#endif
    }
}
