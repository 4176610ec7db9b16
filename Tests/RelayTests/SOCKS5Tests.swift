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

/// Issue #16: the one SOCKS5 server both dynamic forwards use.
@Suite struct SOCKS5ServerTests {
    static let connect: [UInt8] = [5, 1, 0, 3, 9] + Array("db.lan.ex".utf8) + [0x15, 0x38]

    @Test func greetingAndRequestTogetherOrInPieces() {
        var whole = SOCKS5Server()
        let input: [UInt8] = [5, 2, 2, 0] + SOCKS5ServerTests.connect + [0xAA]
        let step = whole.step(input[...])
        #expect(step.outcome == .connect && step.answer == [5, 0] && step.host == "db.lan.ex" && step.port == 5432)
        #expect(step.consumed == input.count - 1)       // the early payload byte stays

        var pieces = SOCKS5Server()
        var buffer: [UInt8] = []
        var answers: [UInt8] = []
        var last = SOCKS5Server.Step(outcome: .needMore)
        for byte in input {
            buffer.append(byte)
            last = pieces.step(buffer[...])
            answers += last.answer
            buffer.removeFirst(last.consumed)
            if last.outcome != .needMore { break }
        }
        #expect(last.outcome == .connect && last.host == "db.lan.ex" && answers == [5, 0] && buffer.isEmpty)
    }

    @Test func refusals() {
        var server = SOCKS5Server()
        #expect(server.step([4, 1, 0][...]).answer == [5, 0xFF])
        server = SOCKS5Server()
        let noMethod = server.step([5, 1, 2][...])
        #expect(noMethod.outcome == .refuse && noMethod.answer == [5, 0xFF])
        server = SOCKS5Server()
        let bind = server.step([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80][...])    // BIND
        #expect(bind.outcome == .refuse && bind.answer == [5, 0] + SOCKS5.reply(.commandNotSupported))
        server = SOCKS5Server()
        let badName = server.step([5, 1, 0, 5, 1, 0, 3, 3, 0x61, 0x20, 0x62, 0, 80][...])
        #expect(badName.outcome == .refuse && badName.answer.suffix(10) == SOCKS5.reply(.generalFailure)[...])
    }

    @Test func garbageAfterTheGreetingIsRefusedNotWaitedFor() {
        var server = SOCKS5Server()
        _ = server.step([5, 1, 0][...])
        let junk = [UInt8](repeating: 5, count: 3) + [3, 255] + [UInt8](repeating: 0x61, count: 600)
        let step = server.step(junk[...])
        #expect(step.outcome == .refuse && step.answer == SOCKS5.reply(.commandNotSupported))
        #expect(SOCKS5Server.maxHandshake >= 2 + 255 + 4 + 1 + 255 + 2)
    }
}
