import CSSH2

/// Process-wide libssh2 state. `libssh2_init` is not thread-safe, so `initialize()` runs once in main, before any
/// thread starts.
public enum SSHLibrary {
    public static func initialize() -> Bool { libssh2_init(0) == 0 }
    public static func shutdown() { libssh2_exit() }

    public static var version: String { String(cString: cssh2_version()) }

    /// The backend libssh2 was built on (make CRYPTO=openssl|mbedtls).
    public static var cryptoFlavour: String {
        #if CRYPTO_MBEDTLS
        return "mbedtls"
        #else
        return "openssl"
        #endif
    }

    /// libssh2's message for the session's last error (never empty).
    static func lastError(_ session: OpaquePointer) -> String {
        guard let text = cssh2_last_error(session) else { return "unknown error" }
        let message = String(cString: text)
        return message.isEmpty ? "unknown error (\(libssh2_session_last_errno(session)))" : message
    }
}
