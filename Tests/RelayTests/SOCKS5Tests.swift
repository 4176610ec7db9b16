import Testing
@testable import Relay

@Suite struct SOCKS5Tests {
    @Test func greeting() {
        #expect(SOCKS5.greeting([5][...]) == .needMore)
        #expect(SOCKS5.greeting([5, 2, 0][...]) == .needMore)
        #expect(SOCKS5.greeting([5, 2, 2, 0][...]) == .greeted(reply: [5, 0], consumed: 4))
        #expect(SOCKS5.greeting([5, 1, 2][...]) == .reject(reply: [5, 0xFF]))     // no "no auth" method
        #expect(SOCKS5.greeting([4, 1, 0][...]) == .reject(reply: [5, 0xFF]))     // SOCKS4
    }

    @Test func connectIPv4DomainIPv6() {
        #expect(SOCKS5.request([5, 1, 0, 1, 127, 0, 0, 1, 0x1F, 0x90][...])
                == .connect(target: .ipv4([127, 0, 0, 1]), port: 8080, consumed: 10))
        let domain: [UInt8] = [5, 1, 0, 3, 9] + Array("localhost".utf8) + [0, 80, 0xAA]
        #expect(SOCKS5.request(domain[...]) == .connect(target: .domain("localhost"), port: 80, consumed: 16))
        var v6: [UInt8] = [5, 1, 0, 4] + [UInt8](repeating: 0, count: 15) + [1]
        v6 += [0, 22]
        #expect(SOCKS5.request(v6[...]) == .connect(target: .ipv6([UInt8](repeating: 0, count: 15) + [1]), port: 22,
                                                     consumed: 22))
        #expect(SOCKS5.hostText(.ipv6([UInt8](repeating: 0, count: 15) + [1])) == "0:0:0:0:0:0:0:1")
    }

    @Test func partialRequestsWait() {
        let full: [UInt8] = [5, 1, 0, 3, 4] + Array("host".utf8) + [0, 80]
        for n in 0..<full.count { #expect(SOCKS5.request(full[0..<n]) == .needMore, "\(n)") }
    }

    @Test func unsupportedCommandsAndTypes() {
        #expect(SOCKS5.request([5, 2, 0, 1, 1, 2, 3, 4, 0, 80][...]) == .reject(reply: SOCKS5.reply(.commandNotSupported)))
        #expect(SOCKS5.request([5, 3, 0, 1, 1, 2, 3, 4, 0, 80][...]) == .reject(reply: SOCKS5.reply(.commandNotSupported)))
        #expect(SOCKS5.request([5, 1, 0, 9, 1, 2][...]) == .reject(reply: SOCKS5.reply(.addressTypeNotSupported)))
        #expect(SOCKS5.request([5, 1, 0, 3, 0, 0, 80][...]) == .reject(reply: SOCKS5.reply(.generalFailure)))
        #expect(SOCKS5.request([5, 1, 0, 3, 2, 0, 0x41, 0, 80][...]) == .reject(reply: SOCKS5.reply(.generalFailure)))
        #expect(SOCKS5.reply(.succeeded) == [5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    }
}
