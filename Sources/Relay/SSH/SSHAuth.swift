import CLinux
import CSSH2

/// What to log in with. A struct: its enum form (`none`, `password(String)`, `privateKey(…)`) failed every login in
/// the Embedded -Osize product after the issue #13 fix, which was read as a miscompiled payload-enum switch. Issue #25
/// traced that kind of failure to same-named constant arrays across modules (`SSHAuth.next`'s method lists are
/// such arrays; tools/embedded-runtime-check), which the product build now refuses; the enum form was not measured
/// again.
public struct SSHCredentials {
    public enum Kind { case anonymous, password, privateKey }

    public let kind: Kind
    /// `password` is tried as `password`, then as keyboard-interactive (every prompt answered with it).
    public let password: String
    /// A private key file's bytes (OpenSSH or PEM); `keyType` names it in failure reasons.
    public let key: [UInt8]
    public let passphrase: String?
    public let keyType: String

    public static let none = SSHCredentials(kind: .anonymous, password: "", key: [], passphrase: nil, keyType: "")

    public static func password(_ password: String) -> SSHCredentials {
        SSHCredentials(kind: .password, password: password, key: [], passphrase: nil, keyType: "")
    }

    public static func privateKey(key: [UInt8], passphrase: String?, keyType: String) -> SSHCredentials {
        SSHCredentials(kind: .privateKey, password: "", key: key, passphrase: passphrase, keyType: keyType)
    }
}

/// User authentication, one non-blocking step at a time: `step` returns nil while libssh2 waits for the server.
final class SSHAuth {
    enum Outcome {
        case authenticated
        case failed(RelayFailure)
    }

    private enum Method { case list, password, keyboard, publicKey }

    private let user: String
    private let credentials: SSHCredentials
    private var method = Method.list
    private var offered: String = ""
    private var failures: [String] = []

    init(user: String, credentials: SSHCredentials) {
        self.user = user
        self.credentials = credentials
    }

    func step(_ session: OpaquePointer, io: SSHIO) -> Outcome? {
        while true {
            switch method {
            case .list:
                let length = UInt32(user.utf8.count)
                guard let list = libssh2_userauth_list(session, user, length) else {
                    if libssh2_userauth_authenticated(session) != 0 { return .authenticated }   // "none" accepted
                    if libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN { return nil }
                    return .failed(sessionFailure(session))
                }
                offered = String(cString: list)
                guard let first = next(after: nil) else {
                    return .failed(RelayFailure(.authRejected, subject: user, detail: "no configured method is offered "
                                                + "by the server (it offers \(offered))"))
                }
                method = first
            case .password:
                let secret = credentials.password
                let rc = libssh2_userauth_password_ex(session, user, UInt32(user.utf8.count), secret,
                                                      UInt32(secret.utf8.count), nil)
                switch settle(rc, session, what: "password") {
                case .wait: return nil
                case .retry: continue
                case .done(let outcome): return outcome
                }
            case .keyboard:
                io.password = credentials.password
                let rc = libssh2_userauth_keyboard_interactive_ex(session, user, UInt32(user.utf8.count), { _, _, _, _, count, _, responses, abstract in
                    let io = Unmanaged<SSHIO>.fromOpaque(abstract!.pointee!).takeUnretainedValue()
                    // a second call with no prompts comes before success (§1): nothing to answer
                    if count > 0 { cssh2_kbd_answer_all(io.password, count, responses) }
                })
                if rc != LIBSSH2_ERROR_EAGAIN { io.password = "" }
                switch settle(rc, session, what: "keyboard-interactive") {
                case .wait: return nil
                case .retry: continue
                case .done(let outcome): return outcome
                }
            case .publicKey:
                let key = credentials.key, passphrase = credentials.passphrase, keyType = credentials.keyType
                // libssh2 reads the key again with strlen when it signs (sign_frommemory): it must end in a NUL,
                // else strlen runs past the buffer (found by the e2e suite under AddressSanitizer)
                var terminated = key
                terminated.append(0)
                let rc = terminated.withUnsafeBufferPointer { bytes -> Int32 in
                    bytes.withMemoryRebound(to: CChar.self) { chars in
                        libssh2_userauth_publickey_frommemory(session, user, user.utf8.count, nil, 0,
                                                              chars.baseAddress, key.count, passphrase)
                    }
                }
                for i in terminated.indices { terminated[i] = 0 }
                var what = "publickey (\(keyType) key)"
                if rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED || rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED
                    || rc == LIBSSH2_ERROR_FILE {
                    what += ": cannot use the private key (wrong passphrase or unsupported format)"
                }
                switch settle(rc, session, what: what) {
                case .wait: return nil
                case .retry: continue
                case .done(let outcome): return outcome
                }
            }
        }
    }

    private enum Settled {
        case wait, retry
        case done(Outcome)
    }

    private func settle(_ rc: Int32, _ session: OpaquePointer, what: String) -> Settled {
        if rc == LIBSSH2_ERROR_EAGAIN { return .wait }
        if rc == 0 { return .done(.authenticated) }
        if isTransportError(rc) { return .done(.failed(sessionFailure(session))) }
        failures.append(what)
        if let following = next(after: method) {
            method = following
            return .retry
        }
        return .done(.failed(RelayFailure(.authRejected, subject: user,
                                          detail: failures.joined(separator: ", ") + " rejected")))
    }

    private func next(after current: Method?) -> Method? {
        // if-chains, not a switch: the Embedded (-Osize) build dispatched this switch to the wrong case
        var candidates: [Method] = []
        if credentials.kind == .password { candidates = [.password, .keyboard] }
        if credentials.kind == .privateKey { candidates = [.publicKey] }
        if let current, let index = candidates.firstIndex(where: { $0 == current }) {
            candidates = Array(candidates[(index + 1)...])
        }
        return candidates.first { offers($0) }
    }

    private func offers(_ method: Method) -> Bool {
        let name: String
        switch method {
        case .password: name = "password"
        case .keyboard: name = "keyboard-interactive"
        case .publicKey: name = "publickey"
        case .list: return false
        }
        return offered.split(separator: ",").contains { $0 == name }
    }

    private func sessionFailure(_ session: OpaquePointer) -> RelayFailure {
        RelayFailure(.authError, detail: SSHLibrary.lastError(session))
    }
}

func isTransportError(_ rc: Int32) -> Bool {
    rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND
        || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT || rc == LIBSSH2_ERROR_TIMEOUT
}
