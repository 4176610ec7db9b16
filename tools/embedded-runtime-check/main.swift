// The Embedded Swift runtime defect behind issue #13, reduced: swift_bridgeObjectRetain must return the value it is
// given (the compiler may go on using the returned register as the retained String), and the toolchain's Embedded
// runtime returns it masked with 0x8fff_ffff_ffff_fff8 instead. A small (inline) String's object word then loses
// its discriminator bits and the low bits of its last character: "127.0.0.1" becomes a "large" string pointing
// nowhere. Built by run.sh with and without Sources/CSupport/EmbeddedRuntimeFixes.c.
import Probe

@inline(never)
func runtimeString(_ count: Int) -> String {
    var bytes: [UInt8] = []
    for i in 0..<count { bytes.append(UInt8(0x30 + (i * 7 + 1) % 10)) }
    return String(decoding: bytes, as: UTF8.self)
}

@main
struct Main {
    static func main() {
        var broken = 0
        for length in [1, 9, 15, 16, 40] {
            let text = runtimeString(length)
            let words = unsafeBitCast(text, to: (UInt, UInt).self)
            let object = UnsafeMutableRawPointer(bitPattern: words.1)!
            let returned = UInt(bitPattern: csupport_bridge_object_retain(object))
            csupport_bridge_object_release(object)
            if returned != words.1 {
                broken += 1
                print("\(length)-byte string: retain returned a different value (low byte \(returned & 0xff) for \(words.1 & 0xff))")
            }
        }
        print(broken == 0 ? "swift_bridgeObjectRetain returns its argument" : "DEFECT: swift_bridgeObjectRetain changes its argument")
        exit(broken == 0 ? 0 : 1)
    }
}
