// Issue #25's second Embedded defect, reduced: the client module. It uses the library's Server, so Embedded Swift
// compiles Greeting.greeting again here, with its own constant objects for [5, 0xFF] and [5, 0] under the same
// names as the library's (`$e3Lib8GreetingO8greeting…Tv_r`, `…Tv0_r`, `…Tv1_r`) but numbered in another order.
// Built by run.sh as SwiftPM builds a module (wmo, -num-threads: one object per file, the constants weak hidden
// symbols) and linked client first, as the product is: the library's greeting then answers with the client's bytes.
// The exit status is the number of wrong answers.
import Lib
import Probe

@inline(never)
func runtimeBytes(_ values: UInt8...) -> [UInt8] {
    var result: [UInt8] = []
    for v in values { result.append(v) }
    return result
}

func hex(_ bytes: [UInt8]) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
    var text = ""
    for b in bytes {
        if !text.isEmpty { text.append(" ") }
        text.append(digits[Int(b >> 4)]); text.append(digits[Int(b & 15)])
    }
    return text
}

@main
struct Main {
    static func main() {
        var wrong = 0
        let server = Server()
        for (input, expected) in [(runtimeBytes(5, 1, 0), "greeted 05 00"), (runtimeBytes(5, 2, 2, 0), "greeted 05 00"),
                                  (runtimeBytes(5, 1, 2), "reject 05 FF"), (runtimeBytes(4, 1, 0), "reject 05 FF")] {
            let (taken, reply) = server.answer(input)
            let got = "\(taken) \(hex(reply))"
            if got != expected { wrong += 1 }
            print("\(got == expected ? "ok   " : "WRONG") greeting \(hex(input)): \(got)\(got == expected ? "" : "   (expected \(expected))")")
        }
        print(wrong == 0 ? "each constant answer arrives as written"
                         : "DEFECT: \(wrong) greetings answered with another literal's bytes")
        exit(Int32(wrong))
    }
}
