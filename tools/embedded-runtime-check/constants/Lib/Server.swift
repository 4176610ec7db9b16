// Issue #25, library side: the server switches over the payload enum and sends the case's constant answer, as
// ChannelPipe and ConnectionSetup did before their workarounds (git 661bb1a, be99af3).
public struct Server {
    public init() {}

    /// (the case taken, the bytes to send)
    public func answer(_ input: [UInt8]) -> (String, [UInt8]) {
        switch Greeting.greeting(input[...]) {
        case .needMore: return ("needMore", [])
        case .greeted(let reply, _): return ("greeted", reply)
        case .reject(let reply): return ("reject", reply)
        case .connect: return ("connect", [])
        }
    }
}
