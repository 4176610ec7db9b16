/// The appliance's one SOCKS5 server (dynamic forwards through an SSH host and on the appliance itself): the
/// greeting (method 00 only), then one CONNECT, judged from the bytes received so far. No I/O.
///
/// The answer is a struct with a raw-value outcome, and the greeting is checked here with answers built at run time,
/// not by switching over `SOCKS5.Step` and sending its constant payloads: built by Embedded Swift 6.3.1 -Osize, that
/// form answered a valid greeting 05 01 00 with 05 FF, on aarch64 and x86_64 alike (a defect of its own, not the
/// runtime's of issue #13). The request's result is matched with an if-case chain, the form that holds there.
public struct SOCKS5Server {
    public enum Outcome: UInt8 { case needMore, connect, refuse }

    public struct Step {
        public var outcome: Outcome
        /// To send now, before anything else: the greeting's `05 00`, a refusal, or both in that order.
        public var answer: [UInt8] = []
        /// Input bytes this step used; what follows them is payload for the target.
        public var consumed = 0
        /// The CONNECT's target (`connect` only).
        public var host = ""
        public var port: UInt16 = 0
    }

    /// Longer than any greeting (2 + 255) and any request (4 + 1 + 255 + 2) together: a client past it is refused.
    public static let maxHandshake = 2 + 255 + 4 + 1 + 255 + 2

    public private(set) var greeted = false

    public init() {}

    /// `input`: every byte received and not consumed by an earlier step.
    public mutating func step(_ input: ArraySlice<UInt8>) -> Step {
        var result = Step(outcome: .needMore)
        var rest = input
        if !greeted {
            guard rest.count >= 2 else { return result }
            let base = rest.startIndex
            let count = Int(rest[base + 1])
            guard rest[base] == 5 else { return refuse(result, SOCKS5Server.pair(5, 0xFF)) }
            guard rest.count >= 2 + count else { return result }
            guard rest[(base + 2)..<(base + 2 + count)].contains(0) else {
                return refuse(result, SOCKS5Server.pair(5, 0xFF))
            }
            greeted = true
            result.answer = SOCKS5Server.pair(5, 0)
            result.consumed = 2 + count
            rest = rest.dropFirst(2 + count)
        }
        let request = SOCKS5.request(rest)
        if case .connect(let target, let port, let consumed) = request {
            result.outcome = .connect
            result.consumed += consumed
            result.host = SOCKS5.hostText(target)
            result.port = port
            return result
        } else if case .reject(let reply) = request {
            return refuse(result, reply)
        } else if case .needMore = request {
            if input.count > SOCKS5Server.maxHandshake { return refuse(result, SOCKS5.reply(.generalFailure)) }
            return result
        }
        return refuse(result, SOCKS5.reply(.generalFailure))
    }

    private func refuse(_ step: Step, _ reply: [UInt8]) -> Step {
        var refused = step
        refused.outcome = .refuse
        refused.answer += reply
        return refused
    }

    /// Two bytes, built at run time (see above).
    static func pair(_ first: UInt8, _ second: UInt8) -> [UInt8] {
        var result = [UInt8](repeating: first, count: 2)
        result[1] = second
        return result
    }
}
