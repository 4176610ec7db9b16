import CMicroHTTPD
import Relay

public enum BuildInfo {
    public static let version = "0.1.0"

    public static var targetTriple: String {
        #if LIBC_MUSL
        let libc = "musl"
        #else
        let libc = "gnu"
        #endif
        #if arch(arm64)
        return "aarch64-unknown-linux-" + libc
        #elseif arch(x86_64)
        return "x86_64-unknown-linux-" + libc
        #else
        return "unknown-linux-" + libc
        #endif
    }

    /// The `sluice version` text: first line fixed by the appliance contract, then one library per line.
    public static var report: String {
        var text = "sluice \(version) \(targetTriple)\n"
        text += "libssh2 \(SSHLibrary.version) (crypto: \(SSHLibrary.cryptoFlavour))\n"
        text += Digest.library + "\n"
        text += "libmicrohttpd \(String(cString: MHD_get_version()))\n"
        text += SSHAlgorithms.summary + "\n"
        return text
    }
}
