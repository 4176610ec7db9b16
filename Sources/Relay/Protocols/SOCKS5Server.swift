/// The appliance's one SOCKS5 server (dynamic forwards through an SSH host and on the appliance itself): the
/// greeting (method 00 only), then one CONNECT, judged from the bytes received so far. No I/O.
///
/// The answer is a struct with a raw-value outcome. It switches over `SOCKS5.Step` (payload enums are safe in the
/// Embedded product: issue #25's "05 FF" came from same-named constant arrays, see `SOCKS5.pair`).
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
            switch SOCKS5.greeting(rest) {
            case .needMore: return result
            case .greeted(let reply, let consumed):
                greeted = true
                result.answer = reply
                result.consumed = consumed
                rest = rest.dropFirst(consumed)
            case .reject(let reply): return refuse(result, reply)
            case .connect: return refuse(result, SOCKS5.reply(.generalFailure))
            }
        }
        switch SOCKS5.request(rest) {
        case .connect(let target, let port, let consumed):
            result.outcome = .connect
            result.consumed += consumed
            result.host = SOCKS5.hostText(target)
            result.port = port
            return result
        case .reject(let reply): return refuse(result, reply)
        case .needMore:
            if input.count > SOCKS5Server.maxHandshake { return refuse(result, SOCKS5.reply(.generalFailure)) }
            return result
        case .greeted: return refuse(result, SOCKS5.reply(.generalFailure))
        }
    }

    private func refuse(_ step: Step, _ reply: [UInt8]) -> Step {
        var refused = step
        refused.outcome = .refuse
        refused.answer += reply
        return refused
    }
}
